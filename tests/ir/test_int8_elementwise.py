"""IntegerElementwise: int8 add / sub / mul, requantize, and byte moves."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tests.ir.qdq_graphs import deq, module, quant
from tvm_patch.passes.int8_elementwise import (
    IntegerElementwise,
    add_kernel,
    mul_kernel,
    requantize_table,
)
from tvm_patch.passes.int8_kernels import binary_int8, lookup
from tvm_patch.passes.qdq import QParams
from tvm_patch_core import fixed_point as fp

AB = {"a": ((1, 4, 4, 8), "int8"), "b": ((1, 4, 4, 8), "int8")}


def test_residual_add_with_relu():
    """resnet's ADD: both inputs rescaled (<< 20, TFLM's double multipliers), the fused relu
    (a float relu before the quantize in the frontend's form) as the clamp's lower bound."""

    def before(bb, a, b):
        da = bb.emit(deq(a, 0.0394, -128))
        db = bb.emit(deq(b, 0.1042, 4))
        s = bb.emit(relax.op.add(da, db))
        r = bb.emit(relax.op.nn.relu(s))
        return quant(r, 0.0509, -128)

    p = fp.add_params(0.0394, 0.1042, 0.0509)
    fn = add_kernel(p, -128, 4, -128, -128, 127, 1)

    def expected(bb, a, b):
        return bb.call_te(
            lambda x, y: binary_int8(x, y, (1, 4, 4, 8), fn, "add_int8"),
            a,
            b,
            primfunc_name_hint="add_int8",
            # its numbers, for DspKernels to fuse the add into a conv's micro-kernel
            primfunc_attrs={"tvmp.add": [-128, 4, p.left_shift, *p.input1, *p.input2, *p.output, -128, -128, 127, 1]},
        )

    tvm.ir.assert_structural_equal(IntegerElementwise()(module(AB, before)), module(AB, expected))


def test_squeeze_excite_multiply_broadcasts():
    """MUL of a [1,H,W,C] map by a [1,1,1,C] gate: one multiplier, broadcast in the kernel."""
    inputs = {"a": ((1, 4, 4, 8), "int8"), "b": ((1, 1, 1, 8), "int8")}

    def before(bb, a, b):
        da = bb.emit(deq(a, 0.0335, -128))
        db = bb.emit(deq(b, 0.0022, -128))
        m = bb.emit(relax.op.multiply(da, db))
        return quant(m, 0.0164, -128)

    mult, shift = fp.mul_multiplier(0.0335, 0.0022, 0.0164)
    fn = mul_kernel(mult, shift, -128, -128, -128, -128, 127)

    def expected(bb, a, b):
        return bb.call_te(
            lambda x, y: binary_int8(x, y, (1, 4, 4, 8), fn, "mul_int8"),
            a,
            b,
            primfunc_name_hint="mul_int8",
        )

    tvm.ir.assert_structural_equal(IntegerElementwise()(module(inputs, before)), module(inputs, expected))


def test_concat_of_equal_quantization_moves_bytes():
    """TFLM's CONCATENATION requires one quantization for all: the int8 values are concatenated."""

    def before(bb, a, b):
        da = bb.emit(deq(a, 0.036, -128))
        db = bb.emit(deq(b, 0.036, -128))
        c = bb.emit(relax.op.concat([da, db], axis=-1))
        return quant(c, 0.036, -128)

    def expected(bb, a, b):
        return relax.op.concat([a, b], axis=-1)

    tvm.ir.assert_structural_equal(IntegerElementwise()(module(AB, before)), module(AB, expected))


def test_requantize_is_tflms_quantize_table():
    """quantize(dequantize(x)) with new parameters is TFLM's QUANTIZE int8 -> int8."""

    def before(bb, a, b):
        del b
        d = bb.emit(deq(a, 0.02, 5))
        return quant(d, 0.03, -7)

    table = requantize_table(
        QParams(np.array([0.02], np.float32), np.array([5]), 0),
        QParams(np.array([0.03], np.float32), np.array([-7]), 0),
    )

    def expected(bb, a, b):
        del b
        return bb.call_te(lookup, a, relax.const(table, "int8"), primfunc_name_hint="lookup")

    tvm.ir.assert_structural_equal(IntegerElementwise()(module(AB, before)), module(AB, expected))


def test_float_add_is_left_alone():
    """An fp32 model's add has no dequantize around it: unchanged."""

    def before(bb, a, b):
        return relax.op.add(a, b)

    mod = module({"a": ((4,), "float32"), "b": ((4,), "float32")}, before)
    expected = mod
    tvm.ir.assert_structural_equal(IntegerElementwise()(mod), expected)


def test_onnx_add_and_mul_stay_onnxs_float32():
    """rounding "half_even" (ONNX QDQ): add and mul stay DequantizeLinear -> float32 op ->
    QuantizeLinear, as ONNX defines them and onnxruntime computes the graph as written."""
    for op in (relax.op.add, relax.op.multiply):

        def before(bb, a, b, op=op):
            da = bb.emit(deq(a, 0.0394, -128))
            db = bb.emit(deq(b, 0.1042, 4))
            return quant(bb.emit(op(da, db)), 0.0509, -128)

        mod = module(AB, before)
        tvm.ir.assert_structural_equal(IntegerElementwise("half_even")(mod), module(AB, before))
