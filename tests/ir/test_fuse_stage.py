"""FuseStage: main's first K kernel calls become ONE call_tir of one PrimFunc, `patch_stage`.

The stage's intermediate tensors become buffers inside the fused function (full size: PatchTIR
tiles them down to patch windows), the plan travels as attributes, and the rest of main is
left as it was. A stage whose intermediate is read after it is refused.
"""

from __future__ import annotations

import pytest
import tvm
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

from tvm_patch.passes.fuse_stage import FuseStage
from tvm_patch_core.errors import PatchTIRError


@I.ir_module
class Before:
    """Three elementwise kernels in a row, as FuseTIR + InlineKernels leave a model."""

    @T.prim_func(s_tir=True)
    def k0(x: T.Buffer((1, 4, 4, 2), "float32"), add: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"tirx.noalias": True})
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("add"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(x[v_i0, v_i1, v_i2, v_i3])
                T.writes(add[v_i0, v_i1, v_i2, v_i3])
                add[v_i0, v_i1, v_i2, v_i3] = x[v_i0, v_i1, v_i2, v_i3] + T.float32(1.0)

    @T.prim_func(s_tir=True)
    def k1(x: T.Buffer((1, 4, 4, 2), "float32"), mul: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"tirx.noalias": True})
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("mul"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(x[v_i0, v_i1, v_i2, v_i3])
                T.writes(mul[v_i0, v_i1, v_i2, v_i3])
                mul[v_i0, v_i1, v_i2, v_i3] = x[v_i0, v_i1, v_i2, v_i3] * T.float32(2.0)

    @T.prim_func(s_tir=True)
    def k2(x: T.Buffer((1, 4, 4, 2), "float32"), sub: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"tirx.noalias": True})
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("sub"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(x[v_i0, v_i1, v_i2, v_i3])
                T.writes(sub[v_i0, v_i1, v_i2, v_i3])
                sub[v_i0, v_i1, v_i2, v_i3] = x[v_i0, v_i1, v_i2, v_i3] - T.float32(3.0)

    @R.function
    def main(x: R.Tensor((1, 4, 4, 2), dtype="float32")) -> R.Tensor((1, 4, 4, 2), dtype="float32"):
        cls = Before
        with R.dataflow():
            a = R.call_tir(cls.k0, (x,), out_ty=R.Tensor((1, 4, 4, 2), dtype="float32"))
            b = R.call_tir(cls.k1, (a,), out_ty=R.Tensor((1, 4, 4, 2), dtype="float32"))
            c = R.call_tir(cls.k2, (b,), out_ty=R.Tensor((1, 4, 4, 2), dtype="float32"))
            R.output(c)
        return c


@I.ir_module
class Expected:
    """k0 and k1 in one function; `add` is now its internal buffer; k2 is called as before."""

    @T.prim_func(s_tir=True)
    def k2(x: T.Buffer((1, 4, 4, 2), "float32"), sub: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"tirx.noalias": True})
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("sub"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(x[v_i0, v_i1, v_i2, v_i3])
                T.writes(sub[v_i0, v_i1, v_i2, v_i3])
                sub[v_i0, v_i1, v_i2, v_i3] = x[v_i0, v_i1, v_i2, v_i3] - T.float32(3.0)

    @T.prim_func(s_tir=True)
    def patch_stage(x: T.Buffer((1, 4, 4, 2), "float32"), mul: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"global_symbol": "patch_stage", "patch_layout": "NHWC", "patch_tiles_h": [[0, 2], [2, 4]],
                     "patch_tiles_w": [[0, 4]], "tirx.noalias": True})  # fmt: skip
        add = T.sblock_alloc_buffer((1, 4, 4, 2))
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("add"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(x[v_i0, v_i1, v_i2, v_i3])
                T.writes(add[v_i0, v_i1, v_i2, v_i3])
                add[v_i0, v_i1, v_i2, v_i3] = x[v_i0, v_i1, v_i2, v_i3] + T.float32(1.0)
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("mul"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(add[v_i0, v_i1, v_i2, v_i3])
                T.writes(mul[v_i0, v_i1, v_i2, v_i3])
                mul[v_i0, v_i1, v_i2, v_i3] = add[v_i0, v_i1, v_i2, v_i3] * T.float32(2.0)

    @R.function
    def main(x: R.Tensor((1, 4, 4, 2), dtype="float32")) -> R.Tensor((1, 4, 4, 2), dtype="float32"):
        cls = Expected
        with R.dataflow():
            b = R.call_tir(cls.patch_stage, (x,), out_ty=R.Tensor((1, 4, 4, 2), dtype="float32"))
            c = R.call_tir(cls.k2, (b,), out_ty=R.Tensor((1, 4, 4, 2), dtype="float32"))
            R.output(c)
        return c


PLAN = dict(tiles_h=((0, 2), (2, 4)), tiles_w=((0, 4),), layout="NHWC")


def test_first_two_calls_become_one_stage_function():
    tvm.ir.assert_structural_equal(FuseStage(2, **PLAN)(Before), Expected)


def test_the_input_module_is_not_changed():
    script = Before.script()
    FuseStage(2, **PLAN)(Before)
    assert Before.script() == script


@I.ir_module
class LeaksAnIntermediate:
    """k0's output is read by the stage AND after it: it cannot stay inside the stage."""

    @T.prim_func(s_tir=True)
    def k0(x: T.Buffer((4,), "float32"), y: T.Buffer((4,), "float32")):
        for i in range(4):
            with T.sblock("y"):
                vi = T.axis.remap("S", [i])
                y[vi] = x[vi] + T.float32(1.0)

    @T.prim_func(s_tir=True)
    def k1(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32"), z: T.Buffer((4,), "float32")):
        for i in range(4):
            with T.sblock("z"):
                vi = T.axis.remap("S", [i])
                z[vi] = a[vi] + b[vi]

    @R.function
    def main(x: R.Tensor((4,), dtype="float32")) -> R.Tensor((4,), dtype="float32"):
        cls = LeaksAnIntermediate
        with R.dataflow():
            a = R.call_tir(cls.k0, (x,), out_ty=R.Tensor((4,), dtype="float32"))
            b = R.call_tir(cls.k0, (a,), out_ty=R.Tensor((4,), dtype="float32"))
            c = R.call_tir(cls.k1, (a, b), out_ty=R.Tensor((4,), dtype="float32"))
            R.output(c)
        return c


def test_a_stage_whose_intermediate_is_read_later_is_refused():
    with pytest.raises(PatchTIRError, match="read after it"):
        FuseStage(2, tiles_h=((0, 4),), tiles_w=((0, 1),))(LeaksAnIntermediate)
