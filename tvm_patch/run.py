"""Run a compiled OUT folder on the host or in QEMU and report what happened.

The board build (`OUT/model.elf`) runs in QEMU; `--device host` builds the same generated
C (model, arena, call sequence, C-backend kernels) with the host gcc into `OUT/host/` once.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_patch_core.boards import BOARDS, board_for
from tvm_patch_core.errors import BadRunInputs, RunError, TvmPatchError
from tvm_patch_core.names import shown
from tvm_patch_core.report import CompileReport, OutputChecksum, RunReport, TensorReport

from .targets.runner import RunResult, run_elf
from .targets.toolchain import build_elf, require_tools


@dataclass(frozen=True)
class ModelRun:
    outputs: list[np.ndarray]
    result: RunResult
    report: RunReport


def load_report(out_dir: Path) -> CompileReport:
    """OUT/report.json, checked field by field (DamagedOutput on a tampered report)."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise TvmPatchError(f"{out_dir}: no report.json here; compile first with `tvmc compile MODEL -o {out_dir}`")
    return CompileReport.load(path)


def host_executable(out_dir: Path) -> Path:
    """The host build of OUT's generated C (C-backend kernels), built on first use."""
    out_dir = Path(out_dir)
    exe = out_dir / "host" / "model"
    src = out_dir / "src"
    sources = sorted(src.glob("*.c"))
    if exe.is_file() and all(exe.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return exe
    host = BOARDS["host"]
    require_tools(host)
    exe.parent.mkdir(exist_ok=True)
    return build_elf(host, sources, [], exe, [src])


def run_compiled(
    out_dir: str | Path,
    device: str = "qemu",
    board: str | None = None,
    inputs: list[np.ndarray] | None = None,
    timeout_s: float = 600.0,
) -> ModelRun:
    out_dir = Path(out_dir)
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise TvmPatchError(f"--timeout {timeout_s}: give a positive number of seconds")
    report = load_report(out_dir)
    specs = report.inputs
    if inputs is None:
        inputs = [random_input(s, seed=i) for i, s in enumerate(specs)]
    if len(inputs) != len(specs):
        raise BadRunInputs(f"the model takes {len(specs)} inputs, got {len(inputs)}")
    blobs = []
    for spec, x in zip(specs, inputs, strict=True):
        x = np.asarray(x)
        if tuple(x.shape) != spec.shape or str(x.dtype) != spec.dtype:
            raise BadRunInputs(
                f"input {shown(spec.name)}: expected {spec.dtype}{list(spec.shape)}, got {x.dtype}{list(x.shape)}"
            )
        blobs.append(np.ascontiguousarray(x).tobytes())
    out_bytes = sum(o.bytes for o in report.outputs)
    if device == "host":
        target_board, elf = BOARDS["host"], host_executable(out_dir)
    elif device == "qemu":
        target_board = board_for(board or report.board)
        if target_board.qemu_machine is None:
            raise TvmPatchError(
                f"{out_dir} was compiled for {report.board}; compile for a Cortex-M target to run in QEMU"
            )
        if board and target_board.name != report.board:
            raise TvmPatchError(
                f"{out_dir} was built for {report.board}, not {target_board.name}; recompile with --target {board}"
            )
        require_tools(target_board)
        elf = out_dir / "model.elf"
    else:
        raise TvmPatchError(f"--device {device!r}: choose host or qemu")
    start = time.perf_counter()
    result = run_elf(target_board, elf, b"".join(blobs), out_bytes, timeout_s=timeout_s)
    wall = time.perf_counter() - start
    outputs, pos = [], 0
    for o in report.outputs:
        arr = np.frombuffer(result.outputs[pos : pos + o.bytes], dtype=o.dtype).reshape(o.shape)
        outputs.append(arr.copy())
        pos += o.bytes
    if result.rc != 0:
        raise RunError(f"the model returned {result.rc}")
    run_report = RunReport(
        model=report.model,
        device=device,
        board=target_board.name,
        kernels=report.kernels,
        schedule=report.schedule,
        peak_sram_bytes=report.peak_sram_bytes,
        wall_seconds=round(wall, 3),
        stack_bytes=result.stack_bytes,
        outputs=tuple(_checksum(o, a) for o, a in zip(report.outputs, outputs, strict=True)),
        instructions=result.count if result.count_unit == "instructions" else None,
        host_seconds=result.count / 1e9 if result.count_unit == "ns" else None,
    )
    return ModelRun(outputs, result, run_report)


def _checksum(spec: TensorReport, a: np.ndarray) -> OutputChecksum:
    return OutputChecksum(
        spec.name, spec.shape, spec.dtype, f"{zlib.crc32(a.tobytes()):08x}", float(a.astype(np.float64).sum())
    )


def random_input(spec: TensorReport, seed: int) -> np.ndarray:
    """The seeded input `tvmc run` uses without --inputs (int8: the full range)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=spec.shape).astype(dtype)
    return rng.standard_normal(spec.shape).astype(dtype)
