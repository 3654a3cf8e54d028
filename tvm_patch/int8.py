"""The int8 lowering: the frontend's dequantize -> float op -> quantize form becomes integer ops.

Runs on a frontend's module before FoldConstant (which would otherwise turn every int8 weight
into a float32 constant). One named step per concern; each leaves what it does not match as
it was, so an op none of them knows stays in the frontend's float form: correct, not integer
(tests/host/test_int8_tflm_host.py checks that no float is left in the models we have).
"""

from __future__ import annotations

import tvm

from .passes.int8_activation import IntegerActivations
from .passes.int8_conv import IntegerConvDense
from .passes.int8_elementwise import IntegerElementwise
from .passes.int8_pool import IntegerPooling
from .passes.qdq import Graph


def lower_int8(mod: tvm.IRModule, semantics: str | None = None) -> tvm.IRModule:
    """Integer kernels for every int8 op the passes know (a float model passes unchanged).

    semantics "tflite": TFLite Micro's arithmetic, bit for bit; "onnx": onnxruntime's
    float32 scales with ties to even, in integers. None: read it off the module (see
    `quantization_semantics`)."""
    onnx = (semantics or quantization_semantics(mod)) == "onnx"
    rounding = "half_even" if onnx else "tflm"
    steps = [
        # conv2d / depthwise / grouped / dense: int8 weights, int32 accumulation, requantize
        IntegerConvDense(rounding),
        # average pool rounded as TFLM, mean as an int32 sum and one requantize
        IntegerPooling(rounding),
        # logistic / tanh / hard-swish as 256-entry tables, softmax as one kernel
        IntegerActivations(tflm_tables=not onnx),
        # add / sub / mul, requantize and relu / relu6 (tables); concat, pad, reshape, transpose as bytes
        IntegerElementwise(rounding),
    ]
    return tvm.transform.Sequential(steps)(mod)


def quantization_semantics(mod: tvm.IRModule) -> str:
    """ "onnx" or "tflite", from how the frontend wrote the zero points: TVM's ONNX frontend
    keeps the model's int8/uint8 zero-point constants, its TFLite frontend writes int32 ones."""
    for value in Graph(mod["main"]).value.values():
        name = getattr(getattr(value, "op", None), "name", "")
        zero_point_dtype = str(value.args[2].ty.dtype) if name in ("relax.quantize", "relax.dequantize") else ""
        if zero_point_dtype in ("int8", "uint8"):
            return "onnx"
    return "tflite"
