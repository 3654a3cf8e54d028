"""InlineKernels: a fused conv kernel's full-size temporaries must disappear.

Before: pad -> conv -> bias -> relu, each stage into its own buffer (lowered, each becomes a
workspace allocation as large as a feature map). Expected: pad inlined into the conv's load,
bias and relu computed under the conv's innermost spatial loop; only the accumulator is left.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import te
from tvm.script import ir as I
from tvm.script import tirx as T

from tvm_patch.passes.inline_kernels import InlineKernels
from tvm_patch.targets.workspace import workspaces


@I.ir_module
class Before:
    @T.prim_func(s_tir=True)
    def k(x: T.Buffer((1, 4, 4, 2), "float32"), w: T.Buffer((3, 3, 2, 2), "float32"),
          b: T.Buffer((2,), "float32"), relu: T.Buffer((1, 4, 4, 2), "float32")):  # fmt: skip
        T.func_attr({"tirx.noalias": True})
        pad = T.sblock_alloc_buffer((1, 6, 6, 2))
        conv = T.sblock_alloc_buffer((1, 4, 4, 2))
        bias = T.sblock_alloc_buffer((1, 4, 4, 2))
        for n, h, ww, c in T.grid(1, 6, 6, 2):
            with T.sblock("pad"):
                v_n, v_h, v_ww, v_c = T.axis.remap("SSSS", [n, h, ww, c])
                T.reads(x[v_n, v_h - 1, v_ww - 1, v_c])
                T.writes(pad[v_n, v_h, v_ww, v_c])
                pad[v_n, v_h, v_ww, v_c] = T.if_then_else(
                    1 <= v_h and v_h < 5 and 1 <= v_ww and v_ww < 5, x[v_n, v_h - 1, v_ww - 1, v_c], T.float32(0.0)
                )
        for n, h, ww, o, rh, rw, rc in T.grid(1, 4, 4, 2, 3, 3, 2):
            with T.sblock("conv"):
                v_n, v_h, v_ww, v_o, v_rh, v_rw, v_rc = T.axis.remap("SSSSRRR", [n, h, ww, o, rh, rw, rc])
                T.reads(pad[v_n, v_h + v_rh, v_ww + v_rw, v_rc], w[v_rh, v_rw, v_rc, v_o])
                T.writes(conv[v_n, v_h, v_ww, v_o])
                with T.init():
                    conv[v_n, v_h, v_ww, v_o] = T.float32(0.0)
                conv[v_n, v_h, v_ww, v_o] = (
                    conv[v_n, v_h, v_ww, v_o] + pad[v_n, v_h + v_rh, v_ww + v_rw, v_rc] * w[v_rh, v_rw, v_rc, v_o]
                )
        for n, h, ww, o in T.grid(1, 4, 4, 2):
            with T.sblock("bias"):
                v_n, v_h, v_ww, v_o = T.axis.remap("SSSS", [n, h, ww, o])
                T.reads(conv[v_n, v_h, v_ww, v_o], b[v_o])
                T.writes(bias[v_n, v_h, v_ww, v_o])
                bias[v_n, v_h, v_ww, v_o] = conv[v_n, v_h, v_ww, v_o] + b[v_o]
        for i0, i1, i2, i3 in T.grid(1, 4, 4, 2):
            with T.sblock("relu"):
                v_i0, v_i1, v_i2, v_i3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                T.reads(bias[v_i0, v_i1, v_i2, v_i3])
                T.writes(relu[v_i0, v_i1, v_i2, v_i3])
                relu[v_i0, v_i1, v_i2, v_i3] = T.max(bias[v_i0, v_i1, v_i2, v_i3], T.float32(0.0))


@I.ir_module
class Expected:
    @T.prim_func(s_tir=True)
    def k(x: T.Buffer((1, 4, 4, 2), "float32"), w: T.Buffer((3, 3, 2, 2), "float32"),
          b: T.Buffer((2,), "float32"), relu: T.Buffer((1, 4, 4, 2), "float32")):  # fmt: skip
        T.func_attr({"tirx.noalias": True})
        conv = T.sblock_alloc_buffer((1, 4, 4, 2))
        for n, h, ww, o in T.grid(1, 4, 4, 2):
            for rh, rw, rc in T.grid(3, 3, 2):
                with T.sblock("conv"):
                    v_n, v_h, v_ww, v_o, v_rh, v_rw, v_rc = T.axis.remap("SSSSRRR", [n, h, ww, o, rh, rw, rc])
                    T.reads(x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_rc], w[v_rh, v_rw, v_rc, v_o])
                    T.writes(conv[v_n, v_h, v_ww, v_o])
                    with T.init():
                        conv[v_n, v_h, v_ww, v_o] = T.float32(0.0)
                    conv[v_n, v_h, v_ww, v_o] = (
                        conv[v_n, v_h, v_ww, v_o]
                        + T.if_then_else(
                            1 <= v_h + v_rh and v_h + v_rh < 5 and 1 <= v_ww + v_rw and v_ww + v_rw < 5,
                            x[v_n, v_h + v_rh - 1, v_ww + v_rw - 1, v_rc],
                            T.float32(0.0),
                        )
                        * w[v_rh, v_rw, v_rc, v_o]
                    )
            with T.sblock("relu"):
                v_i0 = T.axis.spatial(1, 0)
                v_i1, v_i2, v_i3 = T.axis.remap("SSS", [h, ww, o])
                T.reads(conv[v_i0, v_i1, v_i2, v_i3], b[v_i3])
                T.writes(relu[v_i0, v_i1, v_i2, v_i3])
                relu[v_i0, v_i1, v_i2, v_i3] = T.max(conv[v_i0, v_i1, v_i2, v_i3] + b[v_i3], T.float32(0.0))


def test_pad_and_epilogue_are_inlined():
    tvm.ir.assert_structural_equal(InlineKernels()(Before), Expected)


def test_an_inlined_kernel_does_not_change():
    tvm.ir.assert_structural_equal(InlineKernels()(Expected), Expected)


def test_the_input_module_is_not_changed():
    script = Before.script()
    InlineKernels()(Before)
    assert Before.script() == script


def test_workspace_goes_from_feature_maps_to_none():
    """Before's temporaries are small enough for the stack (< 1 KiB each), so the same kernel
    at a real layer's size: pad 18*18*8 floats (10,368 B) + conv 16*16*16 floats (16,384 B);
    TVM's StorageRewrite lets the bias stage reuse the conv buffer."""
    big = scaled_kernel()
    assert workspaces(big)["k"] == 10_368 + 16_384
    assert workspaces(InlineKernels()(big))["k"] == 0


def test_computes_the_same():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("float32") for s in [(1, 4, 4, 2), (3, 3, 2, 2), (2,)]]
    outs = []
    for mod in (Before, InlineKernels()(Before)):
        f = tvm.tirx.build(mod, "llvm")
        y = tvm.runtime.tensor(np.zeros((1, 4, 4, 2), "float32"))
        f["k"](*[tvm.runtime.tensor(a) for a in args], y)
        outs.append(y.numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def scaled_kernel() -> tvm.IRModule:
    """Before's pad -> conv -> bias -> relu at 16x16x8 -> 16 channels (TE)."""
    x = te.placeholder((1, 16, 16, 8), name="x")
    w = te.placeholder((3, 3, 8, 16), name="w")
    b = te.placeholder((16,), name="b")
    pad = te.compute((1, 18, 18, 8), lambda n, h, ww, c: tvm.tirx.if_then_else(
        tvm.tirx.all(h >= 1, h < 17, ww >= 1, ww < 17), x[n, h - 1, ww - 1, c], 0.0), name="pad")  # fmt: skip
    rh, rw, rc = te.reduce_axis((0, 3)), te.reduce_axis((0, 3)), te.reduce_axis((0, 8))
    conv = te.compute((1, 16, 16, 16), lambda n, h, ww, o: te.sum(
        pad[n, h + rh, ww + rw, rc] * w[rh, rw, rc, o], axis=[rh, rw, rc]), name="conv")  # fmt: skip
    bias = te.compute(conv.shape, lambda n, h, ww, o: conv[n, h, ww, o] + b[o], name="bias")
    relu = te.compute(conv.shape, lambda *i: tvm.te.max(bias(*i), 0.0), name="relu")
    return tvm.IRModule({"k": te.create_prim_func([x, w, b, relu]).with_attr("global_symbol", "k")})


def maxpool_1x1_relu() -> tvm.IRModule:
    """A 1x1 MaxPool (reduction loops of extent 1) followed by ReLU, as FuseTIR fuses them."""
    x = te.placeholder((1, 3, 6, 5), name="x")
    rh, rw = te.reduce_axis((0, 1)), te.reduce_axis((0, 1))
    pool = te.compute(x.shape, lambda n, c, h, w: te.max(x[n, c, h + rh, w + rw], axis=[rh, rw]), name="pool")
    relu = te.compute(x.shape, lambda *i: tvm.te.max(pool(*i), 0.0), name="relu")
    return tvm.IRModule({"k": te.create_prim_func([x, relu]).with_attr("global_symbol", "k")})


def test_unit_window_max_reduction_keeps_its_c_scope(tmp_path):
    """TVM's C codegen names each max/min operand once per C scope, so with the unit loops
    gone the fused ReLU read the accumulator from before the update: ReLU(-FLT_MAX) = 0 for
    every pixel (fuzzer seed 7; `python bench/fuzz.py --shrink 7`). The C kernel must compute
    ReLU(x)."""
    lib = tvm.tirx.build(InlineKernels()(maxpool_1x1_relu()), tvm.target.Target({"kind": "c"}))
    lib.export_library(str(tmp_path / "k.so"))  # the host C compiler builds TVM's C source
    k = tvm.runtime.load_module(str(tmp_path / "k.so"))["k"]
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 5)).astype("float32")
    y = tvm.runtime.tensor(np.zeros_like(x))
    k(tvm.runtime.tensor(x), y)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))
