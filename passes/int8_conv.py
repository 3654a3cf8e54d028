"""IntegerConvDense: conv2d (plain, depthwise, grouped) and dense/matmul in int8, as TFLM does.

Matches, in the frontend's QDQ form,

    quantize(add(conv2d(dequantize(x), W), B), s_out, zp_out) [-> clip(lo, hi)]

(also without the bias add, with matmul in place of conv2d, and with a float relu/clip
between the add and the quantize), where W and B are trees over int8 / int32 constants, and
writes

    acc = conv2d(astype(x, int32) - zp_x, W_int8, ..., out_dtype=int32)   # padding adds 0
    y   = call_tir(requantize, acc, [B; M; shift])   # + bias, TFLM requantize, clamp: int8

W is evaluated once to int8 in the layout the op reads; its per-channel scale must run along
the op's output-channel axis. The bias, multiplier and shift per output channel travel as one
int32 table [3, C] (one kernel argument). The multiplier and shift per output channel are TFLM's
(fixed_point.conv_multipliers: double(s_x) * double(s_w[c]) / double(s_out); per-tensor
dense multiplies the two scales in float32 first). The bias is used as stored, as TFLM does.
A nonzero weight zero point (ONNX) is folded into the constant (int16 if it no longer fits
int8). Anything else is left as it was.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvm_patch_core import fixed_point as fp

from .int8_kernels import requantize
from .qdq import Graph, QdqRewriter, QParams, Weight, dtype_of, qparams, shape_of


def output_bounds(out: QParams, float_act: relax.Call | None) -> tuple[int, int]:
    """(lo, hi) in the output's int8 domain of a float relu/clip before the quantize (the
    TFLite frontend writes ADD's fused activation so), with TFLM's rounding."""
    lo, hi = -128, 127
    if float_act is not None:
        name = float_act.op.name
        if name == "relax.nn.relu":
            lo = max(lo, fp.quantize_value(0.0, out.s, out.zp))
        elif name == "relax.clip":
            a, b = float(float_act.args[1].value), float(float_act.args[2].value)
            lo = max(lo, fp.quantize_value(a, out.s, out.zp))
            hi = min(hi, fp.quantize_value(b, out.s, out.zp))
    return lo, hi


def int8_clip_bounds(clip: relax.Call, out: QParams) -> tuple[int, int]:
    """The bounds of the frontend's clip on an int8 result, re-derived with TFLM's rounding
    where the frontend rounded 6.0 / s (or +-1 / s) with Python's round()."""
    lo, hi = int(float(clip.args[1].value)), int(float(clip.args[2].value))
    for real in (6.0, 1.0):
        if hi == min(127, round(real / float(out.s)) + out.zp):
            hi = min(127, fp.quantize_value(real, out.s, out.zp))
    if lo == max(-128, round(-1.0 / float(out.s)) + out.zp):
        lo = max(-128, fp.quantize_value(-1.0, out.s, out.zp))
    return lo, hi


def split_epilogue(
    graph: Graph, call: relax.Call
) -> tuple[relax.Call, QParams, relax.Call | None, relax.Expr, relax.Call | None] | None:
    """For `call` = quantize(...) or clip(quantize(...)): (quantize, its QParams, float
    activation or None, the pre-activation value, int8 clip or None)."""
    clip = None
    if call.op.name == "relax.clip":
        inner = graph.call(call.args[0], "relax.quantize")
        if inner is None or graph.only_user(call.args[0]) is None:
            return None
        clip, call = call, inner
    if call.op.name != "relax.quantize" or dtype_of(call) != "int8":
        return None
    q = qparams(call)
    if q is None or not q.per_tensor:
        return None
    if clip is None:  # leave a quantize whose only user is a clip to the clip's rewrite
        user = graph.only_user(graph.var_of[call])
        if user is not None and graph.call(user, "relax.clip") is not None:
            return None
    value, act = call.args[0], None
    for name in ("relax.nn.relu", "relax.clip"):
        a = graph.call(value, name)
        if a is not None and dtype_of(a) == "float32":
            act, value = a, a.args[0]
            break
    return call, q, act, value, clip


@tvm.transform.module_pass(opt_level=0, name="IntegerConvDense")
class IntegerConvDense:
    """Rewrite int8 conv2d / matmul from the QDQ form into integer ops (module docstring).

    rounding "tflm": TFLite Micro's multiplier, shift and double rounding; "half_even":
    onnxruntime's QLinearConv / QLinearMatMul scale (float32 x_s * w_s / y_s), applied
    exactly with ties to even (as an integer multiply and shift)."""

    def __init__(self, rounding: str = "tflm") -> None:
        if rounding not in ("tflm", "half_even"):
            raise ValueError(f"rounding {rounding!r}: choose tflm or half_even")
        self.rounding = rounding

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return _ConvRewriter(mod, self.rounding).run(mod)


@relax.expr_functor.mutator
class _ConvRewriter(QdqRewriter):
    def __init__(self, mod: tvm.IRModule, rounding: str) -> None:
        super().__init__(mod)
        self.rounding = rounding

    def rewrite(self, call: relax.Call) -> relax.Expr | None:
        parts = split_epilogue(self.graph, call)
        if parts is None:
            return None
        _, out_q, act, value, clip = parts
        bias = None
        add = self.graph.call(value, "relax.add")
        if add is not None:
            for anchor_arg, bias_arg in ((0, 1), (1, 0)):
                b = self.graph.weight(add.args[bias_arg])
                if b is not None and b.quantized and b.data.dtype == np.int32:
                    value, bias = add.args[anchor_arg], b.data
                    break
            else:
                return None
        anchor = self.graph.call(value, "relax.nn.conv2d", "relax.matmul")
        if anchor is None:
            return None
        x = self.graph.dequantized(anchor.args[0])
        w = self.graph.weight(anchor.args[1])
        if x is None or w is None or not w.quantized or w.data.dtype != np.int8 or not x[1].per_tensor:
            return None
        is_conv = anchor.op.name == "relax.nn.conv2d"
        out_axis = str(anchor.attrs.data_layout).index("C") if is_conv else len(shape_of(anchor)) - 1
        w_axis = str(anchor.attrs.kernel_layout).index("O") if is_conv else w.data.ndim - 1
        try:
            axis = w.channel_axis()
        except ValueError:
            return None
        if axis not in (None, w_axis):
            return None
        w_scales, _ = w.along(axis)
        channels = shape_of(anchor)[out_axis]
        if bias is not None and bias.size not in (1, channels):
            return None
        x_src, xq = x
        if self.rounding == "half_even":
            pairs = [fp.float32_fraction(fp.onnx_scale(xq.s, ws, divide_by=out_q.s)) for ws in w_scales]
            mult, shift = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        elif is_conv or axis is not None:
            mult, shift = fp.conv_multipliers(xq.s, w_scales, out_q.s)
        else:
            m, s = fp.fc_multiplier(xq.s, w_scales[0], out_q.s)
            mult, shift = np.array([m]), np.array([s])
        lo, hi = output_bounds(out_q, act)
        if clip is not None:
            clo, chi = int8_clip_bounds(clip, out_q)
            lo, hi = max(lo, clo), min(hi, chi)
        return self._emit(anchor, x_src, xq, w, bias, mult, shift, out_q, lo, hi, out_axis)

    def _emit(
        self,
        anchor: relax.Call,
        x_src: relax.Expr,
        xq: QParams,
        w: Weight,
        bias: np.ndarray | None,
        mult: np.ndarray,
        shift: np.ndarray,
        out_q: QParams,
        lo: int,
        hi: int,
        out_axis: int,
    ) -> relax.Expr:
        xi = self.emit(relax.op.astype(self.new(x_src), "int32"))
        if xq.zp:
            xi = self.emit(relax.op.subtract(xi, relax.const(xq.zp, "int32")))
        data = w.data.astype(np.int64) - w.zero_point
        wdtype = "int8" if data.min() >= -128 and data.max() <= 127 else "int16"
        weight = relax.const(data.astype(wdtype), wdtype)
        if anchor.op.name == "relax.nn.conv2d":
            a = anchor.attrs
            acc = relax.op.nn.conv2d(
                xi,
                weight,
                strides=a.strides,
                padding=a.padding,
                dilation=a.dilation,
                groups=a.groups,
                data_layout=a.data_layout,
                kernel_layout=a.kernel_layout,
                out_layout=a.out_layout,
                out_dtype="int32",
            )
        else:
            acc = relax.op.matmul(xi, weight, out_dtype="int32")
        acc = self.emit(acc)
        channels = shape_of(anchor)[out_axis]
        per_channel = mult.size > 1
        rows = [np.broadcast_to(np.zeros(1) if bias is None else bias.reshape(-1), (channels,)).astype(np.int64)]
        if per_channel:
            rows += [mult, shift]
        table = None
        if bias is not None or per_channel:
            table = relax.const(np.stack(rows).astype(np.int32), "int32")  # [bias; multiplier; shift]
        m = None if per_channel else int(mult[0])
        s = None if per_channel else int(shift[0])
        return self.builder_.call_te(
            requantize,
            acc,
            table,
            m,
            s,
            out_q.zp,
            lo,
            hi,
            out_axis,
            self.rounding,
            primfunc_name_hint="requantize",
            # its numbers, for DspKernels (passes/int8_dsp.py), which matches the kernel later
            primfunc_attrs={
                "tvmp.requantize": {
                    "zero_point": out_q.zp,
                    "lo": lo,
                    "hi": hi,
                    "multiplier": m,
                    "shift": s,
                    "axis": out_axis,
                    "rounding": self.rounding,
                }
            },
        )
