"""tvm_patch_core.fixed_point computes what TFLite Micro computes, op by op, byte for byte.

Each case builds a one-op int8 TFLite model (tests/tflite_ops.py), runs it in TFLite Micro
(the oracle, in a subprocess) and compares with the numpy arithmetic the integer passes bake
into kernels. Scales are drawn over several decades so multipliers, shifts, the rounding of
ties and the radius cut-offs of LOGISTIC/TANH are all exercised. No TVM here.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import tflite_ops as ops
from tests.tflite_ops import Q, run_tflm
from tvm_patch_core import fixed_point as fp
from tvm_patch_core import fixed_point_nonlinear as fpn

ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
SCALES = (0.0007, 0.0039, 0.011, 0.05, 0.19, 0.6)  # input scales spanning the MLPerf models' range


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("zp", (-128, -3, 40))
def test_logistic_and_tanh_tables(scale, zp, tmp_path):
    """Every int8 input of LOGISTIC and TANH: the gemmlowp fixed-point tables."""
    got = run_tflm(ops.unary("LOGISTIC", (1, 256), Q(scale, zp), Q(1 / 256, -128)), [ALL_INT8], tmp_path)[0]
    np.testing.assert_array_equal(got[0], fpn.logistic_table(scale, zp))
    got = run_tflm(ops.unary("TANH", (1, 256), Q(scale, zp), Q(1 / 128, 0)), [ALL_INT8], tmp_path)[0]
    np.testing.assert_array_equal(got[0], fpn.tanh_table(scale, zp))


@pytest.mark.parametrize(
    "qx,qy",
    [
        ((0.05, 7), (0.025, -113)),
        ((0.2, -20), (0.09, -60)),
        ((0.011, 0), (0.009, -128)),
        ((0.6, 100), (0.7, 11)),
    ],
)
def test_hard_swish_table(qx, qy, tmp_path):
    """Every int8 input of HARD_SWISH: int16 fixed point with both shift directions."""
    got = run_tflm(ops.unary("HARD_SWISH", (1, 256), Q(*qx), Q(*qy)), [ALL_INT8], tmp_path)[0]
    np.testing.assert_array_equal(got[0], fpn.hard_swish_table(qx[0], qx[1], qy[0], qy[1]))


@pytest.mark.parametrize("scale", (0.0035, 0.0625, 0.145, 0.9))
def test_softmax_rows(scale, tmp_path):
    """SOFTMAX over rows of 10: exp table, sum, reciprocal, per-element rounding."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(32, 10), dtype=np.int8)
    x[0] = 5  # all equal
    x[1, :] = -128
    x[1, 3] = 127  # one dominant
    got = run_tflm(ops.unary("SOFTMAX", x.shape, Q(scale, 14), Q(1 / 256, -128)), [x], tmp_path)[0]
    np.testing.assert_array_equal(got, fpn.softmax_int8(x, fpn.softmax_params(scale)))


@pytest.mark.parametrize("op", ("ADD", "SUB"))
@pytest.mark.parametrize("activation", ("none", "relu"))
def test_add_sub(op, activation, tmp_path):
    """ADD/SUB rescale both inputs to twice the larger scale after << 20 (SUB in float32)."""
    rng = np.random.default_rng(3)
    cases = [
        ((0.039, -128), (0.104, 4), (0.051, -128)),
        ((0.0082, 40), (0.0083, -14), (0.011, 3)),
        ((0.5, 0), (0.0021, -128), (0.3, 17)),
    ]
    for q1, q2, qo in cases:
        a = rng.integers(-128, 128, size=(4, 64), dtype=np.int8)
        b = rng.integers(-128, 128, size=(4, 64), dtype=np.int8)
        got = run_tflm(ops.binary(op, a.shape, b.shape, Q(*q1), Q(*q2), Q(*qo), activation), [a, b], tmp_path)[0]
        params = (fp.add_params if op == "ADD" else fp.sub_params)(q1[0], q2[0], qo[0])
        lo, hi = fp.activation_range(activation, qo[0], qo[1])
        want = fp.add_int8(a, b, q1[1], q2[1], qo[1], params, lo, hi, sign=1 if op == "ADD" else -1)
        np.testing.assert_array_equal(got, want, err_msg=f"{op} {q1} {q2} {qo}")


def test_mul_broadcast(tmp_path):
    """MUL with a [1,1,1,C] gate (squeeze-excite): one MultiplyByQuantizedMultiplier."""
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, size=(1, 4, 4, 16), dtype=np.int8)
    b = rng.integers(-128, 128, size=(1, 1, 1, 16), dtype=np.int8)
    q1, q2, qo = (0.0335, -128), (0.0022, -128), (0.0164, -128)
    got = run_tflm(ops.binary("MUL", a.shape, b.shape, Q(*q1), Q(*q2), Q(*qo)), [a, b], tmp_path)[0]
    m, s = fp.mul_multiplier(q1[0], q2[0], qo[0])
    prod = (a.astype(np.int64) - q1[1]) * (b.astype(np.int64) - q2[1])
    np.testing.assert_array_equal(got, fp.requantize(prod, m, s, qo[1]))


def _conv_ref(x, w_ohwi, bias, qx, w_scales, qy, stride, pads, groups=1, activation="none"):
    """TFLM's ConvPerChannel in numpy (NHWC, weights OHWI, padding contributes 0 after -zp)."""
    n, h, wd, c = x.shape
    o, kh, kw, ci = w_ohwi.shape
    xp = np.zeros((n, h + pads[0] + pads[2], wd + pads[1] + pads[3], c), dtype=np.int64)
    xp[:, pads[0] : pads[0] + h, pads[1] : pads[1] + wd] = x.astype(np.int64) - qx[1]
    oh = (xp.shape[1] - kh) // stride[0] + 1
    ow = (xp.shape[2] - kw) // stride[1] + 1
    acc = np.zeros((n, oh, ow, o), dtype=np.int64)
    per = o // groups
    for oc in range(o):
        g = oc // per
        for dy in range(kh):
            for dx in range(kw):
                win = xp[
                    :,
                    dy : dy + oh * stride[0] : stride[0],
                    dx : dx + ow * stride[1] : stride[1],
                    g * ci : (g + 1) * ci,
                ]
                acc[..., oc] += win @ w_ohwi[oc, dy, dx].astype(np.int64)
    if bias is not None:
        acc += bias
    m, s = fp.conv_multipliers(qx[0], w_scales, qy[0])
    lo, hi = fp.activation_range(activation, qy[0], qy[1])
    return fp.requantize(acc, m, s, qy[1], lo, hi)


@pytest.mark.parametrize("activation", ("none", "relu6"))
def test_conv_per_channel_double_rounding(activation, tmp_path):
    """CONV_2D per channel: TFLM's build uses the double-rounding MultiplyByQuantizedMultiplier
    (the single-rounding variant gives different bytes on the same accumulators)."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(1, 9, 9, 8), dtype=np.int8)
    w = rng.integers(-127, 128, size=(16, 3, 3, 8), dtype=np.int8)
    w_scales = rng.uniform(0.002, 0.02, size=16).astype(np.float32)
    bias = rng.integers(-3000, 3000, size=16, dtype=np.int32)
    qx, qy = (0.0315, -5), (0.2, 0 if activation == "none" else -60)
    model = ops.conv2d(x.shape, w, w_scales, bias, Q(*qx), Q(*qy), stride=(2, 2), activation=activation)
    got = run_tflm(model, [x], tmp_path)[0]
    # SAME on 9 with stride 2: 5 outputs, (5 - 1) * 2 + 3 - 9 = 2 rows of padding, 1 on top
    want = _conv_ref(x, w, bias, qx, w_scales, qy, (2, 2), (1, 1, 1, 1), activation=activation)
    assert len(np.unique(want)) > 25, "outputs saturate: the scales do not exercise the rounding"
    np.testing.assert_array_equal(got, want)


def test_single_rounding_is_not_what_tflm_runs(tmp_path):
    """The two MultiplyByQuantizedMultiplier variants differ on some accumulators; TFLM's
    output matches the double-rounding one (test above), so the other must not."""
    acc = np.arange(-200000, 200000, 7, dtype=np.int64)
    m, s = fp.quantize_multiplier(0.0123)
    double = fp.multiply_by_quantized_multiplier(acc, m, s)
    single = fp.multiply_by_quantized_multiplier_single_rounding(acc, m, s)
    assert (double != single).any()
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, size=(1, 16, 16, 16), dtype=np.int8)
    w = rng.integers(-127, 128, size=(16, 1, 1, 16), dtype=np.int8)
    w_scales = np.full(16, 0.0123 * 0.1 / 0.03, dtype=np.float32)
    got = run_tflm(
        ops.conv2d(x.shape, w, w_scales, None, Q(0.03, 0), Q(0.1, 0), padding="VALID"),
        [x],
        tmp_path,
    )[0]
    acc = x.astype(np.int64) @ w[:, 0, 0, :].T.astype(np.int64)
    m, s = fp.conv_multipliers(0.03, w_scales[:1], 0.1)
    single = np.clip(fp.multiply_by_quantized_multiplier_single_rounding(acc, m[0], s[0]), -128, 127)
    double = np.clip(fp.multiply_by_quantized_multiplier(acc, m[0], s[0]), -128, 127)
    np.testing.assert_array_equal(got, double)
    assert (got != single).any(), "this input does not separate the variants; pick another"


def test_fully_connected_per_tensor_float_product(tmp_path):
    """Per-tensor FULLY_CONNECTED multiplies the two scales in float32 before the double."""
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, size=(3, 64), dtype=np.int8)
    w = rng.integers(-127, 128, size=(12, 64), dtype=np.int8)
    bias = rng.integers(-2000, 2000, size=12, dtype=np.int32)
    qx, ws, qy = (0.0802, -128), 0.00838, (0.1447, 14)
    got = run_tflm(ops.fully_connected(x.shape, w, ws, bias, Q(*qx), Q(*qy)), [x], tmp_path)[0]
    acc = (x.astype(np.int64) - qx[1]) @ w.T.astype(np.int64) + bias
    m, s = fp.fc_multiplier(qx[0], ws, qy[0])
    np.testing.assert_array_equal(got, fp.requantize(acc, m, s, qy[1]))


@pytest.mark.parametrize(
    "size,stride,padding",
    [((3, 3), (1, 1), "SAME"), ((2, 2), (2, 2), "VALID"), ((25, 5), (25, 5), "VALID")],
)
def test_average_pool_rounding(size, stride, padding, tmp_path):
    """AVERAGE_POOL_2D: window sum over the in-image part, divided with ties away from zero."""
    rng = np.random.default_rng(9)
    shape = (1, 25, 5, 8) if size == (25, 5) else (1, 8, 8, 4)
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    got = run_tflm(ops.pool2d("AVERAGE_POOL_2D", shape, Q(0.05, -3), size, stride, padding), [x], tmp_path)[0]
    _, h, w, _ = shape
    oh, ow = got.shape[1:3]
    ph = max((oh - 1) * stride[0] + size[0] - h, 0) // 2
    pw = max((ow - 1) * stride[1] + size[1] - w, 0) // 2
    want = np.zeros(got.shape, dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * stride[0] - ph, j * stride[1] - pw
            win = x[:, max(y0, 0) : min(y0 + size[0], h), max(x0, 0) : min(x0 + size[1], w)].astype(np.int64)
            want[:, i, j] = fp.average_pool_round(win.sum(axis=(1, 2)), win.shape[1] * win.shape[2])
    np.testing.assert_array_equal(got, np.clip(want, -128, 127))


@pytest.mark.parametrize("shape,axes", [((1, 16, 16, 32), (1, 2)), ((1, 17, 9, 32), (1, 2)), ((1, 6, 6, 128), (1, 2))])
def test_mean(shape, axes, tmp_path):
    """MEAN: int32 sum minus zp * count, one multiplier with 1/count folded in."""
    rng = np.random.default_rng(10)
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    qx, qy = (0.0254, -7), (0.0036, -128)
    got = run_tflm(ops.mean(shape, Q(*qx), Q(*qy), axes), [x], tmp_path)[0]
    count = int(np.prod([shape[a] for a in axes]))
    m, s = fp.mean_multiplier(qx[0], qy[0], count)
    acc = x.astype(np.int64).sum(axis=axes, keepdims=True) - qx[1] * count
    np.testing.assert_array_equal(got, fp.requantize(acc, m, s, qy[1]))
