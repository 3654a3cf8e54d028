"""IntegerPooling: average pool, max pool and mean on int8 with TFLite Micro's rounding.

- AVERAGE_POOL_2D. The TFLite frontend writes `astype(avg_pool2d(astype(x, int32)), int8)`,
  whose legalized division truncates; TFLM rounds the window sum to nearest, ties away from
  zero. Relax has no sum-pool, so the pool keeps its op (the layer graph and the patch
  planner see a pool) and runs on 2x: avg_pool2d(2x) = trunc(2 sum / count) = q, and
  round_half(q) = sign(q) * ((|q| + 1) >> 1) is exactly TFLM's result (q is 2n or 2n + 1
  with the 1 exactly when the remainder is at least half the count). The window count is
  the in-image part (count_include_pad=False), as TFLM's filter_count.
- MEAN (`quantize(mean(dequantize(x)))`): an int32 R.sum, then one requantize of
  (sum - zp_in * count) with fixed_point.mean_multiplier (1/count folded in as TFLM does).
- MAX_POOL_2D in QDQ form (ONNX): max_pool2d on the int8 values when the quantization is
  unchanged (the TFLite frontend already pools int8).
- AveragePool in QDQ form (ONNX, rounding "half_even") stays DequantizeLinear -> float32
  pool -> QuantizeLinear, as ONNX defines it and onnxruntime computes it: the integer pool
  of q rounded half away from zero padded with 0, not the zero point (count_include_pad), and
  its ties are not float32's (fuzz seeds 66, 160, 180, 294, 366, 444: 5 to 177 LSB).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvm_patch_core import fixed_point as fp

from .int8_kernels import offset_requantize, round_half_of
from .qdq import QdqRewriter, dtype_of, qparams, shape_of


@tvm.transform.module_pass(opt_level=0, name="IntegerPooling")
class IntegerPooling:
    """Rewrite int8 average pooling and mean to TFLM's rounding (module docstring).

    rounding "half_even" (ONNX QDQ): the mean's scale is onnxruntime's float32
    s_in / (s_out * count), applied exactly with ties to even."""

    def __init__(self, rounding: str = "tflm") -> None:
        if rounding not in ("tflm", "half_even"):
            raise ValueError(f"rounding {rounding!r}: choose tflm or half_even")
        self.rounding = rounding

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return _PoolRewriter(mod, self.rounding).run(mod)


@relax.expr_functor.mutator
class _PoolRewriter(QdqRewriter):
    def __init__(self, mod: tvm.IRModule, rounding: str) -> None:
        super().__init__(mod)
        self.rounding = rounding

    def rewrite(self, call: relax.Call) -> relax.Expr | None:
        name = call.op.name
        if name == "relax.astype" and dtype_of(call) == "int8":
            return self._average_pool(call)
        if name == "relax.quantize" and dtype_of(call) == "int8":
            return self._quantized(call)
        return None

    def _average_pool(self, call: relax.Call) -> relax.Expr | None:
        g = self.graph
        pool = g.call(call.args[0], "relax.nn.avg_pool2d")
        if pool is None:
            return None
        widen = g.call(pool.args[0], "relax.astype")
        if widen is None or dtype_of(widen.args[0]) != "int8" or dtype_of(pool) != "int32":
            return None
        return self._rounded_pool(pool, self.new(widen.args[0]))

    def _rounded_pool(self, pool: relax.Call, x_int8: relax.Expr) -> relax.Expr:
        a = pool.attrs
        wide = self.emit(relax.op.astype(x_int8, "int32"))
        doubled = self.emit(relax.op.multiply(wide, relax.const(2, "int32")))
        q = self.emit(
            relax.op.nn.avg_pool2d(
                doubled,
                pool_size=a.pool_size,
                strides=a.strides,
                padding=a.padding,
                dilation=a.dilation,
                ceil_mode=a.ceil_mode,
                count_include_pad=a.count_include_pad,
                layout=a.layout,
                out_layout=a.out_layout,
            )
        )
        # avg_pool2d on int32 legalizes to an int64 output; a cast keeps round_half's int32 input
        q = self.emit(relax.op.astype(q, "int32"))
        return self.builder_.call_te(round_half_of, q, -128, 127, primfunc_name_hint="round_half")

    def _quantized(self, call: relax.Call) -> relax.Expr | None:
        g = self.graph
        yq = qparams(call)
        inner = g.call(call.args[0], "relax.mean", "relax.nn.max_pool2d", "relax.nn.avg_pool2d")
        if yq is None or not yq.per_tensor or inner is None:
            return None
        x = g.dequantized(inner.args[0])
        if x is None or not x[1].per_tensor:
            return None
        src, xq = x
        if inner.op.name == "relax.nn.max_pool2d":
            if not xq.same_as(yq):
                return None
            a = inner.attrs
            return relax.op.nn.max_pool2d(
                self.new(src),
                pool_size=a.pool_size,
                strides=a.strides,
                padding=a.padding,
                dilation=a.dilation,
                ceil_mode=a.ceil_mode,
                count_include_pad=a.count_include_pad,
                layout=a.layout,
                out_layout=a.out_layout,
            )
        if inner.op.name == "relax.nn.avg_pool2d":
            if self.rounding == "half_even":
                return None  # ONNX: float32 as written (module docstring)
            return self._rounded_pool(inner, self.new(src)) if xq.same_as(yq) else None
        shape = shape_of(inner.args[0])
        axes = list(range(len(shape))) if inner.attrs.axis is None else [int(v) % len(shape) for v in inner.attrs.axis]
        count = int(np.prod([shape[i] for i in axes]))
        if self.rounding == "half_even":
            m, s = fp.float32_fraction(fp.onnx_scale(xq.s, divide_by=fp.f32(yq.s) * fp.f32(count)))
        else:
            m, s = fp.mean_multiplier(xq.s, yq.s, count)
        wide = self.emit(relax.op.astype(self.new(src), "int32"))
        total = self.emit(relax.op.sum(wide, axis=axes, keepdims=bool(inner.attrs.keepdims)))
        return self.builder_.call_te(
            offset_requantize,
            total,
            -xq.zp * count,
            m,
            s,
            yq.zp,
            -128,
            127,
            self.rounding,
            primfunc_name_hint="requantize",
        )
