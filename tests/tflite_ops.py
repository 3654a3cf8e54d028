"""One-op int8 TFLite models built in memory, for op-by-op checks against TFLite Micro.

Uses the model editor that ships in the `tflite-micro` package (no TensorFlow needed): each
builder returns the .tflite bytes of a model with one operator, int8 in and out, with the
scales, zero points, weights and options given. Both TVM's TFLite frontend (via `tflite`)
and TFLite Micro read these files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class Q:
    """Quantization of a tensor: scale(s), zero point(s), channel axis for per-channel."""

    scale: float | tuple[float, ...]
    zp: int | tuple[int, ...] = 0
    axis: int | None = None


_ACT = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}


def require_tflm() -> None:
    pytest.importorskip("tflite_micro", reason="tflite-micro is not installed: no int8 oracle")


def run_tflm(model: bytes, inputs: list[np.ndarray], tmp_path: Path, name: str = "op") -> list[np.ndarray]:
    """Write `model` to tmp_path and return TFLite Micro's outputs (tests/reference/tflm.py)."""
    from tests.reference.tflm import tflm_outputs

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    return tflm_outputs(path, inputs)


class OpModel:
    """A subgraph under construction: tensors, one or more operators, inputs and outputs."""

    def __init__(self) -> None:
        require_tflm()
        from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

        self.me, self.fb = me, fb
        self.model = me.Model()
        self.sg = self.model.add_subgraph()
        self.inputs: list = []
        self.outputs: list = []

    def _quant(self, q: Q | None):
        if q is None:
            return None
        scales = list(q.scale) if isinstance(q.scale, tuple) else float(q.scale)
        zps = list(q.zp) if isinstance(q.zp, tuple) else int(q.zp)
        return self.me.Quantization(scales=scales, zero_points=zps, axis=q.axis)

    def tensor(
        self,
        shape,
        q: Q | None,
        dtype: str = "int8",
        data: np.ndarray | None = None,
        name: str = "",
    ):
        tt = {
            "int8": self.fb.TensorType.INT8,
            "int32": self.fb.TensorType.INT32,
            "float32": self.fb.TensorType.FLOAT32,
        }[dtype]
        kw = {"data": np.ascontiguousarray(data, dtype=dtype)} if data is not None else {}
        return self.sg.add_tensor(
            shape=tuple(int(d) for d in shape),
            dtype=tt,
            quantization=self._quant(q),
            name=name or f"t{len(self.sg.tensors)}",
            **kw,
        )

    def input(self, shape, q: Q):
        t = self.tensor(shape, q)
        self.inputs.append(t)
        return t

    def op(self, name: str, inputs, outputs, options=None, options_type: str | None = None):
        code = getattr(self.fb.BuiltinOperator, name)
        if all(oc.builtin_code != code for oc in self.model.operator_codes):
            # the editor writes only the new builtin_code field; readers of the older schema
            # (the `tflite` package TVM's frontend uses) read deprecated_builtin_code
            oc = self.me.OperatorCode(builtin_code=code)
            oc._fb.deprecatedBuiltinCode = min(code, 127)
            self.model.operator_codes.append(oc)
        o = self.sg.add_operator(opcode=code, inputs=list(inputs), outputs=list(outputs))
        if options is not None:
            o._fb.builtinOptionsType = getattr(self.fb.BuiltinOptions, options_type)
            o._fb.builtinOptions = options
        return o

    def options(self, cls: str, **fields):
        opt = getattr(self.fb, cls + "T")()
        for k, v in fields.items():
            setattr(opt, k, v)
        return opt

    def build(self, *outputs) -> bytes:
        self.sg.inputs = list(self.inputs)
        self.sg.outputs = list(outputs)
        return bytes(self.model.build())


def unary(op: str, shape, qx: Q, qy: Q, **options) -> bytes:
    """LOGISTIC, TANH, HARD_SWISH, SOFTMAX (beta=...), RELU, RELU6, QUANTIZE (int8 -> int8)."""
    m = OpModel()
    x = m.input(shape, qx)
    y = m.tensor(shape, qy)
    opts = {"SOFTMAX": ("SoftmaxOptions", {"beta": options.get("beta", 1.0)})}.get(op)
    m.op(op, [x], [y], *(m.options(opts[0], **opts[1]), opts[0]) if opts else ())
    return m.build(y)


def binary(
    op: str,
    shape1,
    shape2,
    q1: Q,
    q2: Q,
    qy: Q,
    activation: str = "none",
    const2: np.ndarray | None = None,
) -> bytes:
    """ADD, SUB, MUL (broadcasting as TFLite does); `const2` makes the second input a constant."""
    m = OpModel()
    a = m.input(shape1, q1)
    b = m.tensor(shape2, q2, data=const2) if const2 is not None else m.input(shape2, q2)
    out_shape = np.broadcast_shapes(tuple(shape1), tuple(shape2))
    y = m.tensor(out_shape, qy)
    name = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}[op]
    m.op(op, [a, b], [y], m.options(name, fusedActivationFunction=_ACT[activation]), name)
    return m.build(y)


def conv2d(
    x_shape,
    weights: np.ndarray,
    w_scales,
    bias: np.ndarray | None,
    qx: Q,
    qy: Q,
    *,
    stride=(1, 1),
    padding: str = "SAME",
    dilation=(1, 1),
    activation: str = "none",
    depthwise: bool = False,
) -> bytes:
    """CONV_2D (weights OHWI) or DEPTHWISE_CONV_2D (weights 1HWC), per-channel int8 weights."""
    m = OpModel()
    x = m.input(x_shape, qx)
    w_scales = tuple(float(s) for s in np.atleast_1d(w_scales))
    axis = 3 if depthwise else 0
    w = m.tensor(weights.shape, Q(w_scales, tuple([0] * len(w_scales)), axis), data=weights)
    cout = weights.shape[axis]
    ins = [x, w]
    if bias is not None:
        bq = Q(tuple(float(qx.scale) * s for s in w_scales), tuple([0] * len(w_scales)), 0)
        ins.append(m.tensor((cout,), bq, dtype="int32", data=bias))
    n, h, wd, _ = x_shape
    kh, kw = weights.shape[1:3]
    eff = [(k - 1) * d + 1 for k, d in zip((kh, kw), dilation, strict=True)]
    if padding == "SAME":
        oh, ow = -(-h // stride[0]), -(-wd // stride[1])
    else:
        oh, ow = (h - eff[0]) // stride[0] + 1, (wd - eff[1]) // stride[1] + 1
    y = m.tensor((n, oh, ow, cout), qy)
    pad = getattr(m.fb.Padding, padding)
    if depthwise:
        opts = m.options(
            "DepthwiseConv2DOptions",
            padding=pad,
            strideH=stride[0],
            strideW=stride[1],
            depthMultiplier=cout // x_shape[3],
            fusedActivationFunction=_ACT[activation],
            dilationHFactor=dilation[0],
            dilationWFactor=dilation[1],
        )
        m.op("DEPTHWISE_CONV_2D", ins, [y], opts, "DepthwiseConv2DOptions")
    else:
        opts = m.options(
            "Conv2DOptions",
            padding=pad,
            strideH=stride[0],
            strideW=stride[1],
            fusedActivationFunction=_ACT[activation],
            dilationHFactor=dilation[0],
            dilationWFactor=dilation[1],
        )
        m.op("CONV_2D", ins, [y], opts, "Conv2DOptions")
    return m.build(y)


def fully_connected(
    x_shape,
    weights: np.ndarray,
    w_scales,
    bias: np.ndarray | None,
    qx: Q,
    qy: Q,
    activation: str = "none",
) -> bytes:
    """FULLY_CONNECTED with weights [out, in]; per-channel when w_scales has one per output."""
    m = OpModel()
    x = m.input(x_shape, qx)
    w_scales = tuple(float(s) for s in np.atleast_1d(w_scales))
    w = m.tensor(weights.shape, Q(w_scales, tuple([0] * len(w_scales)), 0), data=weights)
    ins = [x, w]
    if bias is not None:
        bq = Q(tuple(float(qx.scale) * s for s in w_scales), tuple([0] * len(w_scales)), 0)
        ins.append(m.tensor((weights.shape[0],), bq, dtype="int32", data=bias))
    y = m.tensor((int(np.prod(x_shape[:-1])), weights.shape[0]), qy)
    opts = m.options("FullyConnectedOptions", fusedActivationFunction=_ACT[activation])
    m.op("FULLY_CONNECTED", ins, [y], opts, "FullyConnectedOptions")
    return m.build(y)


def pool2d(op: str, x_shape, q: Q, size, stride, padding: str = "VALID", activation: str = "none") -> bytes:
    """AVERAGE_POOL_2D / MAX_POOL_2D (TFLite requires the same in/out quantization)."""
    m = OpModel()
    x = m.input(x_shape, q)
    n, h, w, c = x_shape
    if padding == "SAME":
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
    else:
        oh, ow = (h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1
    y = m.tensor((n, oh, ow, c), q)
    opts = m.options(
        "Pool2DOptions",
        padding=getattr(m.fb.Padding, padding),
        strideH=stride[0],
        strideW=stride[1],
        filterHeight=size[0],
        filterWidth=size[1],
        fusedActivationFunction=_ACT[activation],
    )
    m.op(op, [x], [y], opts, "Pool2DOptions")
    return m.build(y)


def mean(x_shape, qx: Q, qy: Q, axes, keep_dims: bool = True) -> bytes:
    """MEAN over `axes`."""
    m = OpModel()
    x = m.input(x_shape, qx)
    ax = m.tensor((len(axes),), None, dtype="int32", data=np.array(axes, dtype=np.int32))
    out = (
        [1 if i in axes else d for i, d in enumerate(x_shape)]
        if keep_dims
        else [d for i, d in enumerate(x_shape) if i not in axes]
    )
    y = m.tensor(out, qy)
    m.op("MEAN", [x, ax], [y], m.options("ReducerOptions", keepDims=keep_dims), "ReducerOptions")
    return m.build(y)
