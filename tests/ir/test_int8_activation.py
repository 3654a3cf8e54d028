"""IntegerActivations: logistic / tanh / hard-swish as tables, softmax as one kernel."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tests.ir.qdq_graphs import deq, f32, module, quant
from tvm_patch.passes.int8_activation import IntegerActivations, float_table
from tvm_patch.passes.int8_kernels import lookup, softmax
from tvm_patch.passes.qdq import QParams
from tvm_patch_core import fixed_point_nonlinear as fpn

X = {"x": ((1, 4, 4, 8), "int8")}


def _table(bb, x, table):
    return bb.call_te(lookup, x, relax.const(table.astype(np.int8), "int8"), primfunc_name_hint="lookup")


def test_logistic_is_tflms_table():
    """quantize(sigmoid(dequantize(x))) with TFLM's output zero point -128: the gemmlowp
    fixed-point logistic of every int8 value, one lookup."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.0083, 40))
        s = bb.emit(relax.op.sigmoid(d))
        return quant(s, 1 / 256, -128)

    def expected(bb, x):
        return _table(bb, x, fpn.logistic_table(0.0083, 40))

    tvm.ir.assert_structural_equal(IntegerActivations()(module(X, before)), module(X, expected))


def test_tanh_with_other_output_parameters_uses_the_float_table():
    """TFLM's TANH assumes output zero point 0; with another one (an ONNX model) the table is
    the float function rounded half to even, ONNX's QuantizeLinear."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.007, -14))
        t = bb.emit(relax.op.tanh(d))
        return quant(t, 0.0079, 3)

    xq = QParams(np.array([0.007], np.float32), np.array([-14]), 0)
    yq = QParams(np.array([0.0079], np.float32), np.array([3]), 0)

    def expected(bb, x):
        return _table(bb, x, float_table(np.tanh, xq, yq))

    tvm.ir.assert_structural_equal(IntegerActivations()(module(X, before)), module(X, expected))


def test_hard_swish_pattern_is_one_table():
    """The frontend writes HARD_SWISH as x * clip(x + 3, 0, 6) / 6 in float: one lookup with
    TFLM's int16 fixed-point hard-swish."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.0508, 7))
        a = bb.emit(relax.op.add(d, f32(3.0)))
        c = bb.emit(relax.op.clip(a, 0.0, 6.0))
        m = bb.emit(relax.op.multiply(d, c))
        v = bb.emit(relax.op.divide(m, f32(6.0)))
        return quant(v, 0.0254, -113)

    def expected(bb, x):
        return _table(bb, x, fpn.hard_swish_table(0.0508, 7, 0.0254, -113))

    tvm.ir.assert_structural_equal(IntegerActivations()(module(X, before)), module(X, expected))


def test_softmax_is_one_kernel_with_an_exp_table():
    """SOFTMAX int8 -> int8 (1/256, -128): TFLM's fixed-point softmax as one TE kernel."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.1447, 14))
        s = bb.emit(relax.op.nn.softmax(d, axis=-1))
        return quant(s, 1 / 256, -128)

    p = fpn.softmax_params(0.1447)

    def expected(bb, x):
        table = relax.const(fpn.softmax_exp_table(p), "int32")
        return bb.call_te(softmax, x, table, p.diff_min, primfunc_name_hint="softmax")

    inputs = {"x": ((1, 12), "int8")}
    tvm.ir.assert_structural_equal(IntegerActivations()(module(inputs, before)), module(inputs, expected))


def test_softmax_with_other_output_quantization_is_left_alone():
    """TFLM's int8 softmax is defined for output (1/256, -128) only; anything else stays."""

    def before(bb, x):
        d = bb.emit(deq(x, 0.1447, 14))
        s = bb.emit(relax.op.nn.softmax(d, axis=-1))
        return quant(s, 1 / 128, 0)

    mod = module({"x": ((1, 12), "int8")}, before)
    expected = mod
    tvm.ir.assert_structural_equal(IntegerActivations()(mod), expected)
