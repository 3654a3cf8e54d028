"""The TFLite interpreter (`ai-edge-litert`) as a second opinion beside TFLite Micro.

Its default kernels (optimized, XNNPACK) round differently from TFLite Micro's reference
kernels and differ by several LSB on int8 models; with `reference_kernels=True` it runs
TFLite's own reference kernels (`OpResolverType.BUILTIN_REF`), which share TFLite Micro's
arithmetic (tests/unit/test_tflm_reference.py checks that they agree byte for byte).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def litert_outputs(
    model_path: str | Path, inputs: list[np.ndarray], reference_kernels: bool = False
) -> list[np.ndarray]:
    """The interpreter's outputs for one list of inputs, in the model's order."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    interp = Interpreter(model_path=str(model_path), experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def lsb_difference(got: list[np.ndarray], want: list[np.ndarray]) -> int:
    """Largest absolute difference over all outputs, in units of the last place."""
    if len(got) != len(want):
        raise ValueError(f"{len(got)} outputs vs {len(want)}")
    return max(int(np.abs(g.astype(np.int64) - w.astype(np.int64)).max()) for g, w in zip(got, want, strict=False))
