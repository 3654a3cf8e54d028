"""TFLite Micro's int8 arithmetic in numpy: the numbers the integer passes bake into kernels.

Written from TFLite Micro's reference kernels and gemmlowp's fixedpoint.h (read, not copied):
`QuantizeMultiplier` (quantization_util.cc), `MultiplyByQuantizedMultiplier` (common.cc; the
tflite-micro build leaves TFLITE_SINGLE_ROUNDING undefined, so it is the *double-rounding*
form: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), each kernel's Prepare
(which scales are float32 and which double), and the gemmlowp fixed-point exp / 1/(1+x) /
logistic / tanh that LOGISTIC, TANH and SOFTMAX use. Everything is elementwise on int64
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


# -- gemmlowp fixed point (FixedPoint<int32, k>: raw int32, 31 - k fractional bits) -------


def _sat_shift_left(x: ArrayLike, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT for a positive exponent on int32."""
    x = _i64(x)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, wrap32(x << exponent)))


def rescale(x: ArrayLike, src_bits: int, dst_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<src>)."""
    e = src_bits - dst_bits
    if e > 0:
        return _sat_shift_left(x, e)
    if e < 0:
        return rounding_divide_by_pot(x, -e)
    return _i64(x)


def _rounding_half_sum(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    s = _i64(a) + _i64(b)
    num = s + np.where(s >= 0, 1, -1)
    return np.sign(num) * (np.abs(num) // 2)  # C division truncates


def exp_on_negative_values(a: ArrayLike, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0, a a FixedPoint<int32, integer_bits> raw; result FixedPoint<int32, 0>."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    # exp on [-1/4, 0): Taylor series around -1/8 in Q0.31
    x = wrap32(rescale(a_mod, integer_bits, 0) + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), 1)
    result = wrap32(1895147668 + srdhm(1895147668, wrap32(x + poly)))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in (
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    ):
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) (Q0.31 in and out): Newton-Raphson in Q2.29."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    one_q2 = 1 << 29
    for _ in range(3):
        t = wrap32(one_q2 - srdhm(half_denominator, x))
        x = wrap32(x + _sat_shift_left(srdhm(x, t), 2))
    return _sat_shift_left(x, 1)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> np.ndarray:
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    one_q2 = 1 << 29
    for _ in range(3):
        t = wrap32(one_q2 - srdhm(half_denominator, x))
        x = wrap32(x + _sat_shift_left(srdhm(x, t), 2))
    return _sat_shift_left(wrap32(x - one_q2), 2)


def logistic_fixed(a: ArrayLike, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: FixedPoint<int32, integer_bits> raw -> FixedPoint<int32, 0> raw."""
    a = _i64(a)
    positive = a > 0
    abs_a = np.where(positive, a, wrap32(-a))
    on_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_a), integer_bits))
    on_negative = wrap32(INT32_MAX - on_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, on_positive, on_negative))


def tanh_fixed(a: ArrayLike, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh: FixedPoint<int32, integer_bits> raw -> FixedPoint<int32, 0> raw."""
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap32(-a))
    # exp(2n): ExactMulByPot<1> keeps the raw value and adds an integer bit
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap32(-t), t))


def count_leading_zeros32(x: ArrayLike) -> np.ndarray:
    """CountLeadingZeros of x as a uint32 (32 for 0)."""
    bits = np.vectorize(lambda v: int(v).bit_length(), otypes=[np.int64])
    return 32 - bits(_i64(x) & 0xFFFFFFFF)


def get_reciprocal(x: ArrayLike, integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """common.h GetReciprocal: (1/x as Q0.31 of x scaled into [1, 2), num_bits_over_unit)."""
    x = _i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    bits_over_unit = integer_bits - headroom_plus_one
    shifted_minus_one = wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), bits_over_unit


# -- Whole int8 elementwise functions (as lookup tables) and softmax -----------------------

_ALL_INT8 = np.arange(-128, 128, dtype=np.int64)


def _tanh_logistic_prepare(input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, input range radius) of LOGISTIC/TANH: frexp + std::round, 4
    integer bits (no multiplier == 2^31 fix-up here, unlike QuantizeMultiplier)."""
    q, shift = math.frexp(float(f32(input_scale)) * float(1 << (31 - 4)))
    multiplier = int(wrap32(round_half_away(q * (1 << 31))))  # a C cast of 2^31 wraps
    return multiplier, shift, calculate_input_radius(4, shift, 31)


def calculate_input_radius(integer_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """The largest |input - zero point| the fixed-point kernel handles (CalculateInputRadius)."""
    top = ((1 << integer_bits) - 1) * (1 << (total_bits - integer_bits))
    return math.floor(math.ldexp(top, -left_shift))


def logistic_table(input_scale: float, input_zp: int) -> np.ndarray:
    """LOGISTIC int8 -> int8 (integer_ops/logistic.h) for every input value -128..127."""
    m, shift, radius = _tanh_logistic_prepare(input_scale)
    x = _ALL_INT8 - input_zp
    q0 = logistic_fixed(multiply_by_quantized_multiplier(x, m, shift), 4)
    mid = np.clip(rounding_divide_by_pot(q0, 23) - 128, -128, 127)
    return np.where(x <= -radius, -128, np.where(x >= radius, 127, mid)).astype(np.int8)


def tanh_table(input_scale: float, input_zp: int) -> np.ndarray:
    """TANH int8 -> int8 (integer_ops/tanh.h) for every input value -128..127."""
    m, shift, radius = _tanh_logistic_prepare(input_scale)
    x = _ALL_INT8 - input_zp
    q0 = tanh_fixed(multiply_by_quantized_multiplier(x, m, shift), 4)
    mid = np.clip(rounding_divide_by_pot(q0, 24), -128, 127)
    return np.where(x <= -radius, -128, np.where(x >= radius, 127, mid)).astype(np.int8)


def _int16(x: ArrayLike) -> np.ndarray:
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _srdhm16(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    a, b = _i64(a), _i64(b)
    out = (a * b + (1 << 14)) >> 15  # same floor identity as srdhm, on int16
    return np.where((a == -32768) & (b == -32768), 32767, out)


def _downscale_to_int16(multiplier: int) -> int:
    if multiplier >= INT32_MAX - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


def hard_swish_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """HARD_SWISH int8 -> int8 (reference/hard_swish.h, int16 fixed point) for -128..127."""
    hires = f32(1.0 / 128.0) * f32(input_scale)
    out_m, out_e = quantize_multiplier(float(hires / f32(output_scale)))
    relu_m, relu_e = quantize_multiplier(float(hires / f32(3.0 / 32768.0)))
    out_m16, relu_m16 = _downscale_to_int16(out_m), _downscale_to_int16(relu_m)
    x = _int16(_ALL_INT8 - input_zp)
    hires_x = _int16(x * 128)
    preshift = _srdhm16(hires_x, out_m16)
    reluish = hires_x
    if relu_e > 0:
        reluish = np.clip(reluish * (1 << (relu_e - 1)), -32768, 32767)
    reluish = _srdhm16(reluish, relu_m16)
    if relu_e > 0:
        reluish = np.clip(reluish * 2, -32768, 32767)
    if relu_e < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_e)
    reluish = _int16((reluish + (1 << 15)) >> 1)
    prod = reluish * preshift
    sdhm = np.where(
        (reluish == -32768) & (preshift == -32768),
        32767,
        np.sign(prod) * (np.abs(prod) // (1 << 15)),
    )
    out = _int16(rounding_divide_by_pot(_int16(sdhm), -out_e) + output_zp)  # int16 +=
    return np.clip(out, -128, 127).astype(np.int8)


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(input_scale: float, beta: float = 1.0) -> SoftmaxParams:
    """SOFTMAX int8 Prepare: PreprocessSoftmaxScaling with 5 integer bits, diff_min."""
    real = min(beta * float(f32(input_scale)) * (1 << (31 - 5)), float((1 << 31) - 1))
    m, shift = quantize_multiplier(real)
    return SoftmaxParams(m, shift, -calculate_input_radius(5, shift, 31))


def softmax_exp_table(p: SoftmaxParams) -> np.ndarray:
    """exp(input - row max) as Q0.31 for each difference -255..0 (index d + 255); 0 where the
    difference is below diff_min (the kernel skips those)."""
    d = np.arange(-255, 1, dtype=np.int64)
    scaled = multiply_by_quantized_multiplier(d, p.input_multiplier, p.input_left_shift)
    return np.where(d >= p.diff_min, exp_on_negative_values(scaled, 5), 0).astype(np.int32)


def softmax_int8(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """reference_ops::Softmax int8 -> int8 over the last axis (output scale 1/256, zp -128)."""
    x = _i64(x)
    table = softmax_exp_table(p).astype(np.int64)
    d = x - x.max(axis=-1, keepdims=True)
    e = table[d + 255]
    total = wrap32(rounding_divide_by_pot(e, 12).sum(axis=-1, keepdims=True))
    scale, bits = get_reciprocal(total, 12)
    out = rounding_divide_by_pot(srdhm(scale, e), bits + 31 - 8) - 128
    return np.where(d >= p.diff_min, np.clip(out, -128, 127), -128).astype(np.int8)


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
