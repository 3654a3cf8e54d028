"""PatchTIR and the TIR pipeline "patch": `tvm.build(prim_mod, target, pipeline="patch")`.

Before/Expected on the smallest stage (FuseStage's output: add then mul, 2 row tiles): each
patch computes its rows of `add` into a scratch pool of one patch (16 floats, not the 32 of
the full map), then its rows of `mul`. A function without patch attributes is left as it is;
one with two outputs is refused with the reason.

On a real conv chain (pad -> conv3x3 -> relu -> pad -> conv3x3, 2x2 patches): the first conv
runs only over its patch's 9x9 window (the halo, one pixel on the inner side only: the border
is padding), into a 9x9 scratch region instead of the 16x16 map; the output is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import te
from tvm.script import ir as I
from tvm.script import tirx as T

import tvm_patch  # noqa: F401  (registers the "patch" TIR pipeline)
from tvm_patch.passes.inline_kernels import schedule_kernel
from tvm_patch.passes.patch_tir import PatchTIR, patch_tile
from tvm_patch.targets.workspace import workspaces
from tvm_patch_core.errors import PatchTIRError


@I.ir_module
class Before:
    @T.prim_func(s_tir=True)
    def patch_stage(x: T.Buffer((1, 4, 4, 2), "float32"), mul: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"patch_layout": "NHWC", "patch_tiles_h": [[0, 2], [2, 4]], "patch_tiles_w": [[0, 4]],
                     "tirx.noalias": True})  # fmt: skip
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


@I.ir_module
class Expected:
    @T.prim_func(s_tir=True)
    def patch_stage(x: T.Buffer((1, 4, 4, 2), "float32"), mul: T.Buffer((1, 4, 4, 2), "float32")):
        T.func_attr({"patch_cols": [[[0, 4]], [[0, 4]]], "patch_layout": "NHWC",
                     "patch_rows": [[[0, 2], [2, 4]], [[0, 2], [2, 4]]], "patch_scratch_bytes": 64,
                     "patch_tiled": True, "patch_tiles_h": [[0, 2], [2, 4]], "patch_tiles_w": [[0, 4]],
                     "tirx.noalias": True})  # fmt: skip
        patch_scratch_float32 = T.sblock_alloc_buffer((16,))
        for ph, _pw in T.grid(2, 1):
            for i0 in range(1):
                for i1 in range(ph * 2, ph * 2 + 2):
                    for i2, i3 in T.grid(4, 2):
                        with T.sblock("add"):
                            T.reads(x[i0, i1, i2, i3])
                            T.writes(patch_scratch_float32[0:16])
                            patch_scratch_float32[i3 + i2 * 2 + (i1 - ph * 2) * 8 + i0 * 16] = x[
                                i0, i1, i2, i3
                            ] + T.float32(1.0)
            for i0 in range(1):
                for i1 in range(ph * 2, ph * 2 + 2):
                    for i2, i3 in T.grid(4, 2):
                        with T.sblock("mul"):
                            T.reads(patch_scratch_float32[0:16])
                            T.writes(mul[i0, i1, i2, i3])
                            mul[i0, i1, i2, i3] = patch_scratch_float32[
                                i3 + i2 * 2 + (i1 - ph * 2) * 8 + i0 * 16
                            ] * T.float32(2.0)


def test_stage_is_tiled_into_patches_over_one_scratch_pool():
    tvm.ir.assert_structural_equal(PatchTIR()(Before), Expected)


def test_a_function_without_patch_attributes_is_left_as_it_is():
    plain = tvm.IRModule({"f": Before["patch_stage"].without_attr("patch_tiles_h").without_attr("patch_tiles_w")})
    tvm.ir.assert_structural_equal(PatchTIR()(plain), plain)


def test_an_already_tiled_function_is_left_as_it_is():
    tvm.ir.assert_structural_equal(PatchTIR()(Expected), Expected)


def conv_chain(layout: str = "NHWC") -> tvm.IRModule:
    """pad -> conv3x3 (4 -> 8) -> relu -> pad -> conv3x3 (8 -> 8) on 16x16, float32; NHWC with
    HWIO weights, or NCHW with OIHW weights."""
    nchw = layout == "NCHW"

    def at(n, h, w, c):  # NHWC-ordered indices (or extents) in the layout's order
        return (n, c, h, w) if nchw else (n, h, w, c)

    def weight(kh, kw, ci, co):
        return (co, ci, kh, kw) if nchw else (kh, kw, ci, co)

    x = te.placeholder(at(1, 16, 16, 4), name="x")
    w1 = te.placeholder(weight(3, 3, 4, 8), name="w1")
    w2 = te.placeholder(weight(3, 3, 8, 8), name="w2")

    def named(f):  # f over (n, h, w, c) as a compute body with the layout's loop names
        return (lambda n, c, h, ww: f(n, h, ww, c)) if nchw else (lambda n, h, ww, c: f(n, h, ww, c))

    def conv(inp, w, cin, name):
        def padded(n, h, ww, c):
            inside = tvm.tirx.all(h >= 1, h < 17, ww >= 1, ww < 17)
            return tvm.tirx.if_then_else(inside, inp[at(n, h - 1, ww - 1, c)], 0.0)

        pad = te.compute(at(1, 18, 18, cin), named(padded), name=f"{name}_pad")
        rh, rw, rc = te.reduce_axis((0, 3)), te.reduce_axis((0, 3)), te.reduce_axis((0, cin))

        def out(n, h, ww, o):
            return te.sum(pad[at(n, h + rh, ww + rw, rc)] * w[weight(rh, rw, rc, o)], axis=[rh, rw, rc])

        return te.compute(at(1, 16, 16, 8), named(out), name=name)

    c1 = conv(x, w1, 4, "conv1")
    r1 = te.compute(c1.shape, lambda *i: tvm.te.max(c1(*i), 0.0), name="relu1")
    c2 = conv(r1, w2, 8, "conv2")
    func = te.create_prim_func([x, w1, w2, c2]).with_attr("global_symbol", "chain")
    return tvm.IRModule({"chain": func})


def test_first_conv_runs_per_patch_over_its_halo_window():
    func = PatchTIR(all_funcs=True)(conv_chain())["chain"]
    text = func.script()
    assert "for ph, pw in T.grid(2, 2):" in text  # the 2x2 patch loops, outermost
    assert "for h in range(ph * 7, ph * 7 + 9):" in text  # conv1: rows 0..8 or 7..15 (8 + halo)
    assert "for h in range(ph * 8, ph * 8 + 8):" in text  # conv2: the patch's 8 rows
    assert [list(map(list, t)) for t in func.attrs["patch_rows"]] == [[[0, 9], [7, 16]], [[0, 8], [8, 16]]]
    assert int(func.attrs["patch_scratch_bytes"]) == 9 * 9 * 8 * 4  # not 16 * 16 * 8 * 4


def test_the_scratch_pool_is_the_workspace_allocated_once():
    tiled = PatchTIR(all_funcs=True)(conv_chain())
    assert workspaces(tiled)["chain"] == 9 * 9 * 8 * 4


def test_unequal_tiles_compute_the_same():
    func = patch_tile(schedule_kernel(conv_chain()["chain"]), [(0, 5), (5, 9), (9, 16)], [(0, 16)])
    rows = [list(map(list, t)) for t in func.attrs["patch_rows"]]
    assert rows == [[[0, 6], [4, 10], [8, 16]], [[0, 5], [5, 9], [9, 16]]]
    assert "T.Select(ph == 0, 0, T.Select(ph == 1, 5, 9))" in func.script()  # conv2: tile origins per row tile
    np.testing.assert_allclose(run(tvm.IRModule({"chain": func})), run(conv_chain(), "default"), rtol=1e-5, atol=1e-5)


def run(mod: tvm.IRModule, pipeline: str = "default", layout: str = "NHWC") -> np.ndarray:
    rng = np.random.default_rng(0)
    shapes = [(1, 16, 16, 4), (3, 3, 4, 8), (3, 3, 8, 8)]
    if layout == "NCHW":
        shapes = [(1, 4, 16, 16), (8, 4, 3, 3), (8, 8, 3, 3)]
    args = [rng.standard_normal(s).astype("float32") for s in shapes]
    lib = tvm.tirx.build(mod, "llvm", pipeline=pipeline)
    y = tvm.runtime.tensor(np.zeros((1, 16, 16, 8) if layout == "NHWC" else (1, 8, 16, 16), "float32"))
    lib["chain"](*[tvm.runtime.tensor(a) for a in args], y)
    return y.numpy()


def test_same_output():
    np.testing.assert_allclose(run(conv_chain(), "patch"), run(conv_chain()), rtol=1e-5, atol=1e-5)


@I.ir_module
class TwoOutputs:
    """Two maps written to two outputs: a stage has exactly one output."""

    @T.prim_func(s_tir=True)
    def f(x: T.Buffer((1, 8, 8, 4), "float32"), a: T.Buffer((1, 8, 8, 4), "float32"),
          b: T.Buffer((1, 8, 8, 4), "float32")):  # fmt: skip
        T.func_attr({"patch_tiles_h": [[0, 4], [4, 8]], "patch_tiles_w": [[0, 8]], "tirx.noalias": True})
        for i0, i1, i2, i3 in T.grid(1, 8, 8, 4):
            with T.sblock("a"):
                v0, v1, v2, v3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                a[v0, v1, v2, v3] = x[v0, v1, v2, v3] + T.float32(1.0)
        for i0, i1, i2, i3 in T.grid(1, 8, 8, 4):
            with T.sblock("b"):
                v0, v1, v2, v3 = T.axis.remap("SSSS", [i0, i1, i2, i3])
                b[v0, v1, v2, v3] = x[v0, v1, v2, v3] * T.float32(2.0)


def test_refuses_what_it_cannot_tile_with_the_reason():
    with pytest.raises(PatchTIRError, match="writes 2 outputs"):
        PatchTIR()(TwoOutputs)


def streamed_chain() -> tvm.IRModule:
    mod = conv_chain()
    return tvm.IRModule({"chain": mod["chain"].with_attr("patch_stream_input", "x")})


def test_streamed_input_is_read_once_per_patch_into_the_pool():
    """patch_stream_input: the input map is a pool region of its largest window (10x10x4
    floats next to conv1's 9x9x8), filled at the start of each patch by tvmp_stream_read
    (y0, x0, h, w of the patch's input window), whose return code is asserted; nothing loads
    from the parameter x."""
    func = PatchTIR(all_funcs=True)(streamed_chain())["chain"]
    text = func.script()
    assert "for ph, pw in T.grid(2, 2):" in text
    body = text.split("for ph, pw in T.grid(2, 2):", 1)[1]
    first = body.strip().splitlines()[0]
    assert first.startswith("assert T.call_extern(") and '"tvmp_stream_read"' in first
    assert "ph * 6, pw * 6, 10, 10) == 0" in first
    assert text.count('"tvmp_stream_read"') == 1  # one call, inside the patch loops: once per patch
    assert "x[" not in body  # no load (nor region) of the input parameter
    assert bool(func.attrs["patch_input_streamed"])
    assert int(func.attrs["patch_scratch_bytes"]) == (9 * 9 * 8 + 10 * 10 * 4) * 4


def with_reads_as_copies(func: tvm.tirx.PrimFunc, layout: str, channels: int) -> tvm.tirx.PrimFunc:
    """`func` with each checked tvmp_stream_read replaced by the copy it stands for: the
    window's h x w pixels of x, packed at the window's own size in the stage's layout."""
    pool = func.body.block.alloc_buffers[0]
    x = func.params[0]

    def copy(stmt):
        call = stmt.condition.a
        if not (isinstance(call, tvm.ir.expr.Call) and "tvmp_stream_read" in str(call.args[0])):
            return stmt
        ptr, y0, x0, h, w = call.args[1:]
        offset = ptr.args[2]
        r, q, ch = (tvm.tirx.Var(n, "int32") for n in ("r", "q", "ch"))
        if layout == "NHWC":
            src, dst = [0, y0 + r, x0 + q, ch], offset + (r * w + q) * channels + ch
        else:
            src, dst = [0, ch, y0 + r, x0 + q], offset + (ch * h + r) * w + q
        loops = tvm.tirx.stmt.BufferStore(pool, tvm.tirx.BufferLoad(x, src), [dst])
        for var, extent in ((q, w), (r, h), (ch, channels)) if layout == "NCHW" else ((ch, channels), (q, w), (r, h)):
            loops = tvm.tirx.stmt.For(var, 0, extent, tvm.tirx.ForKind.SERIAL, loops)
        return loops

    return func.with_body(tvm_ffi.structural_map(func.body, [(tvm.tirx.AssertStmt, copy)]))


def test_streamed_input_computes_the_same():
    """The stream reads replaced by the copies they stand for (rows of the window's width,
    NHWC), built with LLVM: the same output as the function computed whole."""
    func = PatchTIR(all_funcs=True)(streamed_chain())["chain"]
    mod = tvm.IRModule({"chain": with_reads_as_copies(func, "NHWC", 4)})
    np.testing.assert_allclose(run(mod), run(conv_chain()), rtol=1e-5, atol=1e-5)


def test_streamed_nchw_input_computes_the_same():
    """An NCHW stage streams too: its windows arrive as C planes of h rows of w (3 unequal row
    tiles, so the window height changes from patch to patch)."""
    func = patch_tile(schedule_kernel(conv_chain("NCHW")["chain"]), [(0, 5), (5, 9), (9, 16)], [(0, 16)], "NCHW", "x")
    assert int(func.attrs["patch_scratch_bytes"]) == (8 * 16 * 8 + 9 * 16 * 4) * 4  # conv1: 8 rows at most, x: 9
    copied = tvm.IRModule({"chain": with_reads_as_copies(func, "NCHW", 4)})
    np.testing.assert_allclose(run(copied, layout="NCHW"), run(conv_chain("NCHW"), layout="NCHW"), rtol=1e-5, atol=1e-5)


def mixed_chain() -> tvm.IRModule:
    """float32 x -> conv1 (float32) -> int8 -> conv2 (int32) -> int8 -> conv3 (int32): maps of
    two dtypes inside one stage, as an int8 ONNX QDQ model with a float32 path has."""
    x = te.placeholder((1, 16, 16, 4), name="x")
    ws = [te.placeholder((3, 3, 4, 8), name="w1")] + [
        te.placeholder((3, 3, 8, 8), "int8", name=f"w{i}") for i in (2, 3)
    ]

    def conv(inp, w, cin, name, acc):
        pad = te.compute(
            (1, 18, 18, cin),
            lambda n, h, ww, c: tvm.tirx.if_then_else(
                tvm.tirx.all(h >= 1, h < 17, ww >= 1, ww < 17), inp[n, h - 1, ww - 1, c], tvm.tirx.const(0, inp.dtype)
            ),
            name=f"{name}_pad",
        )
        rh, rw, rc = te.reduce_axis((0, 3)), te.reduce_axis((0, 3)), te.reduce_axis((0, cin))
        return te.compute(
            (1, 16, 16, 8),
            lambda n, h, ww, o: te.sum(
                pad[n, h + rh, ww + rw, rc].astype(acc) * w[rh, rw, rc, o].astype(acc), axis=[rh, rw, rc]
            ),
            name=name,
        )

    c1 = conv(x, ws[0], 4, "conv1", "float32")
    q1 = te.compute(c1.shape, lambda *i: te.max(te.min(c1(*i), 127.0), -128.0).astype("int8"), name="q1")
    c2 = conv(q1, ws[1], 8, "conv2", "int32")
    q2 = te.compute(c2.shape, lambda *i: te.max(te.min(c2(*i) // 64, 127), -128).astype("int8"), name="q2")
    c3 = conv(q2, ws[2], 8, "conv3", "int32")
    return tvm.IRModule({"chain": te.create_prim_func([x, *ws, c3]).with_attr("global_symbol", "chain")})


def test_maps_of_two_dtypes_share_one_byte_pool():
    """conv1's float32 window and conv2's int32 window are typed views of one uint8 pool (one
    allocation, laid out in bytes), and the tiled function computes what the whole one does."""
    func = patch_tile(schedule_kernel(mixed_chain()["chain"]), [(0, 8), (8, 16)], [(0, 8), (8, 16)])
    text = func.script()
    assert 'patch_scratch = T.alloc_buffer((5792,), "uint8")' in text  # 10x10x8 floats + 9x9x8 int32s
    assert 'patch_scratch_float32 = patch_scratch.view("float32")' in text
    assert 'patch_scratch_int32 = patch_scratch.view("int32")' in text
    assert int(func.attrs["patch_scratch_bytes"]) == 5792
    rng = np.random.default_rng(0)
    args = [
        rng.standard_normal((1, 16, 16, 4)).astype("float32") * 4,
        rng.standard_normal((3, 3, 4, 8)).astype("float32"),
    ]
    args += [rng.integers(-5, 5, (3, 3, 8, 8)).astype("int8") for _ in range(2)]
    outs = []
    for mod in (tvm.IRModule({"chain": func}), mixed_chain()):
        y = tvm.runtime.tensor(np.zeros((1, 16, 16, 8), "int32"))
        tvm.tirx.build(mod, "llvm")["chain"](*[tvm.runtime.tensor(a) for a in args], y)
        outs.append(y.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
