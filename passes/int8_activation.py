"""IntegerActivations: LOGISTIC, TANH, HARD_SWISH and SOFTMAX on int8, as TFLite Micro does.

The frontend's forms, with xf = dequantize(x):

    quantize(sigmoid(xf))                                  LOGISTIC
    quantize(tanh(xf))                                     TANH
    quantize(divide(multiply(xf, clip(add(xf, 3), 0, 6)), 6))   HARD_SWISH
    quantize(softmax(xf, axis=-1))                         SOFTMAX

The first three are int8 -> int8 functions of one value: each becomes a 256-entry int8
table computed at compile time with TFLM's fixed-point arithmetic (fixed_point_nonlinear.py:
gemmlowp logistic/tanh in Q4.27, the int16 hard-swish), read by one `lookup` kernel. TFLM
assumes LOGISTIC's output zero point -128 and TANH's 0 (its kernels ignore the output
scale); a model with other output parameters (an ONNX QDQ model) gets the table of the
float function rounded half to even, ONNX's QuantizeLinear.

SOFTMAX becomes one TE kernel (int8_kernels.softmax) with a 256-entry int32 exp table:
row max, sum of exps in Q12.19, reciprocal by Newton-Raphson, TFLM's rounding; only for
TFLM's output quantization (1/256, -128) and beta 1. Other forms are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax

from tvm_patch_core import fixed_point_nonlinear as fpn

from .int8_kernels import lookup, softmax
from .qdq import QdqRewriter, QParams, const_array, dtype_of, qparams


def float_table(fn: Callable[[np.ndarray], np.ndarray], xq: QParams, yq: QParams) -> np.ndarray:
    """ONNX semantics for an elementwise op between DequantizeLinear and QuantizeLinear."""
    real = float(xq.s) * (np.arange(-128, 128, dtype=np.float64) - xq.zp)
    q = np.round(fn(real) / float(yq.s)) + yq.zp  # np.round: half to even
    return np.clip(q, -128, 127).astype(np.int8)


def _is_const(expr: relax.Expr, value: float) -> bool:
    v = const_array(expr)
    return v is not None and v.size == 1 and float(v.reshape(-1)[0]) == value


@tvm.transform.module_pass(opt_level=0, name="IntegerActivations")
class IntegerActivations:
    """Rewrite int8 logistic / tanh / hard-swish / softmax into integer kernels."""

    def __init__(self, tflm_tables: bool = True) -> None:
        self.tflm_tables = tflm_tables  # False: always the float tables (ONNX semantics)

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return _ActivationRewriter(mod, self.tflm_tables).run(mod)


@relax.expr_functor.mutator
class _ActivationRewriter(QdqRewriter):
    def __init__(self, mod: tvm.IRModule, tflm_tables: bool) -> None:
        super().__init__(mod)
        self.tflm = tflm_tables

    def rewrite(self, call: relax.Call) -> relax.Expr | None:
        if call.op.name != "relax.quantize" or dtype_of(call) != "int8":
            return None
        yq = qparams(call)
        if yq is None or not yq.per_tensor:
            return None
        g = self.graph
        inner = g.call(call.args[0], "relax.sigmoid", "relax.tanh", "relax.nn.softmax", "relax.divide")
        if inner is None:
            return None
        name = inner.op.name
        if name == "relax.divide":
            return self._hard_swish(inner, yq)
        x = g.dequantized(inner.args[0])
        if x is None or not x[1].per_tensor:
            return None
        src, xq = x
        if name == "relax.nn.softmax":
            axis = int(inner.attrs.axis)
            if axis not in (-1, len(src.ty.shape.values) - 1) or yq.zp != -128 or float(yq.s) != 1 / 256:
                return None
            p = fpn.softmax_params(xq.s)
            table = relax.const(fpn.softmax_exp_table(p), "int32")
            return self.builder_.call_te(softmax, self.new(src), table, p.diff_min, primfunc_name_hint="softmax")
        if name == "relax.sigmoid":
            if self.tflm and yq.zp == -128:
                table = fpn.logistic_table(xq.s, xq.zp)
            else:
                table = float_table(lambda v: 1 / (1 + np.exp(-v)), xq, yq)
        else:
            table = fpn.tanh_table(xq.s, xq.zp) if self.tflm and yq.zp == 0 else float_table(np.tanh, xq, yq)
        return self._lookup(src, table)

    def _hard_swish(self, div: relax.Call, yq: QParams) -> relax.Expr | None:
        """divide(multiply(xf, clip(add(xf, 3), 0, 6)), 6), xf one dequantize (or two of x)."""
        g = self.graph
        mul = g.call(div.args[0], "relax.multiply")
        if mul is None or not _is_const(div.args[1], 6.0):
            return None
        for a, b in ((0, 1), (1, 0)):
            clip = g.call(mul.args[b], "relax.clip")
            if clip is None or float(clip.args[1].value) != 0.0 or float(clip.args[2].value) != 6.0:
                continue
            add = g.call(clip.args[0], "relax.add")
            if add is None or not _is_const(add.args[1], 3.0):
                continue
            x1, x2 = g.dequantized(mul.args[a]), g.dequantized(add.args[0])
            if x1 is None or x2 is None or not x1[0].same_as(x2[0]) or not x1[1].same_as(x2[1]):
                continue
            src, xq = x1
            if self.tflm:
                table = fpn.hard_swish_table(xq.s, xq.zp, yq.s, yq.zp)
            else:
                table = float_table(lambda v: v * np.clip(v + 3, 0, 6) / 6, xq, yq)
            return self._lookup(src, table)
        return None

    def _lookup(self, src: relax.Expr, table: np.ndarray) -> relax.Expr:
        return self.builder_.call_te(
            lookup,
            self.new(src),
            relax.const(table.astype(np.int8), "int8"),
            primfunc_name_hint="lookup",
        )
