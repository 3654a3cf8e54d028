"""IntegerElementwise: int8 ADD, SUB, MUL, requantize and the byte moves, as TFLite Micro does.

- `quantize([relu|clip](add|subtract(dequantize(a), dequantize(b))))`: one TE kernel with
  TFLM's arithmetic: each input (q - zp) << 20, rescaled by its own multiplier to twice the
  larger input scale, summed (or subtracted), rescaled to the output, + zero point, clamped
  to the activation range (fixed_point.add_params: double; sub_params: float32, as in
  add_common.cc / sub_common.cc). Broadcasting as numpy; an input may be a constant.
- `quantize(multiply(dequantize(a), dequantize(b)))`: (a - zp_a) * (b - zp_b), one
  MultiplyByQuantizedMultiplier (double(s_a) * double(s_b) / double(s_out)).
- `quantize(dequantize(x))`: x itself when the quantization is the same, else TFLM's
  QUANTIZE int8 -> int8 (requantize by double(s_in) / double(s_out)) as a 256-entry table.
- concat, reshape, permute_dims, pad, squeeze, expand_dims between dequantize and quantize:
  the same op on the int8 values (TFLM requires equal quantization in and out; inputs whose
  quantization differs from the output's are requantized first). A pad's value is the
  output zero point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax

from tvm_patch_core import fixed_point as fp

from .int8_conv import int8_clip_bounds, output_bounds, split_epilogue
from .int8_kernels import (
    Expr,
    binary_int8,
    clamp_int8,
    lookup,
    mbqm,
)
from .qdq import QdqRewriter, QParams, shape_of

Kernel = Callable[[Expr, Expr], Expr]  # one output value from the two int32-widened inputs

_MOVES = (
    "relax.reshape",
    "relax.permute_dims",
    "relax.nn.pad",
    "relax.squeeze",
    "relax.expand_dims",
    "relax.concat",
)


def requantize_table(xq: QParams, yq: QParams, rounding: str = "tflm") -> np.ndarray:
    """TFLM's QUANTIZE int8 -> int8 for every input value; "half_even": ONNX's
    QuantizeLinear(DequantizeLinear(x)) in float32, ties to even."""
    q = np.arange(-128, 128)
    if rounding == "half_even":
        real = np.float32(xq.s) * (q - xq.zp).astype(np.float32)
        return np.clip(np.round(real / np.float32(yq.s)) + yq.zp, -128, 127).astype(np.int8)
    m, s = fp.quantize_multiplier(float(xq.s) / float(yq.s))
    return fp.requantize(q - xq.zp, m, s, yq.zp).astype(np.int8)


def add_kernel(p: fp.AddParams, zp1: int, zp2: int, zp_out: int, lo: int, hi: int, sign: int) -> Kernel:
    def fn(a: Expr, b: Expr) -> Expr:
        sa = mbqm((a - zp1) * (1 << p.left_shift), *p.input1)
        sb = mbqm((b - zp2) * (1 << p.left_shift), *p.input2)
        return clamp_int8(mbqm(sa + sb if sign > 0 else sa - sb, *p.output), zp_out, lo, hi)

    return fn


def mul_kernel(m: int, s: int, zp1: int, zp2: int, zp_out: int, lo: int, hi: int) -> Kernel:
    def fn(a: Expr, b: Expr) -> Expr:
        return clamp_int8(mbqm((a - zp1) * (b - zp2), m, s), zp_out, lo, hi)

    return fn


@tvm.transform.module_pass(opt_level=0, name="IntegerElementwise")
class IntegerElementwise:
    """Rewrite int8 add / sub / mul / requantize / byte moves (module docstring).

    rounding "tflm": TFLite Micro's arithmetic; "half_even" (ONNX QDQ): add, sub and mul
    stay DequantizeLinear -> op -> QuantizeLinear in float32, as ONNX defines them and
    onnxruntime computes them; requantize and activations are tables of that float32
    arithmetic, the byte moves as for TFLite."""

    def __init__(self, rounding: str = "tflm") -> None:
        if rounding not in ("tflm", "half_even"):
            raise ValueError(f"rounding {rounding!r}: choose tflm or half_even")
        self.rounding = rounding

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return _ElementwiseRewriter(mod, self.rounding).run(mod)


@relax.expr_functor.mutator
class _ElementwiseRewriter(QdqRewriter):
    def __init__(self, mod: tvm.IRModule, rounding: str) -> None:
        super().__init__(mod)
        self.rounding = rounding

    def rewrite(self, call: relax.Call) -> relax.Expr | None:
        parts = split_epilogue(self.graph, call)
        if parts is None:
            return None
        _, yq, act, value, clip = parts
        g = self.graph
        lo, hi = output_bounds(yq, act)
        if clip is not None:
            clo, chi = int8_clip_bounds(clip, yq)
            lo, hi = max(lo, clo), min(hi, chi)
        inner = g.call(value, "relax.add", "relax.subtract", "relax.multiply", *_MOVES)
        if inner is None:
            x = g.dequantized(value)
            if x is None or not x[1].per_tensor:
                return None
            if act is not None:
                return self._activation(act, x[0], x[1], yq, clip)
            return self._requantized(x[0], x[1], yq, lo, hi)
        if inner.op.name in _MOVES:
            return None if act is not None else self._move(inner, yq, lo, hi)
        a, b = g.dequantized(inner.args[0]), g.dequantized(inner.args[1])
        if a is None or b is None or not a[1].per_tensor or not b[1].per_tensor:
            return None
        if self.rounding == "half_even":
            return None  # ONNX: DequantizeLinear -> op -> QuantizeLinear in float32 (module docstring)
        (xa, qa), (xb, qb) = a, b
        out_shape = shape_of(inner)
        if inner.op.name == "relax.multiply":
            m, s = fp.mul_multiplier(qa.s, qb.s, yq.s)
            fn, name = mul_kernel(m, s, qa.zp, qb.zp, yq.zp, lo, hi), "mul_int8"
        else:
            sign = 1 if inner.op.name == "relax.add" else -1
            name = "add_int8" if sign > 0 else "sub_int8"
            p = (fp.add_params if sign > 0 else fp.sub_params)(qa.s, qb.s, yq.s)
            fn = add_kernel(p, qa.zp, qb.zp, yq.zp, lo, hi, sign)
            # its numbers, for DspKernels (passes/int8_dsp.py), which fuses it into a conv
            numbers = [qa.zp, qb.zp, p.left_shift, *p.input1, *p.input2, *p.output, yq.zp, lo, hi, sign]
            attrs = {"tvmp.add": [int(v) for v in numbers]}
            return self.builder_.call_te(
                lambda a, b: binary_int8(a, b, out_shape, fn, name),
                self.new(xa),
                self.new(xb),
                primfunc_name_hint=name,
                primfunc_attrs=attrs,
            )
        return self.builder_.call_te(
            lambda a, b: binary_int8(a, b, out_shape, fn, name),
            self.new(xa),
            self.new(xb),
            primfunc_name_hint=name,
        )

    def _requantized(self, src: relax.Expr, xq: QParams, yq: QParams, lo: int, hi: int) -> relax.Expr:
        if xq.same_as(yq) and (lo, hi) == (-128, 127):
            return self.new(src)
        table = np.clip(requantize_table(xq, yq, self.rounding), lo, hi).astype(np.int8)
        return self.builder_.call_te(lookup, self.new(src), relax.const(table, "int8"), primfunc_name_hint="lookup")

    def _activation(
        self, act: relax.Call, src: relax.Expr, xq: QParams, yq: QParams, clip: relax.Call | None
    ) -> relax.Expr | None:
        """TFLite's standalone RELU (requantize by float32 s_in / s_out, clamp at the output's
        zero point) and RELU6 (a clamp at the input's 0 and 6), as 256-entry tables."""
        q = np.arange(-128, 128)
        if self.rounding == "half_even":
            table = requantize_table(xq, yq, "half_even").astype(np.int64)
            lo, hi = output_bounds(yq, act)
        elif act.op.name == "relax.nn.relu":
            m, s = fp.quantize_multiplier(float(fp.f32(xq.s) / fp.f32(yq.s)))
            table = fp.requantize(q - xq.zp, m, s, yq.zp)
            lo, hi = max(-128, fp.quantize_value(0.0, yq.s, yq.zp)), 127
        elif [float(a.value) for a in act.args[1:]] == [0.0, 6.0] and xq.same_as(yq):
            table = q
            lo, hi = max(-128, xq.zp), min(127, fp.quantize_value(6.0, xq.s, xq.zp))
        else:
            return None
        if clip is not None:
            clo, chi = int8_clip_bounds(clip, yq)
            lo, hi = max(lo, clo), min(hi, chi)
        table = np.clip(table, lo, hi).astype(np.int8)
        return self.builder_.call_te(lookup, self.new(src), relax.const(table, "int8"), primfunc_name_hint="lookup")

    def _move(self, op: relax.Call, yq: QParams, lo: int, hi: int) -> relax.Expr | None:
        g = self.graph
        fields = op.args[0].fields if op.op.name == "relax.concat" else [op.args[0]]
        ins = []
        for f in fields:
            x = g.dequantized(f)
            if x is None or not x[1].per_tensor:
                return None
            ins.append(
                self.emit(self._requantized(x[0], x[1], yq, -128, 127)) if not x[1].same_as(yq) else self.new(x[0])
            )
        a = op.attrs
        name = op.op.name
        if name == "relax.concat":
            moved = relax.op.concat(ins, axis=a.axis)
        elif name == "relax.reshape":
            moved = relax.op.reshape(ins[0], op.args[1])
        elif name == "relax.permute_dims":
            moved = relax.op.permute_dims(ins[0], a.axes)
        elif name == "relax.squeeze":
            moved = relax.op.squeeze(ins[0], a.axis)
        elif name == "relax.expand_dims":
            moved = relax.op.expand_dims(ins[0], a.axis)
        else:  # nn.pad: the real pad value, quantized to the output
            value = fp.quantize_value(float(a.pad_value), yq.s, yq.zp)
            moved = relax.op.nn.pad(
                ins[0], a.pad_width, pad_value=float(np.clip(value, -128, 127)), pad_mode=a.pad_mode
            )
        if (lo, hi) == (-128, 127):
            return moved
        return relax.op.clip(self.emit(moved), lo, hi)
