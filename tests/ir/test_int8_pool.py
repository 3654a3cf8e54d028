"""IntegerPooling: average pool and mean with TFLM's rounding."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tests.ir.qdq_graphs import deq, module, quant
from tvm_patch.passes.int8_kernels import offset_requantize, round_half_of
from tvm_patch.passes.int8_pool import IntegerPooling
from tvm_patch_core import fixed_point as fp

POOL = {"pool_size": [3, 3], "strides": [1, 1], "padding": [1, 1, 1, 1], "layout": "NHWC"}
X = {"x": ((1, 6, 6, 4), "int8")}


def test_average_pool_rounds_half_away_from_zero():
    """The frontend's astype -> avg_pool2d -> astype truncates; the pass pools 2x and rounds
    the halves away from zero (TFLM), keeping avg_pool2d so the layer graph sees a pool."""

    def before(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        p = bb.emit(relax.op.nn.avg_pool2d(xi, **POOL))
        return relax.op.astype(p, "int8")

    def expected(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        x2 = bb.emit(relax.op.multiply(xi, relax.const(2, "int32")))
        q = bb.emit(relax.op.nn.avg_pool2d(x2, **POOL))
        q = bb.emit(relax.op.astype(q, "int32"))
        return bb.call_te(round_half_of, q, -128, 127, primfunc_name_hint="round_half")

    tvm.ir.assert_structural_equal(IntegerPooling()(module(X, before)), module(X, expected))


def test_float_average_pool_is_left_alone():
    """A float pool (an fp32 model) has no int8 source: unchanged."""

    def before(bb, x):
        return relax.op.nn.avg_pool2d(x, **POOL)

    mod = module({"x": ((1, 6, 6, 4), "float32")}, before)
    expected = mod
    tvm.ir.assert_structural_equal(IntegerPooling()(mod), expected)


def test_mean_is_a_sum_and_one_requantize():
    """MEAN over H, W: int32 sum, minus zp * count, 1/count folded into the multiplier."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.0254, -7))
        m = bb.emit(relax.op.mean(d, axis=[1, 2], keepdims=True))
        return quant(m, 0.0036, -128)

    mult, shift = fp.mean_multiplier(0.0254, 0.0036, 36)

    def expected(bb, x):
        xi = bb.emit(relax.op.astype(x, "int32"))
        s = bb.emit(relax.op.sum(xi, axis=[1, 2], keepdims=True))
        return bb.call_te(offset_requantize, s, 7 * 36, mult, shift, -128, primfunc_name_hint="requantize")

    tvm.ir.assert_structural_equal(IntegerPooling()(module(X, before)), module(X, expected))


def test_max_pool_between_dequantize_and_quantize_runs_on_int8():
    """ONNX QDQ writes DQ -> MaxPool -> Q: with the same quantization, max commutes with it."""
    attrs = {"pool_size": [2, 2], "strides": [2, 2], "layout": "NHWC"}

    def before(bb, x):
        d = bb.emit(deq(x, 0.02, 3))
        m = bb.emit(relax.op.nn.max_pool2d(d, **attrs))
        return quant(m, 0.02, 3)

    def expected(bb, x):
        return relax.op.nn.max_pool2d(x, **attrs)

    tvm.ir.assert_structural_equal(IntegerPooling()(module(X, before)), module(X, expected))


def test_the_doubled_pool_rounds_like_tflm():
    """Why avg_pool2d(2x) works: trunc(2 sum / count), then (|q| + 1) >> 1 with q's sign, is
    TFLM's (sum +- count / 2) / count for every sum and count a 5x5 window can give."""
    sums = np.arange(-128 * 25, 127 * 25 + 1)
    for count in range(1, 26):
        q = np.trunc(2 * sums / count).astype(np.int64)
        ours = np.sign(q) * ((np.abs(q) + 1) >> 1)
        np.testing.assert_array_equal(ours, fp.average_pool_round(sums, count), err_msg=f"count {count}")


def test_onnx_average_pool_stays_onnxs_float32():
    """ONNX QDQ (rounding "half_even"): DQ -> AveragePool -> Q stays float32 as written; the
    integer pool of q padded with 0 (not the zero point) and rounded half away from zero was
    5 to 177 LSB from onnxruntime on fuzz seeds with count_include_pad and .5 ties."""
    attrs = {**POOL, "count_include_pad": True}

    def before(bb, x):
        d = bb.emit(deq(x, 0.02, 3))
        return quant(bb.emit(relax.op.nn.avg_pool2d(d, **attrs)), 0.02, 3)

    tvm.ir.assert_structural_equal(IntegerPooling("half_even")(module(X, before)), module(X, before))
