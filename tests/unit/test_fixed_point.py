"""tvm_patch_core.fixed_point against values worked out by hand (the TFLM comparisons are in
tests/host/test_fixed_point_tflm.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_patch_core import fixed_point as fp
from tvm_patch_core import fixed_point_nonlinear as fpn

Q31 = 1 << 31


@pytest.mark.parametrize(
    "real,want",
    [
        (0.5, (1 << 30, 0)),  # 0.5 = 0.5 * 2^0
        (0.75, (1610612736, 0)),  # 0.75 * 2^31
        (1.0, (1 << 30, 1)),  # frexp(1) = 0.5 * 2^1
        (0.1, (1717986918, -3)),  # 0.8 * 2^31 = 1717986918.4, 0.1 = 0.8 * 2^-3
        (1 - 2**-40, (1 << 30, 1)),  # q * 2^31 rounds to 2^31: halved, shift + 1
        (2**-40, (0, 0)),  # shift below -31 flushes to zero
        (0.0, (0, 0)),
    ],
)
def test_quantize_multiplier(real, want):
    assert fp.quantize_multiplier(real) == want


def test_round_half_away_is_not_pythons_round():
    assert [fp.round_half_away(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5)] == [1, 2, 3, -1, -3]
    assert [round(v) for v in (0.5, 2.5)] == [0, 2]  # why the helper exists


def test_saturating_rounding_doubling_high_mul():
    assert fp.srdhm(1 << 30, 1 << 30) == 1 << 29  # 0.5 * 0.5 = 0.25 in Q0.31
    assert fp.srdhm(-(1 << 30), 1 << 30) == -(1 << 29)
    assert fp.srdhm(1, 1 << 30) == 1  # 0.5 rounds up
    assert fp.srdhm(-1, 1 << 30) == 0  # -0.5 rounds up too (gemmlowp's nudge 1 - 2^30)
    assert fp.srdhm(-(1 << 31), -(1 << 31)) == (1 << 31) - 1  # the one saturating case


def test_rounding_divide_by_pot_ties_away_from_zero():
    got = fp.rounding_divide_by_pot([5, -5, 6, -6, 7, -7, 9], [1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(got, [3, -3, 3, -3, 4, -4, 9])


def test_multiply_by_quantized_multiplier_rounds_twice():
    """5 * 0.5 * 2^-1 = 1.25: SRDHM gives 2.5 -> 3, then 3 / 2 = 1.5 -> 2 (double rounding);
    the single-rounding variant gives 1."""
    assert fp.multiply_by_quantized_multiplier(5, 1 << 30, -1) == 2
    assert fp.multiply_by_quantized_multiplier_single_rounding(5, 1 << 30, -1) == 1
    assert fp.multiply_by_quantized_multiplier(100, 1 << 30, -1) == 25
    assert fp.multiply_by_quantized_multiplier(3, 1 << 30, 2) == 6  # 3 * 4 * 0.5


def test_requantize_adds_zero_point_and_clamps():
    np.testing.assert_array_equal(fp.requantize([100, 10000, -10000], 1 << 30, -1, -10), [15, 127, -128])


def test_add_params_equal_scales():
    """Equal scales 1.0: inputs x 2^20 x 0.5, output x 2^-19: 1 + 2 = 3."""
    p = fp.add_params(1.0, 1.0, 1.0)
    assert p.input1 == p.input2 == (1 << 30, 0)
    assert p.output == (1 << 30, -18)  # 2 / 2^20 = 0.5 * 2^-18
    assert fp.add_int8(1, 2, 0, 0, 0, p) == 3
    assert fp.add_int8(1, 2, 0, 0, 0, fp.sub_params(1.0, 1.0, 1.0), sign=-1) == -1


def test_mean_multiplier_folds_the_count():
    """in/out 1.0 over 4 elements: (2^30, 1) -> (2^30 << 2) / 4, shift 1 - 2: x / 4."""
    assert fp.mean_multiplier(1.0, 1.0, 4) == (1 << 30, -1)
    assert fp.multiply_by_quantized_multiplier(400, *fp.mean_multiplier(1.0, 1.0, 4)) == 100


def test_activation_range_uses_float32_and_std_round():
    assert fp.activation_range("relu", 0.05, 3) == (3, 127)
    assert fp.activation_range("relu6", 0.05, -128) == (-128, -8)  # 6 / 0.05f = 119.99.. -> 120
    assert fp.activation_range("none", 0.05, 3) == (-128, 127)


def test_average_pool_round():
    got = fp.average_pool_round([5, -5, 4, -4, 0, 6], [2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(got, [3, -3, 1, -1, 0, 2])


def test_count_leading_zeros():
    np.testing.assert_array_equal(fpn.count_leading_zeros32([0, 1, 3, (1 << 31) - 1, 1 << 31]), [32, 31, 30, 1, 0])


def test_logistic_and_tanh_at_the_zero_point_and_radius():
    """scale 1.0: multiplier 2^27 = 0.5 * 2^28, radius floor(15 * 2^27 / 2^28) = 7."""
    table = fpn.logistic_table(1.0, 0)
    assert table[128] == 0  # logistic(0) = 0.5 -> 128 - 128
    assert table[128 - 7] == -128 and table[128 + 7] == 127
    assert table[128 - 6] == -127  # inside the radius: logistic(-6) * 256 = 0.63 -> 1
    assert fpn.tanh_table(0.1, 5)[128 + 5] == 0


def test_softmax_of_equal_values_is_a_quarter():
    """Four equal inputs: exp 1.0 each, sum 2^21 in Q12.19, reciprocal 1 with 2 bits over
    unit, 0.25 * 256 = 64 -> -64 with the -128 zero point."""
    np.testing.assert_array_equal(fpn.softmax_int8(np.array([[5, 5, 5, 5]]), fpn.softmax_params(0.1)), [[-64] * 4])


def test_hard_swish_of_zero_is_the_output_zero_point():
    assert fpn.hard_swish_table(0.05, 7, 0.025, -113)[128 + 7] == -113


def test_float32_fraction_is_exact():
    """A float32 scale as m * 2^-k with m < 2^24: 0.375 = 3 * 2^-3 = (3 << 22) * 2^-25."""
    m, k = fp.float32_fraction(0.375)
    assert m * 2.0**-k == 0.375 and m < 1 << 24
    m, k = fp.float32_fraction(0.0123)
    assert m * 2.0**-k == float(np.float32(0.0123))


def test_round_half_even_shift():
    """p / 2^k to nearest, ties to even: 5/2 = 2.5 -> 2, 7/2 -> 4, -5/2 -> -2, 6/4 = 1.5 -> 2."""
    np.testing.assert_array_equal(
        fp.round_half_even_shift([5, 7, -5, -7, 6, 9], [1, 1, 1, 1, 2, 2]), [2, 4, -2, -4, 2, 2]
    )


def test_onnx_scale_rounds_each_step_to_float32():
    s = fp.onnx_scale(0.0235, 0.0071, divide_by=0.037)
    assert s == np.float32(np.float32(np.float32(0.0235) * np.float32(0.0071)) / np.float32(0.037))
