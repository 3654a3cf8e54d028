"""IntegerConvDense: int8 conv2d / depthwise / dense from the QDQ form to integer ops.

Each case builds the frontend's form (Before) and what the pass must write (Expected); the
multipliers in Expected come from fixed_point, the TFLM arithmetic checked against TFLM.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from tests.ir.qdq_graphs import constants, deq, module, quant
from tvm_patch.passes.int8_conv import IntegerConvDense
from tvm_patch.passes.int8_kernels import requantize
from tvm_patch_core import fixed_point as fp

RNG = np.random.default_rng(0)
W = RNG.integers(-127, 128, size=(3, 3, 2, 3), dtype=np.int8)  # HWIO
W_SCALES = np.array([0.011, 0.004, 0.0233], dtype=np.float32)
BIAS = np.array([100, -2000, 35], dtype=np.int32)
X_IN = {"x": ((1, 4, 4, 2), "int8")}


def requantize_te(bb, acc, table, m, s, zp, lo, hi, axis, rounding="tflm"):
    """call_te(requantize, ...) as IntegerConvDense writes it: its numbers also as the
    PrimFunc attribute `tvmp.requantize` (DspKernels reads them there)."""
    numbers = {"zero_point": zp, "lo": lo, "hi": hi, "multiplier": m, "shift": s, "axis": axis, "rounding": rounding}
    return bb.call_te(
        requantize,
        acc,
        table,
        m,
        s,
        zp,
        lo,
        hi,
        axis,
        rounding,
        primfunc_name_hint="requantize",
        primfunc_attrs={"tvmp.requantize": numbers},
    )


def conv_attrs(**kw):
    return dict(padding=[1, 1, 1, 1], data_layout="NHWC", kernel_layout="HWIO", **kw)


def _before_conv(out_scale: float = 0.1, clip=(-128, 127)):
    def body(bb, x):
        d = bb.emit(deq(x, 0.05, -3))
        wd = bb.emit(deq(relax.const(W), W_SCALES, 0, axis=3))
        c = bb.emit(relax.op.nn.conv2d(d, wd, **conv_attrs()))
        bd = bb.emit(deq(relax.const(BIAS), np.float32(0.05) * W_SCALES, 0))
        a = bb.emit(relax.op.add(c, bd))
        q = bb.emit(quant(a, out_scale, -128))
        return relax.op.clip(q, *clip)

    return module(X_IN, body)


def _expected_conv(out_scale: float = 0.1, lo: int = -128, hi: int = 127):
    m, s = fp.conv_multipliers(0.05, W_SCALES, out_scale)
    table = np.stack([BIAS, m, s]).astype(np.int32)

    def body(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        xo = bb.emit(relax.op.subtract(xi, relax.const(-3, "int32")))
        acc = bb.emit(relax.op.nn.conv2d(xo, relax.const(W), **conv_attrs(out_dtype="int32")))
        return requantize_te(
            bb,
            acc,
            relax.const(table),
            None,
            None,
            -128,
            lo,
            hi,
            3,
        )

    return module(X_IN, body)


def test_conv_per_channel_with_bias_and_relu():
    """The common TFLite layer: int8 weights stay int8 in HWIO, (x - zp_x) feeds the conv
    (so padding contributes 0, as in TFLM), one [bias; M; shift] table, the clip folded."""
    tvm.ir.assert_structural_equal(IntegerConvDense()(_before_conv()), _expected_conv())


def test_float_weights_are_left_alone():
    """An fp32 weight is not an int8 model's weight: nothing to rewrite."""

    def body(bb, x):
        d = bb.emit(deq(x, 0.05, -3))
        c = bb.emit(relax.op.nn.conv2d(d, relax.const(np.ones((3, 3, 2, 3), np.float32)), **conv_attrs()))
        return quant(c, 0.1, -128)

    before = module(X_IN, body)
    expected = before
    tvm.ir.assert_structural_equal(IntegerConvDense()(before), expected)


def test_scale_along_the_input_channels_is_left_alone():
    """Per-channel scales must run along the output channels ('O' of HWIO); along 'I' the
    integer accumulation would need a scale per term: leave the float form."""
    weight = RNG.integers(-127, 128, size=(3, 3, 3, 3), dtype=np.int8)

    def body(bb, x):
        d = bb.emit(deq(x, 0.05, -3))
        wd = bb.emit(deq(relax.const(weight), W_SCALES, 0, axis=2))
        c = bb.emit(relax.op.nn.conv2d(d, wd, **conv_attrs()))
        return quant(c, 0.1, -128)

    before = module({"x": ((1, 4, 4, 3), "int8")}, body)
    expected = before
    tvm.ir.assert_structural_equal(IntegerConvDense()(before), expected)


def test_depthwise_weight_tree_is_evaluated():
    """TFLite's depthwise filter [1, H, W, C] (scale on axis 3) is reshaped to HWOI by the
    frontend: the pass applies the reshape to the int8 data and finds the scale on 'O'."""
    c = 4
    w = RNG.integers(-127, 128, size=(1, 3, 3, c), dtype=np.int8)
    scales = np.linspace(0.01, 0.02, c).astype(np.float32)
    attrs = {"padding": [1, 1, 1, 1], "groups": c, "data_layout": "NHWC", "kernel_layout": "HWOI"}

    def before_body(bb, x):
        d = bb.emit(deq(x, 0.03, 5))
        wd = bb.emit(deq(relax.const(w), scales, 0, axis=3))
        wr = bb.emit(relax.op.reshape(wd, (3, 3, c, 1)))
        y = bb.emit(relax.op.nn.conv2d(d, wr, **attrs))
        return quant(y, 0.07, 10)

    m, s = fp.conv_multipliers(0.03, scales, 0.07)
    table = np.stack([np.zeros(c), m, s]).astype(np.int32)

    def expected_body(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        xo = bb.emit(relax.op.subtract(xi, relax.const(5, "int32")))
        acc = bb.emit(relax.op.nn.conv2d(xo, relax.const(w.reshape(3, 3, c, 1)), out_dtype="int32", **attrs))
        return requantize_te(
            bb,
            acc,
            relax.const(table),
            None,
            None,
            10,
            -128,
            127,
            3,
        )

    inputs = {"x": ((1, 5, 5, c), "int8")}
    tvm.ir.assert_structural_equal(IntegerConvDense()(module(inputs, before_body)), module(inputs, expected_body))


def test_dense_per_tensor_multiplies_scales_in_float32():
    """FULLY_CONNECTED per tensor: the weight is permute_dims(W [out, in]) as the frontend
    writes it; the multiplier and shift are immediates (fixed_point.fc_multiplier, the
    float32 product TFLM takes), the bias the table's only row."""
    w = RNG.integers(-127, 128, size=(4, 8), dtype=np.int8)
    bias = np.array([1, -2, 3, -4], dtype=np.int32)

    def before_body(bb, x):
        d = bb.emit(deq(x, 0.0802, -128))
        wt = bb.emit(relax.op.permute_dims(relax.const(w), [1, 0]))
        wd = bb.emit(deq(wt, 0.0083, 0, axis=1))
        y = bb.emit(relax.op.matmul(d, wd))
        bd = bb.emit(deq(relax.const(bias), 0.0802 * 0.0083, 0))
        a = bb.emit(relax.op.add(y, bd))
        return quant(a, 0.1447, 14)

    m, s = fp.fc_multiplier(0.0802, 0.0083, 0.1447)

    def expected_body(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        xo = bb.emit(relax.op.subtract(xi, relax.const(-128, "int32")))
        acc = bb.emit(relax.op.matmul(xo, relax.const(w.T.copy()), out_dtype="int32"))
        return requantize_te(
            bb,
            acc,
            relax.const(bias.reshape(1, 4)),
            m,
            s,
            14,
            -128,
            127,
            1,
        )

    inputs = {"x": ((1, 8), "int8")}
    tvm.ir.assert_structural_equal(IntegerConvDense()(module(inputs, before_body)), module(inputs, expected_body))


def test_relu6_bound_is_rounded_as_tflm():
    """The frontend rounds 6 / scale with Python's round() (ties to even), TFLM with
    std::round (ties away). Output scale 12, zero point -128: 6 / 12 = 0.5, so the frontend's
    clip is (-128, -128 + 0) and TFLM's bound -128 + 1: the pass re-derives it."""
    assert round(6.0 / 12.0) == 0 and fp.activation_range("relu6", 12.0, -128) == (-128, -127)
    before = _before_conv(out_scale=12.0, clip=(-128, -128))
    tvm.ir.assert_structural_equal(IntegerConvDense()(before), _expected_conv(12.0, -128, -127))


def test_weight_zero_point_is_folded_into_the_constant():
    """ONNX allows a weight zero point: (w - zp_w) is computed once; still int8 when it fits."""

    def body(bb, x):
        d = bb.emit(deq(x, 0.05, 0))
        wd = bb.emit(deq(relax.const(np.full((1, 1, 2, 3), 10, np.int8)), np.float32(0.01), 4, axis=3))
        c = bb.emit(relax.op.nn.conv2d(d, wd, data_layout="NHWC", kernel_layout="HWIO"))
        return quant(c, 0.1, 0)

    out = IntegerConvDense()(module(X_IN, body))
    assert [c.reshape(-1)[0] for c in constants(out) if c.dtype == np.int8] == [6]


def test_float_constant_count_is_zero_after_folding():
    """What load_model relies on: after the pass and FoldConstant no float32 constant is left."""
    out = relax.transform.FoldConstant()(IntegerConvDense()(_before_conv()))
    kinds = sorted(str(c.dtype) for c in constants(out))  # the zero point, the table, the weight
    assert kinds == ["int32", "int32", "int8"], kinds


def test_onnx_rounding_uses_onnxruntimes_float32_scale():
    """rounding="half_even" (ONNX QDQ): the table holds the float32 x_s * w_s / y_s as m, k
    (fixed_point.float32_fraction), applied with ties to even."""
    pairs = [fp.float32_fraction(fp.onnx_scale(0.05, s, divide_by=0.1)) for s in W_SCALES]
    table = np.stack([BIAS, [p[0] for p in pairs], [p[1] for p in pairs]]).astype(np.int32)

    def body(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        xo = bb.emit(relax.op.subtract(xi, relax.const(-3, "int32")))
        acc = bb.emit(relax.op.nn.conv2d(xo, relax.const(W), **conv_attrs(out_dtype="int32")))
        return requantize_te(
            bb,
            acc,
            relax.const(table),
            None,
            None,
            -128,
            -128,
            127,
            3,
            "half_even",
        )

    tvm.ir.assert_structural_equal(IntegerConvDense("half_even")(_before_conv()), module(X_IN, body))


def test_frontend_is_read_off_the_zero_points():
    """TVM's TFLite frontend writes int32 zero points, its ONNX frontend the model's int8 ones."""
    from tvm_patch.int8 import quantization_semantics

    assert quantization_semantics(_before_conv()) == "tflite"

    def onnx_body(bb, x):
        d = bb.emit(relax.op.dequantize(x, relax.const(np.float32(0.05)), relax.const(np.int8(-3)), axis=1))
        return relax.op.quantize(d, relax.const(np.float32(0.05)), relax.const(np.int8(-3)), axis=1, out_dtype="int8")

    assert quantization_semantics(module(X_IN, onnx_body)) == "onnx"


def test_unknown_rounding_is_rejected():
    """Only TFLM's rounding and ONNX's ties-to-even exist: anything else is refused at construction."""
    with pytest.raises(ValueError, match="rounding 'nearest'"):
        IntegerConvDense("nearest")
