"""Checks both importers make on a model file: declared shapes, --input-shapes, non-finite
weights, and the wording of an importer's failure (one line, model strings escaped)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tvm

from tvm_patch_core.errors import ModelLoadError, NonFiniteWeights, UnsupportedOperator
from tvm_patch_core.names import shown


def wrap_frontend_error(path: Path, err: Exception) -> Exception:
    msg = str(err).strip().splitlines()
    text = shown(" ".join(line.strip() for line in msg if line.strip())[:400], quote=False)
    unsupported = re.search(r"not supported|unsupported", text, re.IGNORECASE)
    if isinstance(err, (NotImplementedError, tvm.error.OpNotImplemented)) or unsupported:
        return UnsupportedOperator(f"{path.name}: {text}")
    return ModelLoadError(f"{path.name}: the importer failed: {text}")


def check_input_shapes(
    path: Path, model_inputs: dict[str, list[int] | None], wanted: dict[str, tuple[int, ...]]
) -> None:
    """--input-shapes may only name the model's inputs, and not change a static input's rank."""
    for name, shape in wanted.items():
        if name not in model_inputs:
            names = ", ".join(shown(n) for n in model_inputs)
            raise ModelLoadError(
                f"--input-shapes names {shown(name)}, which is not an input of {path.name} (inputs: {names})"
            )
        static = model_inputs[name]
        if static is not None and len(static) != len(shape):
            raise ModelLoadError(
                f"--input-shapes {shown(name)}: {list(shape)} has rank {len(shape)}, but {path.name} declares "
                f"rank {len(static)} ({static}); give {len(static)} dimensions"
            )


def dims_problem(dims: list) -> str | None:
    for d in dims:
        if isinstance(d, str) or d is None:
            return "dynamic"
        if d <= 0:
            return f"dimension {d}"
    return None


def refuse_nonfinite(path: Path, name: str, array: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise NonFiniteWeights(
            f"{path.name}: weight {shown(name)} holds {bad:,} non-finite values (NaN or Inf) of {array.size:,}; "
            "fix the model, or pass --allow-nonfinite-weights to compile it anyway"
        )
