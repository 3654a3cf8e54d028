"""TFLite Micro's int8 LOGISTIC, TANH, HARD_SWISH and SOFTMAX in numpy: gemmlowp fixed point.

Written from gemmlowp's fixedpoint.h and TFLite Micro's reference kernels and their Prepare
(read, not copied): FixedPoint<int32, k> values as raw int32 with 31 - k fractional bits,
exp on negative values, 1/(1+x), logistic and tanh, the reciprocal SOFTMAX divides by, and
the 256-entry int8 lookup tables the integer passes bake into kernels at compile time.
Elementwise on int64 numpy arrays holding int32 (or int16) values, wrapping where C wraps;
the requantize arithmetic they build on is fixed_point's.

No TVM here (floor 0, as fixed_point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .fixed_point import (
    INT32_MAX,
    INT32_MIN,
    _i64,
    f32,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    srdhm,
    wrap32,
)

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


def _half_reciprocal_q2(a: ArrayLike) -> np.ndarray:
    """2 / (1 + a) in Q2.29 (gemmlowp divides by the half denominator): three
    Newton-Raphson steps from 48/17 - 32/17 * d."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        t = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + _sat_shift_left(srdhm(x, t), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) (Q0.31 in and out): Newton-Raphson in Q2.29."""
    return _sat_shift_left(_half_reciprocal_q2(a), 1)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> np.ndarray:
    return _sat_shift_left(wrap32(_half_reciprocal_q2(a) - (1 << 29)), 2)


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
