"""TFLite Micro's int8 arithmetic in numpy: the numbers the integer passes bake into kernels.

Written from TFLite Micro's reference kernels and gemmlowp's fixedpoint.h (read, not copied):
`QuantizeMultiplier` (quantization_util.cc), `MultiplyByQuantizedMultiplier` (common.cc; the
tflite-micro build leaves TFLITE_SINGLE_ROUNDING undefined, so it is the *double-rounding*
form: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), each kernel's Prepare
(which scales are float32 and which double), and onnxruntime's float32-scale requantize for
ONNX QDQ models. The gemmlowp fixed point of LOGISTIC, TANH, HARD_SWISH and SOFTMAX is in
fixed_point_nonlinear. Everything is elementwise on int64
numpy arrays holding int32 (or int16) values, wrapping where the C code wraps.

No TVM here: tests check this module against hand-computed values, and the passes use it to
compute multipliers, shifts and lookup tables at compile time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _i64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x: ArrayLike) -> np.ndarray:
    """Two's-complement wrap to int32, as a C int32 add or multiply does on our targets."""
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_half_away(x: float) -> int:
    """C's std::round (TfLiteRound): ties away from zero; Python's round() ties to even."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


# -- QuantizeMultiplier and MultiplyByQuantizedMultiplier ---------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier in [2^30, 2^31), shift) with real ~= multiplier * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = round_half_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(fixed), int(shift)


def srdhm(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32: round(a * b / 2^31), ties up.

    (a*b + nudge) / 2^31 truncated, nudge 2^30 or 1 - 2^30 by the sign of a*b, is
    floor((a*b + 2^30) / 2^31) for either sign; only INT32_MIN * INT32_MIN saturates."""
    a, b = _i64(a), _i64(b)
    out = (a * b + (1 << 30)) >> 31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, out)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int32 x, ...), double rounding (the TFLM build)."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(wrap32(_i64(x) << left), multiplier), right)


def multiply_by_quantized_multiplier_single_rounding(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike
) -> np.ndarray:
    """The TFLITE_SINGLE_ROUNDING variant (one rounding of x * m / 2^(31 - shift)); TFLM's
    PyPI build does not use it. Kept so tests can show which variant the oracle computes."""
    total = 31 - _i64(shift)
    return (_i64(x) * _i64(multiplier) + (np.int64(1) << (total - 1))) >> total


def requantize(
    acc: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, zero_point: int, lo: int = -128, hi: int = 127
) -> np.ndarray:
    """int32 accumulator -> int8: MultiplyByQuantizedMultiplier, + zero point, clamp."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point
    return np.clip(out, lo, hi)


# -- Each kernel's Prepare: which products are float32 and which double --------------------


def f32(x: ArrayLike) -> np.float32:
    return np.float32(x)


def conv_multipliers(
    input_scale: float, filter_scales: ArrayLike, output_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """CONV_2D / DEPTHWISE_CONV_2D / per-channel FULLY_CONNECTED: double(in) * double(w) / double(out)."""
    mults, shifts = [], []
    for s in np.atleast_1d(np.asarray(filter_scales, dtype=np.float32)):
        m, e = quantize_multiplier(float(f32(input_scale)) * float(s) / float(f32(output_scale)))
        mults.append(m)
        shifts.append(e)
    return np.array(mults, dtype=np.int64), np.array(shifts, dtype=np.int64)


def fc_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """Per-tensor FULLY_CONNECTED: the product in float32 first (GetQuantizedConvolutionMultipler)."""
    return quantize_multiplier(float(f32(input_scale) * f32(filter_scale)) / float(f32(output_scale)))


@dataclass(frozen=True)
class AddParams:
    """ADD / SUB: each input rescaled to a common 2x-max scale after << left_shift."""

    left_shift: int
    input1: tuple[int, int]  # (multiplier, shift), shift <= 0
    input2: tuple[int, int]
    output: tuple[int, int]


def add_params(s1: float, s2: float, out: float) -> AddParams:
    """ADD (add_common.cc): the ratios in double."""
    twice_max = 2.0 * float(max(f32(s1), f32(s2)))
    return AddParams(
        20,
        quantize_multiplier(float(f32(s1)) / twice_max),
        quantize_multiplier(float(f32(s2)) / twice_max),
        quantize_multiplier(twice_max / ((1 << 20) * float(f32(out)))),
    )


def sub_params(s1: float, s2: float, out: float) -> AddParams:
    """SUB (sub_common.cc): the same rescaling, but computed in float32 before the cast."""
    twice_max = f32(2) * max(f32(s1), f32(s2))
    return AddParams(
        20,
        quantize_multiplier(float(f32(s1) / twice_max)),
        quantize_multiplier(float(f32(s2) / twice_max)),
        quantize_multiplier(float(twice_max / (f32(1 << 20) * f32(out)))),
    )


def add_int8(
    x1: ArrayLike,
    x2: ArrayLike,
    zp1: int,
    zp2: int,
    zp_out: int,
    p: AddParams,
    lo: ArrayLike = -128,
    hi: ArrayLike = 127,
    sign: int = 1,
) -> np.ndarray:
    """The ADD (sign 1) / SUB (sign -1) arithmetic on int8 values (reference, for tests)."""
    a = multiply_by_quantized_multiplier(wrap32((_i64(x1) - zp1) << p.left_shift), *p.input1)
    b = multiply_by_quantized_multiplier(wrap32((_i64(x2) - zp2) << p.left_shift), *p.input2)
    out = multiply_by_quantized_multiplier(wrap32(a + sign * b), *p.output) + zp_out
    return np.clip(out, lo, hi)


def mul_multiplier(s1: float, s2: float, out: float) -> tuple[int, int]:
    """MUL (mul_common.cc): double(s1) * double(s2) / double(out)."""
    return quantize_multiplier(float(f32(s1)) * float(f32(s2)) / float(f32(out)))


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """MEAN over `count` elements (reduce.h QuantizedMeanOrSum): QuantizeMultiplier(in/out),
    then 1/count folded in as (multiplier << s) / count, shift - s, s = floor(log2(count))
    capped at 32 and at 31 + shift."""
    m, e = quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))
    s = min(count.bit_length() - 1, 32, 31 + e)
    return int((m << s) // count), e - s


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """TFLite's Quantize() helper for activation bounds: float32 division, std::round."""
    return zero_point + round_half_away(float(f32(value) / f32(scale)))


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: ArrayLike = -128, qmax: ArrayLike = 127
) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: "none", "relu", "relu6", "relu_n1_to_1"."""
    if activation == "relu":
        return max(qmin, quantize_value(0.0, scale, zero_point)), qmax
    if activation == "relu6":
        return (
            max(qmin, quantize_value(0.0, scale, zero_point)),
            min(qmax, quantize_value(6.0, scale, zero_point)),
        )
    if activation == "relu_n1_to_1":
        return (
            max(qmin, quantize_value(-1.0, scale, zero_point)),
            min(qmax, quantize_value(1.0, scale, zero_point)),
        )
    return qmin, qmax


def average_pool_round(acc: ArrayLike, count: ArrayLike) -> np.ndarray:
    """AVERAGE_POOL_2D's division of the window sum: ties away from zero, C truncation."""
    acc, count = _i64(acc), _i64(count)
    num = np.where(acc > 0, acc + count // 2, acc - count // 2)
    return np.sign(num) * (np.abs(num) // count)


# -- onnxruntime's requantize (ONNX QDQ models): a float32 scale, ties to even ----------------


def float32_fraction(value: float) -> tuple[int, int]:
    """(m, k) with the float32 `value` = m * 2^-k exactly, m < 2^24 (value > 0)."""
    v = float(f32(value))
    if v <= 0.0:
        return 0, 1
    mant, exp = math.frexp(v)  # v = mant * 2^exp, mant in [0.5, 1) with 24 significant bits
    return int(mant * (1 << 24)), 24 - exp


def round_half_even_shift(p: ArrayLike, k: ArrayLike) -> np.ndarray:
    """p / 2^k rounded to nearest, ties to even (k >= 1)."""
    p, k = _i64(p), _i64(k)
    q = p >> k
    r = p - (q << k)
    half = np.int64(1) << (k - 1)
    return q + ((r > half) | ((r == half) & (q & 1 == 1)))


def onnx_scale(*factors: float, divide_by: float) -> np.float32:
    """The float32 scale onnxruntime's QLinear kernels compute, e.g. x_s * w_s / y_s: the
    product of `factors` then the division, each rounded to float32."""
    s = f32(1.0)
    for v in factors:
        s = f32(s * f32(v))
    return f32(s / f32(divide_by))


def requantize_half_even(
    acc: ArrayLike, m: ArrayLike, k: ArrayLike, zero_point: int, lo: int = -128, hi: int = 127
) -> np.ndarray:
    """ONNX requantize with scale m * 2^-k: round(acc * scale) ties to even, + zp, clamp.
    (onnxruntime rounds acc * scale to float32 first; the two differ only when that float
    rounding crosses a half: about one value in 2^17 for |result| < 128.)"""
    return np.clip(round_half_even_shift(_i64(acc) * _i64(m), k) + zero_point, lo, hi)
