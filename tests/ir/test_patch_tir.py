"""PatchTIR and the TIR pipeline "patch": `tvm.build(prim_mod, target, pipeline="patch")`.

Before: a TE chain pad -> conv3x3 -> relu -> pad -> conv3x3 in one PrimFunc, each stage over
the whole 16x16 map. After (2x2 patches): the output is computed per 8x8 patch and the first
conv only over that patch's 10x10 window (its one-pixel halo), with the same output.
(TVM's buffer compaction still allocates the intermediate in full: see passes/patch_tir.py.)
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import te
from tvm_patch.targets.workspace import kernel_workspaces

import tvm_patch  # noqa: F401  (registers the "patch" TIR pipeline)


def conv_chain() -> tvm.IRModule:
    x = te.placeholder((1, 16, 16, 4), name="x")
    w1 = te.placeholder((3, 3, 4, 8), name="w1")
    w2 = te.placeholder((3, 3, 8, 8), name="w2")

    def conv(inp, w, cin, name):
        pad = te.compute((1, 18, 18, cin), lambda n, h, ww, c: tvm.tirx.if_then_else(
            tvm.tirx.all(h >= 1, h < 17, ww >= 1, ww < 17), inp[n, h - 1, ww - 1, c], 0.0), name=f"{name}_pad")
        rh, rw, rc = te.reduce_axis((0, 3)), te.reduce_axis((0, 3)), te.reduce_axis((0, cin))
        return te.compute((1, 16, 16, 8), lambda n, h, ww, o: te.sum(
            pad[n, h + rh, ww + rw, rc] * w[rh, rw, rc, o], axis=[rh, rw, rc]), name=name)

    c1 = conv(x, w1, 4, "conv1")
    r1 = te.compute(c1.shape, lambda *i: tvm.te.max(c1(*i), 0.0), name="relu1")
    c2 = conv(r1, w2, 8, "conv2")
    func = te.create_prim_func([x, w1, w2, c2]).with_attr("global_symbol", "chain")
    return tvm.IRModule({"chain": func})


def test_first_conv_runs_per_patch_over_its_halo_window():
    from tvm_patch.passes.patch_tir import patch_tile

    text = patch_tile(conv_chain()["chain"]).script()
    assert "for n, h_0, ww_0 in T.grid(1, 2, 2):" in text  # the 2x2 patch loops, outermost
    assert "T.grid(1, 10, 10, 8, 3, 3, 4)" in text  # conv1 over 10x10 = 8x8 + halo, per patch
    assert "T.grid(8, 8, 8, 3, 3, 8)" in text  # conv2 over the 8x8 patch


def test_builds_through_the_registered_pipeline_for_c():
    src = tvm.tirx.build(conv_chain(), tvm.target.Target({"kind": "c"}), pipeline="patch").inspect_source()
    assert kernel_workspaces(src)["chain"] > 0


def test_same_output():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("float32") for s in [(1, 16, 16, 4), (3, 3, 4, 8), (3, 3, 8, 8)]]
    outs = []
    for pipeline in ("default", "patch"):
        lib = tvm.tirx.build(conv_chain(), "llvm", pipeline=pipeline)
        y = tvm.runtime.tensor(np.zeros((1, 16, 16, 8), "float32"))
        lib["chain"](*[tvm.runtime.tensor(a) for a in args], y)
        outs.append(y.numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
