"""InplaceKernels: the kernels tvm_patch_core.inplace_rules chose write over their input.

A depthwise kernel (after InlineKernels) is rescheduled: channel loop outermost, the channel
computed into a one-channel temporary, then copied out, so output channel c lands only where
input channel c was (no later channel reads it). A residual kernel keeps its loops. Both drop
`tirx.noalias`: their pointers will be equal. Kernels not named are left as they are; a
kernel the depthwise schedule does not fit is left as it is (and the flow then keeps its
output apart: aliasing_kernels reads what the pass did).
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te
from tvm.script import ir as I
from tvm.script import tirx as T

from tvm_patch.passes.inline_kernels import schedule_kernel
from tvm_patch.passes.inplace_kernels import InplaceKernels, aliasing_kernels, inplace_depthwise
from tvm_patch_core.errors import NotInplaceable


@I.ir_module
class Before:
    @T.prim_func(s_tir=True)
    def dw(x: T.Buffer((1, 4, 4, 2), "float32"), w: T.Buffer((3, 3, 2), "float32"),
           relu: T.Buffer((1, 4, 4, 2), "float32")):  # fmt: skip
        T.func_attr({"tirx.noalias": True})
        conv = T.sblock_alloc_buffer((1, 4, 4, 2))
        for n, h, ww, c in T.grid(1, 4, 4, 2):
            for rh, rw in T.grid(3, 3):
                with T.sblock("conv"):
                    v_n, v_h, v_ww, v_c, v_rh, v_rw = T.axis.remap("SSSSRR", [n, h, ww, c, rh, rw])
                    T.reads(x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_c], w[v_rh, v_rw, v_c])
                    T.writes(conv[v_n, v_h, v_ww, v_c])
                    with T.init():
                        conv[v_n, v_h, v_ww, v_c] = T.float32(0.0)
                    conv[v_n, v_h, v_ww, v_c] = (
                        conv[v_n, v_h, v_ww, v_c]
                        + T.if_then_else(
                            1 <= v_h + v_rh and v_h + v_rh < 5 and 1 <= v_ww + v_rw and v_ww + v_rw < 5,
                            x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_c],
                            T.float32(0.0),
                        )
                        * w[v_rh, v_rw, v_c]
                    )
            with T.sblock("relu"):
                v_i0 = T.axis.spatial(1, 0)
                v_i1, v_i2, v_i3 = T.axis.remap("SSS", [h, ww, c])
                T.reads(conv[v_i0, v_i1, v_i2, v_i3])
                T.writes(relu[v_i0, v_i1, v_i2, v_i3])
                relu[v_i0, v_i1, v_i2, v_i3] = T.max(conv[v_i0, v_i1, v_i2, v_i3], T.float32(0.0))


@I.ir_module
class Expected:
    @T.prim_func(s_tir=True)
    def dw(x: T.Buffer((1, 4, 4, 2), "float32"), w: T.Buffer((3, 3, 2), "float32"),
           relu: T.Buffer((1, 4, 4, 2), "float32")):  # fmt: skip
        T.func_attr({"tirx.noalias": False})
        conv = T.sblock_alloc_buffer((1, 4, 4, 2))
        relu_global = T.sblock_alloc_buffer((1, 4, 4, 2))
        for c in range(2):
            for n, h, ww in T.grid(1, 4, 4):
                for rh, rw in T.grid(3, 3):
                    with T.sblock("conv"):
                        v_n, v_h, v_ww, v_c, v_rh, v_rw = T.axis.remap("SSSSRR", [n, h, ww, c, rh, rw])
                        T.reads(x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_c], w[v_rh, v_rw, v_c])
                        T.writes(conv[v_n, v_h, v_ww, v_c])
                        with T.init():
                            conv[v_n, v_h, v_ww, v_c] = T.float32(0.0)
                        conv[v_n, v_h, v_ww, v_c] = (
                            conv[v_n, v_h, v_ww, v_c]
                            + T.if_then_else(
                                1 <= v_h + v_rh and v_h + v_rh < 5 and 1 <= v_ww + v_rw and v_ww + v_rw < 5,
                                x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_c],
                                T.float32(0.0),
                            )
                            * w[v_rh, v_rw, v_c]
                        )
                with T.sblock("relu"):
                    v_i0 = T.axis.spatial(1, 0)
                    v_i1, v_i2, v_i3 = T.axis.remap("SSS", [h, ww, c])
                    T.reads(conv[v_i0, v_i1, v_i2, v_i3])
                    T.writes(relu_global[v_i0, v_i1, v_i2, v_i3])
                    relu_global[v_i0, v_i1, v_i2, v_i3] = T.max(conv[v_i0, v_i1, v_i2, v_i3], T.float32(0.0))
            for ax0, ax1 in T.grid(4, 4):
                with T.sblock("relu_global"):
                    v0 = T.axis.spatial(1, 0)
                    v1, v2, v3 = T.axis.remap("SSS", [ax0, ax1, c])
                    T.reads(relu_global[v0, v1, v2, v3])
                    T.writes(relu[v0, v1, v2, v3])
                    relu[v0, v1, v2, v3] = relu_global[v0, v1, v2, v3]


def test_depthwise_runs_channel_by_channel_through_a_temporary():
    after = InplaceKernels(depthwise={"dw": "NHWC"})(Before)
    tvm.ir.assert_structural_equal(after, Expected)
    assert aliasing_kernels(after) == {"dw"}


def test_residual_kernel_only_drops_noalias():
    after = InplaceKernels(residual=("dw",))(Before)
    tvm.ir.assert_structural_equal(after["dw"], Before["dw"].with_attr("tirx.noalias", False))


def test_kernels_not_named_are_left_as_they_are():
    tvm.ir.assert_structural_equal(InplaceKernels(depthwise={"other": "NHWC"})(Before), Before)
    assert aliasing_kernels(Before) == set()


@I.ir_module
class NotAConv:
    @T.prim_func(s_tir=True)
    def dw(x: T.Buffer((4, 4), "float32"), y: T.Buffer((4, 4), "float32")):
        for i, j in T.grid(4, 4):
            with T.sblock("y"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = x[vi, vj] + T.float32(1.0)


def test_a_kernel_the_schedule_does_not_fit_is_refused():
    with pytest.raises(NotInplaceable):
        inplace_depthwise(NotAConv["dw"], "NHWC")
    tvm.ir.assert_structural_equal(InplaceKernels(depthwise={"dw": "NHWC"})(NotAConv), NotAConv)  # left as it is


def test_same_result_with_output_over_input():
    """The arena gives input and output one slot: pass the same buffer for both."""
    func = inplace_depthwise(_depthwise_10x10(), "NHWC")
    lib = tvm.tirx.build(tvm.IRModule({"dw": func}), "llvm")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 10, 10, 6)).astype("float32")
    w = rng.standard_normal((3, 3, 6)).astype("float32")
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            want += pad[:, dy : dy + 10, dx : dx + 10, :] * w[dy, dx]
    want = np.maximum(want, 0)
    buf = tvm.runtime.tensor(x)
    lib["dw"](buf, tvm.runtime.tensor(w), buf)  # output written over the input
    np.testing.assert_allclose(buf.numpy(), want, rtol=1e-5, atol=1e-5)


def _depthwise_10x10() -> tvm.tirx.PrimFunc:
    x = te.placeholder((1, 10, 10, 6), name="x")
    w = te.placeholder((3, 3, 6), name="w")
    pad = te.compute((1, 12, 12, 6), lambda n, h, ww, c: tvm.tirx.if_then_else(
        tvm.tirx.all(h >= 1, h < 11, ww >= 1, ww < 11), x[n, h - 1, ww - 1, c], 0.0), name="pad")  # fmt: skip
    rh, rw = te.reduce_axis((0, 3)), te.reduce_axis((0, 3))
    conv = te.compute((1, 10, 10, 6), lambda n, h, ww, c: te.sum(
        pad[n, h + rh, ww + rw, c] * w[rh, rw, c], axis=[rh, rw]), name="conv")  # fmt: skip
    out = te.compute(conv.shape, lambda *i: tvm.te.max(conv(*i), 0.0), name="relu")
    return schedule_kernel(te.create_prim_func([x, w, out]).with_attr("global_symbol", "dw"))
