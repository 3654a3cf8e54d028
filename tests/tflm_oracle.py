"""TFLite Micro's reference kernels as the int8 oracle, run in a subprocess.

The `tflite-micro` PyPI package runs TFLM itself on the host; a too-small arena can crash
the interpreter's process, so every call runs in a child Python. This is a stop-gap until
`tests/reference/tflm.py` (branch `models`) lands: the signature `tflm_outputs(model_path,
inputs)` is the same, plus `tflm_runs` for many input sets in one child.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

ARENA_BYTES = 8 << 20  # generous: the largest test model needs ~1.6 MB in TFLM

_CHILD = r"""
import sys, numpy as np
from tflite_micro import runtime
model, data, out, arena = sys.argv[1], np.load(sys.argv[2]), sys.argv[3], int(sys.argv[4])
it = runtime.Interpreter.from_file(model, arena_size=arena)
n_runs, n_in = int(data["n_runs"]), int(data["n_in"])
results = {}
for r in range(n_runs):
    it.reset()
    for i in range(n_in):
        it.set_input(data[f"r{r}_i{i}"], i)
    it.invoke()
    k = 0
    while True:
        try:
            results[f"r{r}_o{k}"] = it.get_output(k)
        except Exception:
            break
        k += 1
    results[f"r{r}_n"] = np.int64(k)
np.savez(out, **results)
"""


def tflm_available() -> bool:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return False
    return True


def require_tflm() -> None:
    if not tflm_available():
        pytest.skip("tflite-micro is not installed (pip install tflite-micro): no int8 oracle")


def tflm_runs(
    model: str | Path | bytes, runs: Sequence[Sequence[np.ndarray]]
) -> list[list[np.ndarray]]:
    """TFLM's outputs for each input set in `runs` (one child process for all of them)."""
    with tempfile.TemporaryDirectory(prefix="tflm-") as tmp:
        tmp = Path(tmp)
        if isinstance(model, (bytes, bytearray)):
            path = tmp / "model.tflite"
            path.write_bytes(bytes(model))
        else:
            path = Path(model)
        arrays = {"n_runs": np.int64(len(runs)), "n_in": np.int64(len(runs[0]) if runs else 0)}
        for r, inputs in enumerate(runs):
            for i, x in enumerate(inputs):
                arrays[f"r{r}_i{i}"] = np.ascontiguousarray(x)
        np.savez(tmp / "in.npz", **arrays)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(path),
                str(tmp / "in.npz"),
                str(tmp / "out.npz"),
                str(ARENA_BYTES),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"tflite-micro failed on {path.name} (exit {proc.returncode}): {proc.stderr[-2000:]}"
            )
        res = np.load(tmp / "out.npz")
        return [[res[f"r{r}_o{k}"] for k in range(int(res[f"r{r}_n"]))] for r in range(len(runs))]


def tflm_outputs(model: str | Path | bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """TFLM's outputs for one input set."""
    return tflm_runs(model, [inputs])[0]
