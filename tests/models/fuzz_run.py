"""Differential fuzzer, the running half: a case's per-layer and patch builds on the host, against onnxruntime.

    run_case(case, workdir) -> Outcome   per-layer and patch builds on the host, run, compared
    shrink(case, workdir) -> (Case, Outcome)  a failing case reduced to a short layer list

The cases and their ONNX models come from tests/models/fuzz_chains.py; the outcomes and the
tolerances are described there.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from .fuzz_chains import (
    FP32_VS_ORT,
    FP32_VS_PATCHED,
    INT8_VS_ORT_LSB,
    KNOWN_BUGS,
    RUN_TIMEOUT_S,
    Case,
    InvalidCase,
    build_model,
    case_input,
    case_model,
    output_scale,
)


@dataclass
class Outcome:
    seed: int
    status: str  # one of STATUSES
    reason: str = ""  # refused: why; mismatch / crash: what
    plan: str = ""  # the patch build's split and grid
    case: str = ""  # Case.describe()
    seconds: float = 0.0
    detail: str = ""  # crash: the traceback's tail
    checks: list[str] = field(default_factory=list)  # comparisons that passed
    split: int | str | None = None  # what the patch build was asked for ("auto": the planner)
    grid: tuple[int, int] | str | None = None
    known: str = ""  # a crash that is a known bug being fixed elsewhere: which one

    def as_dict(self) -> dict:
        return asdict(self)


class Failure(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def is_real_reason(reason: str | None) -> bool:
    """A refusal's reason must say something: not empty, not a bare or trailing "None"."""
    return bool(reason and reason.strip()) and not re.search(r"(^|:)\s*None\s*$", reason.strip())


def compare(
    got: np.ndarray,
    want: np.ndarray,
    what: str,
    *,
    exact: bool = False,
    rel: float = 0.0,
    lsb: float | None = None,
    also: np.ndarray | None = None,
) -> str:
    """Raise Failure("mismatch") unless `got` matches `want` (or, int8, `also`: a second
    reference); return a line saying how close."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise Failure("mismatch", f"{what}: shape {list(got.shape)} != {list(want.shape)}")
    if not np.all(np.isfinite(got)):
        raise Failure("mismatch", f"{what}: {int((~np.isfinite(got)).sum())} non-finite outputs")
    diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    if exact:
        if diff != 0.0:
            raise Failure("mismatch", f"{what}: not identical (max difference {diff:.3g})")
        return f"{what}: identical"
    if lsb is not None:
        refs = [want] if also is None else [want, np.asarray(also)]
        per_ref = [np.round(np.abs(got.astype(np.float64) - r.astype(np.float64)) / lsb) for r in refs]
        steps = min(per_ref, key=lambda st: (int(st.max()), int((st > 0).sum())))
        worst, off = int(steps.max()), int((steps > 0).sum())
        if worst > INT8_VS_ORT_LSB:
            raise Failure(
                "mismatch",
                f"{what}: {worst} LSB off at {off} of {steps.size} outputs "
                f"(scale {lsb:.3g}), allowed {INT8_VS_ORT_LSB}",
            )
        return f"{what}: {worst} LSB ({off} of {steps.size} off)"
    scale = max(float(np.abs(want).max()), 1e-6)
    err = diff / scale
    if err > rel:
        raise Failure("mismatch", f"{what}: normalised max error {err:.2e} > {rel:.0e}")
    return f"{what}: {err:.1e}"


def choose_patch_plan(case: Case, layers: list[dict]) -> tuple[int | None, tuple[int, int] | None]:
    """The patch build's (split, grid): the case's own, or drawn from the seed and the layer graph."""
    rng = random.Random(f"plan-{case.seed}")
    split = case.split
    if split is None:
        split = "auto" if rng.random() < 0.15 or len(layers) < 2 else rng.randint(2, len(layers))
    grid = case.grid
    if grid is None:
        if split == "auto":
            grid = "auto" if rng.random() < 0.7 else (rng.randint(1, 3), rng.randint(1, 3))
        else:
            shape = layers[split - 1]["output_shape"]  # NCHW, as ONNX is
            h, w = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
            grid = (rng.randint(1, min(4, h)), rng.randint(1, min(4, w)))
    return (None if split == "auto" else split), (None if grid == "auto" else tuple(grid))


def run_case(case: Case, workdir: str | Path) -> Outcome:
    """Build, compile (per layer, then patched), run and compare one case; never raises."""
    start = time.perf_counter()
    outcome = Outcome(case.seed, "ok", case=case.describe())
    try:
        _run(case, Path(workdir), outcome)
    except Failure as f:
        outcome.status, outcome.reason = f.status, f.reason
    except Exception as e:
        outcome.status, outcome.reason = "crash", f"{type(e).__name__}: {_first_line(e)}"
        outcome.detail = "".join(traceback.format_exception(e)[-6:])
    outcome.seconds = round(time.perf_counter() - start, 2)
    if outcome.status == "crash":
        outcome.known = next(
            (label for label, text, shape in KNOWN_BUGS if text in outcome.reason and shape(case)),
            "",
        )
    return outcome


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    # TVM errors put the message after the stack trace
    tvm_msg = [line for line in lines if re.match(r"^(tvm\.)?\w*Error: ", line.strip())]
    return (tvm_msg[-1] if tvm_msg else lines[0] if lines else repr(e))[:300]


def _refusal(e: BaseException) -> str | None:
    """The reason text if `e` refuses on purpose; None if it is a crash."""
    from tvm_patch_core.errors import BuildError, RunError, ToolchainMissing, TvmPatchError

    if isinstance(e, TvmPatchError) and not isinstance(e, (BuildError, RunError, ToolchainMissing)):
        return f"{type(e).__name__}: {e}"
    return None


def _compile(path: Path, out: Path, options, what: str):
    from tvm_patch.compile import compile_model

    try:
        return compile_model(path, out, options)
    except Exception as e:
        reason = _refusal(e)
        if reason is None:
            raise
        if not is_real_reason(str(e)):
            raise Failure("crash", f"{what} refused without a reason: {reason!r}") from e
        raise Failure("refused", f"{what}: {reason}") from e


def _run(case: Case, workdir: Path, outcome: Outcome) -> None:
    import onnxruntime as ort

    from tvm_patch.run import run_compiled
    from tvm_patch_core.options import CompileOptions, PatchOptions

    workdir.mkdir(parents=True, exist_ok=True)
    model = case_model(case)
    path = workdir / f"fuzz_{case.seed}.onnx"
    onnx.save_model(model, str(path))
    x = case_input(case)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ref = session.run(None, {"input": x})[0]
    except Exception as e:
        raise Failure("crash", f"onnxruntime rejects the generated model (a generator bug): {_first_line(e)}") from e
    scale = output_scale(model) if case.int8 else None
    vs_ort: dict = {"rel": FP32_VS_ORT}
    # int8: two references, onnxruntime's fused integer kernels (its default session, which the
    # integer lowering follows for QLinearConv) and the graph as written (DQ -> float op -> Q);
    # they round ties differently and differ by several LSB after a few layers; the build must
    # be within INT8_VS_ORT_LSB of one of them.
    fused = None
    if scale is not None:
        written = ort.SessionOptions()
        written.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        fused, ref = (
            ref,
            ort.InferenceSession(str(path), written, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0],
        )
        spread = int(np.round(np.abs(fused - ref) / scale).max())
        outcome.checks.append(f"onnxruntime's integer kernels: {spread} LSB from the graph as written")
        vs_ort = {"lsb": scale, "also": fused}

    def run(out) -> np.ndarray:
        return run_compiled(out.out_dir, device="host", inputs=[x], timeout_s=RUN_TIMEOUT_S).outputs[0]

    options = CompileOptions(target="host", inplace=case.inplace_depthwise)
    layer = _compile(path, workdir / "layer", options, "per-layer")
    want = run(layer)
    outcome.checks.append(compare(want, ref, "per-layer vs onnxruntime", **vs_ort))

    split, grid = choose_patch_plan(case, [dataclasses.asdict(x) for x in layer.report.layers])
    outcome.split, outcome.grid = split or "auto", grid or "auto"
    outcome.plan = f"split {split or 'auto'}, grid {'x'.join(map(str, grid)) if grid else 'auto'}"
    patched = _compile(
        path,
        workdir / "patch",
        replace(options, schedule="patch", patch=PatchOptions(split=split, grid=grid)),
        "patch",
    )
    report = patched.report
    if report.schedule != "patch":
        reason = report.patch_refused
        if not is_real_reason(reason):
            raise Failure("crash", f"the patch schedule fell back to per layer with reason {reason!r}")
        raise Failure("refused", f"patch: {reason}")
    stage = report.patch_stages[0]
    if grid is not None and tuple(stage.grid) != grid:
        raise Failure("crash", f"asked for grid {grid}, the build has {stage.grid}")
    if split is not None and len(stage.layers) != split:
        raise Failure("crash", f"asked for split {split}, the stage has {len(stage.layers)} layers")
    outcome.plan += f" -> {len(stage.layers)} layers, {stage.grid[0]}x{stage.grid[1]}"
    got = run(patched)
    if scale is not None:  # int8: the same integer arithmetic, patch by patch
        outcome.checks.append(compare(got, want, "patched vs per-layer", exact=True))
    else:
        outcome.checks.append(compare(got, want, "patched vs per-layer", rel=FP32_VS_PATCHED))
    outcome.checks.append(compare(got, ref, "patched vs onnxruntime", **vs_ort))


# --- shrinking -----------------------------------------------------------------------------------


def signature(outcome: Outcome) -> tuple[str, str]:
    """What kind of failure this is, without its numbers: (status, the reason's stem)."""
    stem = outcome.reason.split(":")[0] if outcome.status == "mismatch" else outcome.reason
    return outcome.status, re.sub(r"[-\d.e+]+", "#", stem)[:60]


def _variants(case: Case):
    """Smaller or simpler cases than `case`, the most promising first."""
    layers = list(case.layers)
    for i in range(len(layers)):
        yield replace(case, layers=tuple(layers[:i] + layers[i + 1 :]))
        if isinstance(case.split, int) and case.split > 2:
            yield replace(case, layers=tuple(layers[:i] + layers[i + 1 :]), split=case.split - 1)
    plain = {
        "residual": 0,
        "act": "",
        "act_after_add": "",
        "bias": False,
        "auto_pad": "",
        "pads": (0, 0, 0, 0),
        "stride": (1, 1),
        "dilation": (1, 1),
        "count_include_pad": 0,
    }
    for i, spec in enumerate(layers):
        for name, value in plain.items():
            if getattr(spec, name) != value:
                yield replace(
                    case,
                    layers=tuple([*layers[:i], replace(spec, **{name: value}), *layers[i + 1 :]]),
                )
        if spec.kernel != (1, 1):
            smaller = (max(1, spec.kernel[0] - 1), max(1, spec.kernel[1] - 1))
            yield replace(case, layers=tuple([*layers[:i], replace(spec, kernel=smaller), *layers[i + 1 :]]))
        if spec.op == "conv" and spec.groups != -1 and spec.out_channels > 2:
            yield replace(case, layers=tuple([*layers[:i], replace(spec, out_channels=2), *layers[i + 1 :]]))
    if case.in_channels > 1:
        yield replace(case, in_channels=max(1, case.in_channels // 2))
    for h, w in ((max(8, case.height - 4), case.width), (case.height, max(8, case.width - 4))):
        if (h, w) != (case.height, case.width):
            yield replace(case, height=h, width=w)
    if case.int8:
        yield replace(case, int8=False)
    if not case.inplace_depthwise:
        yield replace(case, inplace_depthwise=True)
    if isinstance(case.grid, tuple) and case.grid != (1, 1):
        yield replace(case, grid=(max(1, case.grid[0] - 1), case.grid[1]))
        yield replace(case, grid=(case.grid[0], max(1, case.grid[1] - 1)))


def shrink(case: Case, workdir: str | Path, max_runs: int = 80, log=None) -> tuple[Case, Outcome]:
    """The smallest case found that fails as `case` does (greedy: take any smaller variant that
    still fails the same way, until none does or `max_runs` cases have run). The patch plan is
    pinned to the one the failure used."""
    workdir = Path(workdir)
    first = run_case(case, workdir / "0")
    if first.status in ("ok", "refused"):
        return case, first
    want = signature(first)
    case = replace(case, split=first.split, grid=first.grid)
    best, runs, progress = first, 1, True
    while progress and runs < max_runs:
        progress = False
        for cand in _variants(case):
            try:
                build_model(cand)
            except (InvalidCase, onnx.checker.ValidationError):
                continue
            out = run_case(cand, workdir / str(runs))
            runs += 1
            if log:
                log(f"{'smaller' if signature(out) == want else 'passes'}: {cand.describe()}")
            if signature(out) == want:
                case, best, progress = cand, out, True
                break
            if runs >= max_runs:
                break
    return case, best
