"""Where candidates are built and measured: host (LocalRunner), QEMU (instruction counts), RPC.

- InProcessBuilder builds every candidate in this process. MetaSchedule's LocalBuilder starts
  a fresh worker pool per batch and each worker imports all of TVM's tensor intrinsics
  (~25 s per batch on this 2-core machine, for kernels that build in well under a second).
  For `host`/`rpc` it exports the same tar artifact LocalBuilder does; for `qemu` it writes
  the Cortex-M LLVM object with the direct entry point `tvmc compile` builds (targets/kernels.py)
  plus the workspace its lowered TIR asks for.
- host: MetaSchedule's LocalRunner with LLVM on this machine, a quick proxy for the board.
- qemu: QemuRunner links each candidate into a one-kernel firmware (our emitter, runtime
  and harness, exactly as `tvmc compile` builds models) and runs it in QEMU with -icount; the
  "time" is the deterministic instruction count x 1 ns (-icount shift=0 is one instruction
  per virtual nanosecond).
- rpc: MetaSchedule's RPCRunner against TVM's RPC tracker (`python -m tvm.exec.rpc_tracker`,
  servers with `python -m tvm.exec.rpc_server --tracker HOST:PORT --key KEY`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.runner import (
    EvaluatorConfig,
    LocalRunner,
    PyRunner,
    PyRunnerFuture,
    RPCConfig,
    RPCRunner,
    RunnerInput,
    RunnerResult,
)

from tvm_patch_core import liveness
from tvm_patch_core.boards import Board
from tvm_patch_core.errors import TvmPatchError
from tvm_patch_core.graph import Call, Graph, Tensor, TensorKind

from ..targets.direct_api import KernelSignature
from ..targets.emit_c import emit_model
from ..targets.kernels import build_object
from ..targets.runner import run_elf
from ..targets.toolchain import build_elf, require_tools

RUNNERS = ("host", "qemu")
KERNEL = "tvmp_tuned_kernel"  # the candidate's symbol in a QEMU measurement firmware
EVALUATOR = EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0, enable_cpu_cache_flush=False)


def tuning_target(runner: str, board: Board) -> tvm.target.Target:
    """The target candidates are built for: the board's for QEMU, this host's LLVM otherwise."""
    if runner == "qemu":
        if board.llvm_target is None:
            raise TvmPatchError(f"--runner qemu needs a Cortex-M target, not {board.name}")
        return tvm.target.Target({**board.llvm_target, "num-cores": 1})
    return tvm.target.Target({"kind": "llvm", "num-cores": 1})


@derived_object
class InProcessBuilder(PyBuilder):
    def __init__(self, artifact: str = "tar") -> None:  # "tar" (host, RPC) or "object" (QEMU)
        super().__init__()
        self.artifact = artifact

    def build(self, build_inputs: list) -> list[BuilderResult]:
        return [self._one(b.mod, b.target) for b in build_inputs]

    def _one(self, mod: tvm.IRModule, target: tvm.target.Target) -> BuilderResult:
        try:
            out = Path(tempfile.mkdtemp(prefix="tvmp-cand-"))
            if self.artifact == "object":
                mod = tvm.IRModule({"main": mod["main"].with_attr("global_symbol", KERNEL)})
                workspace = build_object(mod, target, out / "kernel.o")  # direct, as tvmc compile builds
                (out / "workspace.json").write_text(json.dumps(workspace))
                # A file in the candidate's own folder: MetaSchedule's RemoveBuildArtifact
                # deletes the artifact's *parent* folder after measuring.
                return BuilderResult(str(out / "kernel.o"), None)
            from tvm.support.tar import tar

            path = out / "candidate.tar"
            tvm.compile(mod, target=target).export_library(str(path), fcompile=tar)
            return BuilderResult(str(path), None)
        except Exception as err:
            return BuilderResult(None, f"InProcessBuilder: {type(err).__name__}: {err}")


@derived_object
class _Done(PyRunnerFuture):
    def __init__(self, future: Future) -> None:
        super().__init__()
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> RunnerResult:
        try:
            return RunnerResult(self.future.result(), None)
        except Exception as err:
            return RunnerResult(None, f"QemuRunner: {type(err).__name__}: {err}")


@derived_object
class QemuRunner(PyRunner):
    """Run each candidate kernel alone in QEMU; 'seconds' are instructions x 1e-9."""

    def __init__(self, board: Board, workers: int = 1, timeout_s: float = 120.0) -> None:
        super().__init__()
        require_tools(board)
        self.board, self.timeout_s = board, timeout_s
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def run(self, runner_inputs: list[RunnerInput]) -> list[PyRunnerFuture]:
        return [_Done(self.pool.submit(self._measure, r.artifact_path, list(r.args_info))) for r in runner_inputs]

    def _measure(self, artifact: str, args_info: list) -> list[float]:
        count = measure_kernel(
            self.board,
            Path(artifact),
            [(tuple(int(d) for d in a.shape), str(a.dtype)) for a in args_info],
            self.timeout_s,
        )
        return [count * 1e-9]


def measure_kernel(
    board: Board, kernel_o: Path, args: list[tuple[tuple[int, ...], str]], timeout_s: float = 120.0
) -> int:
    """Instructions one call of the candidate object `kernel_o` takes on `board` (QEMU).

    A one-kernel program: every argument but the last is an input, the last its output, all
    in the arena (zeros in: the counts of these kernels do not depend on the data)."""
    names = [f"in{i}" for i in range(len(args) - 1)] + ["t0"]
    kinds = [TensorKind.INPUT] * (len(args) - 1) + [TensorKind.ACTIVATION]
    tensors = {n: Tensor(n, shape, dtype, kind) for n, kind, (shape, dtype) in zip(names, kinds, args, strict=True)}
    graph = Graph(tensors, (Call(KERNEL, tuple(names[:-1]), (names[-1],)),), tuple(names[:-1]), (names[-1],))
    artifact = kernel_o.parent  # the builder's folder for this candidate
    ws = json.loads((artifact / "workspace.json").read_text()).get(KERNEL, 0)
    workspace = {0: ws}
    plan = liveness.plan(graph, workspace)
    src = artifact / "src"
    signature = KernelSignature(tuple((dtype, tuple(shape)) for shape, dtype in args))  # the candidate's own
    emitted = emit_model(graph, plan, workspace, "tune", src, signatures={KERNEL: signature})
    elf = build_elf(board, list(emitted.files), [kernel_o], artifact / "kernel.elf", [src])
    input_bytes = b"".join(bytes(tensors[n].nbytes) for n in names[:-1])
    result = run_elf(board, elf, input_bytes, tensors[names[-1]].nbytes, timeout_s=timeout_s)
    return result.count


def measure_untuned(
    builder: PyBuilder, runner: PyRunner, target: tvm.target.Target, funcs: dict[str, tvm.tirx.PrimFunc]
) -> dict[str, float]:
    """Each kernel's InlineKernels schedule measured the way candidates are (name -> seconds),
    so a record is applied only where it beats the default schedule."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.builder import BuilderInput

    names = list(funcs)
    mods = [tvm.IRModule({"main": funcs[n].with_attr("global_symbol", "main")}) for n in names]
    built = builder.build([BuilderInput(m, target) for m in mods])
    inputs, keep = [], []
    for n, m, b in zip(names, mods, built, strict=False):
        if b.error_msg is None:
            inputs.append(RunnerInput(b.artifact_path, "cpu", ArgInfo.from_prim_func(m["main"])))
            keep.append(n)
    out = {}
    for n, inp, fut in zip(keep, inputs, runner.run(inputs), strict=False):
        r = fut.result()
        if r.error_msg is None and r.run_secs:
            out[n] = sum(float(x) for x in r.run_secs) / len(r.run_secs)
        folder = Path(inp.artifact_path).parent
        if folder.name.startswith("tvmp-cand-"):
            shutil.rmtree(folder, ignore_errors=True)
    return out


def host_runner() -> LocalRunner:
    return LocalRunner(evaluator_config=EVALUATOR, timeout_sec=60)


def rpc_runner(tracker: str, key: str, workers: int = 1) -> RPCRunner:
    host, _, port = tracker.rpartition(":")
    if not host or not port.isdigit():
        raise TvmPatchError(f"--rpc-tracker {tracker!r}: use HOST:PORT (e.g. 127.0.0.1:9190)")
    config = RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=key, session_timeout_sec=120)
    return RPCRunner(rpc_config=config, evaluator_config=EVALUATOR, max_workers=workers)


def make_runner(
    kind: str, board: Board, rpc_tracker: str | None = None, rpc_key: str | None = None
) -> tuple[PyBuilder, PyRunner | LocalRunner | RPCRunner]:
    """(builder, runner) for `--runner` and the RPC flags."""
    if rpc_tracker:
        if kind == "qemu":
            raise TvmPatchError(
                "--rpc-tracker measures on the RPC servers' LLVM host; it does not combine with --runner qemu"
            )
        if not rpc_key:
            raise TvmPatchError("--rpc-tracker needs --rpc-key (the key the servers registered with)")
        return InProcessBuilder("tar"), rpc_runner(rpc_tracker, rpc_key, workers=max(1, (os.cpu_count() or 1) // 2))
    if kind == "host":
        return InProcessBuilder("tar"), host_runner()
    if kind == "qemu":
        return InProcessBuilder("object"), QemuRunner(board)
    raise TvmPatchError(f"--runner {kind!r}: choose {' or '.join(RUNNERS)}")
