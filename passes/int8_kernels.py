"""The small TE kernels the integer passes call: TFLite Micro's fixed-point steps in TIR.

Relax has no op for a rounding that depends on the sign of its input (RoundingDivideByPOT),
and a chain of elementwise Relax ops that used a value twice would fork, which GroupKernels
does not cut through. So each such step is one TE compute, reached by `call_tir`: elementwise
(FuseTIR fuses it into the anchor's kernel, InlineKernels inlines it into the anchor's
epilogue), int32 in, int8 out, with the per-layer numbers baked in as immediates or passed
as small int32 constants (per-channel multipliers and shifts).

The arithmetic is tvm_patch_core.fixed_point's (tvm_patch/core/fixed_point.py), on PrimExprs:
- `mbqm`: MultiplyByQuantizedMultiplier with TFLM's double rounding (SaturatingRounding-
  DoublingHighMul, then RoundingDivideByPOT), folded into one int64 multiply-add-shift that
  gives the same result for every input (derivation in its docstring). TIR's `>>` on a signed
  value is an arithmetic shift in both the C and the LLVM backends; no division is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tvm import te, tirx

Expr = tirx.Expr


def _i32(v: int | Expr) -> Expr:
    return tirx.const(int(v), "int32") if isinstance(v, int) else v


def mbqm(x: Expr, multiplier: int | Expr, shift: int | Expr) -> Expr:
    """MultiplyByQuantizedMultiplier(x, multiplier, shift) for multiplier >= 0, exactly TFLM's
    double rounding, as one int64 expression (no value is computed twice):

        h = SRDHM(x', m) = floor((x'm + 2^30) / 2^31)          x' = x * 2^left (int32)
        RoundingDivideByPOT(h, e) = floor((h + 2^(e-1) - [h < 0]) / 2^e)     (e >= 1)
                                  = floor((x'm + 2^30 + 2^(30+e) - [x' < 0] 2^31) / 2^(31+e))

    by floor(floor(a/b)/c) = floor(a/(bc)), and h < 0 exactly when x'm < -2^30, i.e. x' < 0
    (x' = -1 with m = 2^30 gives h = 0 either way). e = 0 is plain SRDHM."""
    i64 = "int64"
    if isinstance(shift, int):
        if shift > 0:
            x = x * tirx.const(1 << shift, "int32")
        p = (
            tirx.Cast(i64, x) * tirx.const(int(multiplier), i64)
            if isinstance(multiplier, int)
            else tirx.Cast(i64, x) * tirx.Cast(i64, multiplier)
        )
        e = max(-shift, 0)
        if e == 0:
            return tirx.Cast("int32", (p + tirx.const(1 << 30, i64)) >> tirx.const(31, i64))
        neg = tirx.Select(x < tirx.const(0, "int32"), tirx.const(1 << 31, i64), tirx.const(0, i64))
        nudge = tirx.const((1 << 30) + (1 << (30 + e)), i64)
        return tirx.Cast("int32", (p + nudge - neg) >> tirx.const(31 + e, i64))
    zero = tirx.const(0, "int32")
    # run-time shift amounts are clamped to their real range: TVM's bound analysis of
    # `a >> b` goes wrong when b may be negative or too large (it folded a whole clamp away)
    left = tirx.min(tirx.max(shift, zero), tirx.const(30, "int32"))
    x = x * (tirx.const(1, "int32") << left)
    e = tirx.Cast(i64, tirx.min(tirx.max(zero - shift, zero), tirx.const(31, "int32")))
    p = tirx.Cast(i64, x) * tirx.Cast(i64, multiplier)
    round_half = (tirx.const(1, i64) << (tirx.const(30, i64) + e)) - tirx.Select(
        x < zero, tirx.const(1 << 31, i64), tirx.const(0, i64)
    )
    nudge = tirx.const(1 << 30, i64) + tirx.Select(e > tirx.const(0, i64), round_half, tirx.const(0, i64))
    return tirx.Cast("int32", (p + nudge) >> (tirx.const(31, i64) + e))


def clamp_int8(x: Expr, zero_point: int, lo: int, hi: int) -> Expr:
    x = x + tirx.const(zero_point, "int32") if zero_point else x
    return tirx.Cast("int8", tirx.max(tirx.min(x, tirx.const(hi, "int32")), tirx.const(lo, "int32")))


def load_i32(t: te.Tensor, index: Sequence[Expr]) -> Expr:
    """t[index] as int32, with an explicit cast (FuseTIR may hand this kernel a producer's
    buffer of another integer width: avg_pool2d legalizes to an int64 output)."""
    return tirx.Cast("int32", t[tuple(index)])


def round_half_even_shift(p: Expr, k: int | Expr) -> Expr:
    """int64 p / 2^k rounded to nearest, ties to even, as int32; k clamped to [1, 62]."""
    i64 = "int64"
    k = (
        tirx.const(int(k), i64)
        if isinstance(k, int)
        else tirx.Cast(i64, tirx.min(tirx.max(k, tirx.const(1, "int32")), tirx.const(62, "int32")))
    )
    one = tirx.const(1, i64)
    q = p >> k
    r = p - (q << k)
    half = one << (k - one)
    up = tirx.Or(r > half, tirx.And(r == half, (q & one) == one))
    return tirx.Cast("int32", q + tirx.Select(up, one, tirx.const(0, i64)))


def mul_round_half_even(x: Expr, m: int | Expr, k: int | Expr) -> Expr:
    """round(x * m / 2^k), ties to even (ONNX's rounding), in int64."""
    i64 = "int64"
    m64 = tirx.const(int(m), i64) if isinstance(m, int) else tirx.Cast(i64, m)
    return round_half_even_shift(tirx.Cast(i64, x) * m64, k)


def requantize(
    acc: te.Tensor,
    channel: te.Tensor | None,
    multiplier: int | None,
    shift: int | None,
    zero_point: int,
    lo: int,
    hi: int,
    axis: int = -1,
    rounding: str = "tflm",
) -> te.Tensor:
    """int32 accumulator (+ bias) -> int8: rescale, + zero point, clamp to [lo, hi].

    `channel` is one int32 table per layer, indexed along `axis` of the output: row 0 the
    bias, rows 1 and 2 the multiplier and shift when those are per channel (multiplier and
    shift None); one tensor argument per layer, not three (each kernel argument costs ~900 B
    of packed-API checks on Cortex-M). rounding "tflm": TFLM's MultiplyByQuantizedMultiplier
    (shift = its exponent); "half_even": ONNX's round(acc * m / 2^shift), ties to even."""
    axis = axis % len(acc.shape)

    def body(*i):
        c = i[axis]
        x = load_i32(acc, i)
        if channel is not None:
            x = x + channel[0, c]
        m = channel[1, c] if multiplier is None else multiplier
        s = channel[2, c] if shift is None else shift
        scaled = mbqm(x, m, s) if rounding == "tflm" else mul_round_half_even(x, m, s)
        return clamp_int8(scaled, zero_point, lo, hi)

    return te.compute(acc.shape, body, name="requantize")


def offset_requantize(
    acc: te.Tensor,
    offset: int,
    multiplier: int,
    shift: int,
    zero_point: int,
    lo: int = -128,
    hi: int = 127,
    rounding: str = "tflm",
) -> te.Tensor:
    """(acc + offset) requantized per tensor (MEAN: offset = -zero point * count)."""

    def body(*i):
        x = load_i32(acc, i) + tirx.const(offset, "int32")
        scaled = mbqm(x, multiplier, shift) if rounding == "tflm" else mul_round_half_even(x, multiplier, shift)
        return clamp_int8(scaled, zero_point, lo, hi)

    return te.compute(acc.shape, body, name="requantize")


def round_half_of(q: te.Tensor, lo: int, hi: int) -> te.Tensor:
    """q / 2 rounded half away from zero, clamped, as int8 (see int8_pool.py for why)."""

    def body(*i):
        v = load_i32(q, i)
        one = tirx.const(1, "int32")
        half = tirx.Select(
            v < tirx.const(0, "int32"),
            tirx.const(0, "int32") - ((one - v) >> one),
            (v + one) >> one,
        )
        return clamp_int8(half, 0, lo, hi)

    return te.compute(q.shape, body, name="round_half")


def _broadcast_index(t: te.Tensor, out_shape: Sequence[int], i: Sequence[Expr]) -> list[Expr]:
    """Index into `t` for output index `i` under numpy broadcasting."""
    rank = len(t.shape)
    idx = i[len(out_shape) - rank :]
    return [
        0 if int(t.shape[k]) == 1 and int(out_shape[len(out_shape) - rank + k]) != 1 else idx[k] for k in range(rank)
    ]


def binary_int8(
    a: te.Tensor, b: te.Tensor, out_shape: Sequence[int], fn: Callable[[Expr, Expr], Expr], name: str
) -> te.Tensor:
    """out[i] = fn(a[i'], b[i'']) with numpy broadcasting, both loads as int32."""

    def body(*i):
        return fn(
            load_i32(a, _broadcast_index(a, out_shape, i)),
            load_i32(b, _broadcast_index(b, out_shape, i)),
        )

    return te.compute(tuple(out_shape), body, name=name)


def lookup(x: te.Tensor, table: te.Tensor) -> te.Tensor:
    """out[i] = table[x[i] + 128]: any int8 -> int8 elementwise function, exactly."""

    def body(*i):
        return table[tirx.Cast("int32", x[i]) + tirx.const(128, "int32")]

    return te.compute(x.shape, body, name="lookup")


def _srdhm_any(a: Expr, b: Expr) -> Expr:
    """SRDHM for operands of any sign (floor((ab + 2^30) / 2^31); never both INT32_MIN here)."""
    prod = tirx.Cast("int64", a) * tirx.Cast("int64", b) + tirx.const(1 << 30, "int64")
    return tirx.Cast("int32", prod >> tirx.const(31, "int64"))


def _sat_shift_left(x: Expr, k: int) -> Expr:
    """gemmlowp's saturating x * 2^k on int32."""
    threshold = (1 << (31 - k)) - 1
    shifted = x * tirx.const(1 << k, "int32")
    return tirx.Select(
        x > tirx.const(threshold, "int32"),
        tirx.const((1 << 31) - 1, "int32"),
        tirx.Select(x < tirx.const(-threshold, "int32"), tirx.const(-(1 << 31), "int32"), shifted),
    )


def _rdbpot(v: Expr, e: Expr) -> Expr:
    """RoundingDivideByPOT on int32 with a run-time exponent in [0, 31] (clamped: see mbqm)."""
    one, zero = tirx.const(1, "int32"), tirx.const(0, "int32")
    e = tirx.min(tirx.max(e, zero), tirx.const(31, "int32"))
    mask = tirx.Cast("int32", (tirx.const(1, "int64") << tirx.Cast("int64", e)) - tirx.const(1, "int64"))
    threshold = (mask >> one) + tirx.Select(v < zero, one, zero)
    return (v >> e) + tirx.Select((v & mask) > threshold, one, zero)


def _once(shape: Sequence[int], fn: Callable[..., Expr], name: str) -> te.Tensor:
    """A per-element stage written as a reduction over one element: InlineKernels inlines
    elementwise stages into every reader, which would recompute (and grow) these
    expressions; reductions stay where they are."""
    once = te.reduce_axis((0, 1), name=f"{name}_once")
    return te.compute(shape, lambda *i: te.sum(fn(*i) + tirx.Cast("int32", once), axis=once), name=name)


def softmax(x: te.Tensor, table: te.Tensor, diff_min: int) -> te.Tensor:
    """TFLM's int8 softmax over the last axis (reference_ops::Softmax, output 1/256, -128).

    table[d + 255] is exp(d scaled) as Q0.31 for each difference d = x - row max (0 below
    diff_min). Per row: the max, the sum of the exps in Q12.19, its leading zeros and its
    reciprocal (gemmlowp's one_over_one_plus_x: three Newton-Raphson steps in Q2.29), each a
    stage of its own, so every step is computed once per row."""
    *rows, n = (int(d) for d in x.shape)
    rows = tuple(rows)
    i32, i64 = "int32", "int64"
    j = te.reduce_axis((0, n), name="j")
    mx = te.compute(rows, lambda *r: te.max(tirx.Cast(i32, x[(*r, j)]), axis=j), name="row_max")

    def exp_of(r: tuple[Expr, ...], c: Expr) -> Expr:
        return table[tirx.Cast(i32, x[(*r, c)]) - mx[r] + tirx.const(255, i32)]

    k = te.reduce_axis((0, n), name="k")
    total = te.compute(rows, lambda *r: te.sum(_rdbpot(exp_of(r, k), tirx.const(12, i32)), axis=k), name="exp_sum")
    b = te.reduce_axis((0, 32), name="b")
    clz = te.compute(
        rows,
        lambda *r: te.sum(
            tirx.Select(
                tirx.Cast(i64, total[r]) < (tirx.const(1, i64) << tirx.Cast(i64, b)),
                tirx.const(1, i32),
                tirx.const(0, i32),
            ),
            axis=b,
        ),
        name="exp_sum_clz",
    )
    # GetReciprocal: the sum scaled into [1, 2), minus one, as Q0.31
    headroom = te.compute(
        rows,
        lambda *r: tirx.min(tirx.max(clz[r], tirx.const(0, i32)), tirx.const(31, i32)),
        name="exp_sum_headroom",
    )  # a sum is >= 1, so at most 31 leading zeros
    shifted = _once(
        rows,
        lambda *r: tirx.Cast(
            i32,
            ((tirx.Cast(i64, total[r]) << tirx.Cast(i64, headroom[r])) & tirx.const(0xFFFFFFFF, i64))
            - tirx.const(1 << 31, i64),
        ),
        "exp_sum_minus_one",
    )
    # RoundingHalfSum(a, 1.0): (a + INT32_MAX + 1) / 2 for a >= 0
    half = _once(
        rows,
        lambda *r: tirx.Cast(i32, (tirx.Cast(i64, shifted[r]) + tirx.const(1 << 31, i64)) >> tirx.const(1, i64)),
        "half_denominator",
    )
    xk = _once(
        rows,
        lambda *r: tirx.const(1515870810, i32) + _srdhm_any(half[r], tirx.const(-1010580540, i32)),
        "newton0",
    )
    for step in range(3):
        xk = _once(
            rows,
            lambda *r, prev=xk: (
                prev[r]
                + _sat_shift_left(_srdhm_any(prev[r], tirx.const(1 << 29, i32) - _srdhm_any(half[r], prev[r])), 2)
            ),
            f"newton{step + 1}",
        )
    scale = _once(rows, lambda *r: _sat_shift_left(xk[r], 1), "exp_sum_reciprocal")
    scaled = _once(
        tuple(int(d) for d in x.shape),
        lambda *i: _srdhm_any(scale[i[:-1]], exp_of(i[:-1], i[-1])),
        "exp_scaled",
    )

    def out(*i):
        r = i[:-1]
        d = tirx.Cast(i32, x[i]) - mx[r]
        bits = tirx.const(12 + 31 - 8, i32) - headroom[r]  # num_bits_over_unit + 31 - 8
        v = _rdbpot(scaled[i], bits) - tirx.const(128, i32)
        q = tirx.Cast("int8", tirx.max(tirx.min(v, tirx.const(127, i32)), tirx.const(-128, i32)))
        return tirx.Select(d >= tirx.const(diff_min, i32), q, tirx.const(-128, "int8"))

    return te.compute(x.shape, out, name="softmax")
