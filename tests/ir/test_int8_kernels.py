"""The TE kernels of the integer passes compute fixed_point's arithmetic, value for value.

Each case builds the kernel with call_te, runs it in TVM's Relax VM (LLVM on the host) on
edge and random values, and compares with tvm_patch_core.fixed_point (itself checked against
TFLite Micro). The C backend runs the same TIR in the end-to-end tests.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvm_patch.passes.int8_elementwise import add_kernel, mul_kernel
from tvm_patch.passes.int8_kernels import binary_int8, requantize, round_half_of, softmax
from tvm_patch_core import fixed_point as fp
from tvm_patch_core import fixed_point_nonlinear as fpn

RNG = np.random.default_rng(11)
EDGES = np.array([0, 1, -1, 2, -2, 3, -3, 1 << 20, -(1 << 20), (1 << 31) - 1, -(1 << 31), 12345678, -12345678])


def run(inputs: dict[str, tuple[tuple[int, ...], str]], kernel, *args, **kwargs):
    """Compile main(inputs) = call_te(kernel, inputs..., *args) and return a runner."""
    bb = relax.BlockBuilder()
    params = [relax.Var(n, relax.TensorType(s, d)) for n, (s, d) in inputs.items()]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(bb.call_te(kernel, *params, *args, **kwargs))
        bb.emit_func_output(out)
    vm = relax.VirtualMachine(tvm.compile(bb.get(), target="llvm"), tvm.cpu())
    return lambda *xs: vm["main"](*[tvm.runtime.tensor(x) for x in xs]).numpy()


def test_requantize_per_tensor_every_shift():
    """MultiplyByQuantizedMultiplier as one int64 multiply-add-shift equals the double
    rounding for each shift TFLM produces (-31..7) on edge and random accumulators; the clamp
    keeps the result in int8. (Left shifts only on accumulators that fit, as in TFLM.)"""
    acc = np.concatenate([EDGES, RNG.integers(-(1 << 31), 1 << 31, 4000)]).astype(np.int32)
    for shift in range(-31, 8):
        for mult in (1 << 30, (1 << 31) - 1, int(RNG.integers(1 << 30, 1 << 31))):
            x = acc if shift <= 0 else (acc >> shift).astype(np.int32)
            got = run({"acc": (x.shape, "int32")}, requantize, None, mult, shift, -3, -128, 127)(x)
            want = fp.requantize(x, mult, shift, -3)
            np.testing.assert_array_equal(got, want, err_msg=f"multiplier {mult}, shift {shift}")


def test_requantize_per_channel_table():
    """[bias; multiplier; shift] per channel along the last axis, as IntegerConvDense passes it."""
    c = 16
    mult = RNG.integers(1 << 30, 1 << 31, c)
    shift = RNG.integers(-12, 2, c)
    bias = RNG.integers(-5000, 5000, c)
    table = np.stack([bias, mult, shift]).astype(np.int32)
    acc = RNG.integers(-(1 << 22), 1 << 22, (1, 5, 5, c)).astype(np.int32)
    got = run(
        {"acc": (acc.shape, "int32"), "t": (table.shape, "int32")},
        requantize,
        None,
        None,
        7,
        -100,
        120,
        3,
    )(acc, table)
    np.testing.assert_array_equal(got, fp.requantize(acc.astype(np.int64) + bias, mult, shift, 7, -100, 120))


def test_round_half_of_doubled_average():
    """round_half: q / 2 with ties away from zero, clamped to int8."""
    q = np.arange(-600, 600, dtype=np.int32)
    got = run({"q": (q.shape, "int32")}, round_half_of, -128, 127)(q)
    np.testing.assert_array_equal(got, np.clip(np.sign(q) * ((np.abs(q) + 1) >> 1), -128, 127))


def test_add_sub_mul_kernels():
    """ADD / SUB / MUL on every pair of a random int8 sample, with broadcasting."""
    a = RNG.integers(-128, 128, (1, 6, 6, 8)).astype(np.int8)
    b = RNG.integers(-128, 128, (1, 1, 1, 8)).astype(np.int8)
    shapes = {"a": (a.shape, "int8"), "b": (b.shape, "int8")}
    for sign, params in (
        (1, fp.add_params(0.039, 0.104, 0.051)),
        (-1, fp.sub_params(0.0082, 0.0064, 0.0083)),
    ):
        fn = add_kernel(params, -128, 4, 3, -128, 127, sign)
        got = run(shapes, lambda x, y, fn=fn: binary_int8(x, y, a.shape, fn, "addsub"))(a, b)
        np.testing.assert_array_equal(got, fp.add_int8(a, b, -128, 4, 3, params, sign=sign))
    m, s = fp.mul_multiplier(0.0335, 0.0022, 0.0164)
    fn = mul_kernel(m, s, -128, -128, -128, -128, 127)
    got = run(shapes, lambda x, y: binary_int8(x, y, a.shape, fn, "mul"))(a, b)
    want = fp.requantize((a.astype(np.int64) + 128) * (b.astype(np.int64) + 128), m, s, -128)
    np.testing.assert_array_equal(got, want)


def test_softmax_kernel():
    """Rows of 10 and 12 with ties, one dominant value, and the diff_min cut-off."""
    for scale, n in ((0.1447, 12), (0.0035, 10), (0.9, 10)):
        x = RNG.integers(-128, 128, (64, n)).astype(np.int8)
        x[0] = 3
        x[1] = -128
        x[1, 2] = 127
        p = fpn.softmax_params(scale)
        table = fpn.softmax_exp_table(p)
        got = run({"x": (x.shape, "int8"), "t": (table.shape, "int32")}, softmax, p.diff_min)(x, table)
        np.testing.assert_array_equal(got, fpn.softmax_int8(x, p), err_msg=f"scale {scale}")


def test_requantize_half_even_for_onnx():
    """ONNX's requantize: round(acc * m / 2^k) with ties to even, per channel from the table."""
    c = 8
    pairs = [fp.float32_fraction(s) for s in RNG.uniform(0.0005, 0.05, c).astype(np.float32)]
    table = np.stack([np.zeros(c), [p[0] for p in pairs], [p[1] for p in pairs]]).astype(np.int32)
    acc = np.concatenate([RNG.integers(-(1 << 20), 1 << 20, (50, c)), np.full((1, c), 1 << 10)]).astype(np.int32)
    got = run(
        {"acc": (acc.shape, "int32"), "t": (table.shape, "int32")},
        requantize,
        None,
        None,
        3,
        -128,
        127,
        1,
        "half_even",
    )(acc, table)
    want = fp.requantize_half_even(acc, table[1], table[2], 3)
    np.testing.assert_array_equal(got, want)
