"""Run a compiled OUT folder on the host or in QEMU and report what happened.

The board build (`OUT/model.elf`) runs in QEMU; `--device host` builds the same generated
C (model, arena, call sequence, C-backend kernels) with the host gcc into `OUT/host/` once.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BadRunInputs, DamagedOutput, RunError, TvmPatchError
from .names import shown
from .targets.boards import BOARDS, board_for
from .targets.run import RunResult, run_elf
from .targets.toolchain import build_elf, require_tools


@dataclass(frozen=True)
class ModelRun:
    outputs: list[np.ndarray]
    result: RunResult
    report: dict


_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float16", "float32", "float64"})


def load_report(out_dir: Path) -> dict:
    """OUT/report.json, checked as far as `tvmc run` relies on it (names, shapes, dtypes, bytes)."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise TvmPatchError(f"{out_dir}: no report.json here; compile first with `tvmc compile MODEL -o {out_dir}`")
    damaged = f"{path} is damaged"
    again = "; compile again with `tvmc compile MODEL -o OUT`"
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedOutput(f"{damaged}: not JSON ({type(err).__name__}){again}") from None
    if not isinstance(report, dict):
        raise DamagedOutput(f"{damaged}: not a JSON object{again}")
    for key, kind in (("model", str), ("board", str), ("peak_sram_bytes", int), ("inputs", list), ("outputs", list)):
        if not isinstance(report.get(key), kind):
            raise DamagedOutput(f"{damaged}: {key!r} is missing or not a {kind.__name__}{again}")
    for where in ("inputs", "outputs"):
        for i, spec in enumerate(report[where]):
            _check_spec(spec, f"{damaged}: {where}[{i}]", again)
    return report


def _check_spec(spec, what: str, again: str) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise DamagedOutput(f"{what} has no name{again}")
    shape, dtype = spec.get("shape"), spec.get("dtype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise DamagedOutput(f"{what} has shape {shape!r}, not a list of positive integers{again}")
    if dtype not in _DTYPES:
        raise DamagedOutput(f"{what} has dtype {dtype!r}, not one of {', '.join(sorted(_DTYPES))}{again}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if spec.get("bytes") != nbytes:
        raise DamagedOutput(f"{what}: {spec.get('bytes')!r} bytes does not match {dtype}{shape} ({nbytes} B){again}")


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
    specs = report["inputs"]
    if inputs is None:
        inputs = [_random_input(s, seed=i) for i, s in enumerate(specs)]
    if len(inputs) != len(specs):
        raise BadRunInputs(f"the model takes {len(specs)} inputs, got {len(inputs)}")
    blobs = []
    for spec, x in zip(specs, inputs):
        x = np.asarray(x)
        if tuple(x.shape) != tuple(spec["shape"]) or str(x.dtype) != spec["dtype"]:
            raise BadRunInputs(
                f"input {shown(spec['name'])}: expected {spec['dtype']}{spec['shape']}, got {x.dtype}{list(x.shape)}"
            )
        blobs.append(np.ascontiguousarray(x).tobytes())
    out_bytes = sum(o["bytes"] for o in report["outputs"])
    if device == "host":
        target_board, elf = BOARDS["host"], host_executable(out_dir)
    elif device == "qemu":
        target_board = board_for(board or report["board"])
        if target_board.qemu_machine is None:
            raise TvmPatchError(f"{out_dir} was compiled for {report['board']}; compile for a Cortex-M target to run in QEMU")
        if board and target_board.name != report["board"]:
            raise TvmPatchError(f"{out_dir} was built for {report['board']}, not {target_board.name}; recompile with --target {board}")
        require_tools(target_board)
        elf = out_dir / "model.elf"
    else:
        raise TvmPatchError(f"--device {device!r}: choose host or qemu")
    start = time.perf_counter()
    result = run_elf(target_board, elf, b"".join(blobs), out_bytes, timeout_s=timeout_s)
    wall = time.perf_counter() - start
    outputs, pos = [], 0
    for o in report["outputs"]:
        arr = np.frombuffer(result.outputs[pos : pos + o["bytes"]], dtype=o["dtype"]).reshape(o["shape"])
        outputs.append(arr.copy())
        pos += o["bytes"]
    if result.rc != 0:
        raise RunError(f"the model returned {result.rc}")
    run_report = {
        "model": report["model"],
        "device": device,
        "board": target_board.name,
        "kernels": report.get("kernels"),
        "schedule": report.get("schedule"),
        "peak_sram_bytes": report["peak_sram_bytes"],
        result.count_unit: result.count,
        "wall_seconds": round(wall, 3),
        "stack_bytes": result.stack_bytes,
        "outputs": [
            {"name": o["name"], "shape": o["shape"], "dtype": o["dtype"], "checksum": _checksum(a)}
            for o, a in zip(report["outputs"], outputs)
        ],
    }
    if result.count_unit == "ns":
        run_report["host_seconds"] = result.count / 1e9
    return ModelRun(outputs, result, run_report)


def _checksum(a: np.ndarray) -> dict:
    import zlib

    return {"crc32": f"{zlib.crc32(a.tobytes()):08x}", "sum": float(a.astype(np.float64).sum())}


def _random_input(spec: dict, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec["dtype"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=spec["shape"]).astype(dtype)
    return rng.standard_normal(spec["shape"]).astype(dtype)
