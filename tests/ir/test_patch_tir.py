"""PatchTIR and the TIR pipeline "patch": `tvm.build(prim_mod, target, pipeline="patch")`.

Before: a TE chain pad -> conv3x3 -> relu -> pad -> conv3x3 in one PrimFunc, each stage over
the whole 16x16 map. After (2x2 patches): the output is computed per 8x8 patch and the first
conv only over that patch's 9x9 window (its halo: one pixel, on the inner side only, since
the border is padding), into a 9x9 scratch region instead of the full 16x16 map; the output
is the same.
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
    from tvm_patch.passes.patch_tir import PatchTIR

    func = PatchTIR(all_funcs=True)(conv_chain())["chain"]
    text = func.script()
    assert "for ph, pw in T.grid(2, 2):" in text  # the 2x2 patch loops, outermost
    assert "for h in range(ph * 7, ph * 7 + 9):" in text  # conv1: rows 0..8 or 7..15 (8 + halo)
    assert "for h in range(ph * 8, ph * 8 + 8):" in text  # conv2: the patch's 8 rows
    assert [list(map(list, t)) for t in func.attrs["patch_rows"]] == [[[0, 9], [7, 16]], [[0, 8], [8, 16]]]
    assert int(func.attrs["patch_scratch_bytes"]) == 9 * 9 * 8 * 4  # not 16 * 16 * 8 * 4


def test_builds_through_the_registered_pipeline_for_c():
    src = tvm.tirx.build(conv_chain(), tvm.target.Target({"kind": "c"}), pipeline="patch").inspect_source()
    assert kernel_workspaces(src)["chain"] == 9 * 9 * 8 * 4  # the scratch pool, allocated once


def test_unequal_tiles_compute_the_same():
    from tvm_patch.passes.inline_kernels import schedule_kernel
    from tvm_patch.passes.patch_tir import patch_tile

    func = patch_tile(schedule_kernel(conv_chain()["chain"]), [(0, 5), (5, 9), (9, 16)], [(0, 16)])
    rows = [list(map(list, t)) for t in func.attrs["patch_rows"]]
    assert rows == [[[0, 6], [4, 10], [8, 16]], [[0, 5], [5, 9], [9, 16]]]
    assert "T.Select(ph == 0, 0, T.Select(ph == 1, 5, 9))" in func.script()  # conv2: tile origins per row tile
    np.testing.assert_allclose(run(tvm.IRModule({"chain": func})), run(conv_chain(), "default"), rtol=1e-5, atol=1e-5)


def run(mod: tvm.IRModule, pipeline: str = "default") -> np.ndarray:
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("float32") for s in [(1, 16, 16, 4), (3, 3, 4, 8), (3, 3, 8, 8)]]
    lib = tvm.tirx.build(mod, "llvm", pipeline=pipeline)
    y = tvm.runtime.tensor(np.zeros((1, 16, 16, 8), "float32"))
    lib["chain"](*[tvm.runtime.tensor(a) for a in args], y)
    return y.numpy()


def test_same_output():
    np.testing.assert_allclose(run(conv_chain(), "patch"), run(conv_chain()), rtol=1e-5, atol=1e-5)


def test_refuses_what_it_cannot_tile_with_the_reason():
    import pytest
    from tvm_patch.passes.patch_tir import PatchTIRError, patch_tile

    x = te.placeholder((1, 8, 8, 4), name="x")
    a = te.compute(x.shape, lambda *i: x(*i) + 1.0, name="a")
    b = te.compute(x.shape, lambda *i: x(*i) * 2.0, name="b")
    func = te.create_prim_func([x, a, b])
    with pytest.raises(PatchTIRError, match="writes 2 outputs"):
        patch_tile(func, [(0, 4), (4, 8)], [(0, 8)])


def test_a_refusal_inside_the_pass_keeps_its_type():
    """Run as a pass (through TVM's FFI, as build_patch_stage does), a refusal must still be a
    PatchTIRError, which compile_model turns into a per-layer build with the reason; it came
    out as a RuntimeError, a crash (fuzzer seed 27: a stage map one pixel wide)."""
    import pytest
    from tvm_patch.passes.patch_tir import PatchTIR, PatchTIRError

    x = te.placeholder((1, 8, 8, 4), name="x")
    a = te.compute(x.shape, lambda *i: x(*i) + 1.0, name="a")
    b = te.compute(x.shape, lambda *i: x(*i) * 2.0, name="b")
    func = te.create_prim_func([x, a, b]).with_attr("patch_grid", [2, 1])
    with pytest.raises(PatchTIRError, match="writes 2 outputs"):
        PatchTIR()(tvm.IRModule({"f": func}))
