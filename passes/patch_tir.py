"""PatchTIR: tile a fused stage PrimFunc into per-patch loops with halos and small scratch.

Input: a PrimFunc whose root block runs a chain of loop nests, each writing one feature map
(the patch stage FuseStage builds from the scheduled layer kernels, or a TE conv chain), with
attributes `patch_tiles_h` / `patch_tiles_w` (tile bounds on the output, may be unequal) or
`patch_grid` (equal tiles), and `patch_layout` ("NHWC" default, or "NCHW").

1. TVM's LowerInitBlock, PlanAndUpdateBufferAllocationLocation and ConvertBlocksToOpaque, so
   every index is written in loop variables and per-nest temporaries sit inside their nest.
2. Nests: each top-level nest writes one map (an intermediate a later nest reads, or the
   output); the loops that run over its H and W are the ones its store indexes them with.
3. Windows, last nest first: a nest computes the window of its map that its consumers need
   (the output: the tile). What it reads follows from TVM's integer-set analysis of its load
   indices with those two loops restricted, clipped to the map (padding reads are guarded).
4. Scratch: every intermediate map becomes a region of one scratch pool, sized to its largest
   window; regions are placed by the arena planner over the nests' lifetimes, so maps that
   are never live together share bytes. The pool is allocated once: maps of several dtypes
   (an int8 stage with a float32 residual path or input) index typed views of one byte pool.
5. Rewrite: patch loops `ph`, `pw` outermost; each nest's H/W loops start at the patch's
   window origin and run its extent (tables on ph/pw: tiles may be unequal); accesses to an
   intermediate map become pool accesses shifted by the window origin.
6. Streamed input (attribute `patch_stream_input`, the name of the model-input parameter):
   that map is treated like an intermediate. It gets a pool region sized to its largest
   window (all channels), live from the first nest to its last reader; its loads become pool
   loads shifted by the window origin, and each patch starts with
   `tvmp_stream_read(region, y0, x0, h, w)`, which fills the region with rows [y0, y0+h) x
   columns [x0, x0+w) of the input in the stage's layout, h*w*C elements back to back (NHWC:
   h rows of w pixels of C channels; NCHW: C planes of h rows of w; the pool's indexing uses
   the patch's own window height and width). A nonzero return stops the kernel with an
   error (an assertion, so both call conventions report it). So nothing reads the parameter
   and the full input never needs to be in memory. Batch 1 only.
7. In place (attribute `patch_inplace`, the planner's pairs: nest, source nest or -1 for the
   streamed input, shift, backwards): a nest's region starts `shift` bytes below its
   source's region (Buffer.inplace_shift), so the two share bytes, and a backwards nest's
   loops over rows, columns and channels run last value first (its reduction loops as they
   were: every sum adds in the same order, bit for bit). Each pair is checked against the
   nest's own loops over every patch (passes/patch_inplace.py): a shift they do not allow is
   refused with the one they need. Without the attribute no map shares bytes with a live one.

Anything that does not fit this shape raises PatchTIRError with the reason; callers leave
such a stage per layer and say so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.ir.expr import TensorLoad, TensorRegion, Var
from tvm.s_tir import SBlock, SBlockRealize
from tvm.sym import Analyzer, IntervalSet
from tvm.tirx import _ffi_api as _tirx_ffi
from tvm.tirx.stmt import BufferStore, For, SeqStmt

from tvm_patch_core.errors import PatchTIRError
from tvm_patch_core.graph import dtype_bytes
from tvm_patch_core.windows import tiles

from .inline_kernels import map_prim_funcs, schedule_kernel
from .patch_inplace import _walk, nest_shifts, outer_loops
from .patch_scratch import Scratch, plan_pool, pool_buffers

AXES = {"NHWC": (1, 2), "NCHW": (2, 3)}
STREAM_READ = "tvmp_stream_read"  # int32 (void* dst, int32 y0, int32 x0, int32 h, int32 w)
STREAM_FAILED = "the input provider failed"  # the runtime appends its cause (tvmp_runtime.c)
Tiles = Sequence[tuple[int, int]]  # [lo, hi) per tile along one axis of the output


@dataclass
class Nest:
    stmt: tirx.Stmt
    out: Var  # the map it writes
    loops: tuple[Var, Var]  # the loops over the map's H and W
    ranges: dict  # loop var -> (min, extent), constants
    loads: list  # TensorLoad nodes of maps (intermediates and inputs)


def _flatten(stmt: tirx.Stmt) -> list[tirx.Stmt]:
    return [s for x in stmt.seq for s in _flatten(x)] if isinstance(stmt, SeqStmt) else [stmt]


def _int(x: tirx.PrimExpr) -> int:
    if not isinstance(x, tirx.IntImm):
        raise PatchTIRError(f"expected a constant, found {x}")
    return int(x.value)


def _nest(stmt: tirx.Stmt, maps: dict, axes: tuple[int, int], index: int) -> Nest:
    fors = _walk(stmt, For)
    ranges = {f.loop_var: (_int(f.min), _int(f.extent)) for f in fors}
    stores = [s for s in _walk(stmt, BufferStore) if s.buffer in maps]
    outs = {s.buffer for s in stores}
    if len(outs) != 1:
        raise PatchTIRError(f"loop nest {index} writes {len(outs)} feature maps; a stage nest writes one")
    ana = Analyzer()
    for var, (lo, ext) in ranges.items():
        if ext == 1:
            ana.bind(var, lo)
    loops = []
    for axis in axes:
        found = {ana.simplify(s.indices[axis]) for s in stores}
        var = found.pop() if len(found) == 1 else None
        if not isinstance(var, Var) or var not in ranges:
            raise PatchTIRError(f"loop nest {index} does not write axis {axis} of its map with one loop")
        loops.append(var)
    loads = [ld for ld in _walk(stmt, TensorLoad) if ld.source in maps]
    return Nest(stmt, outs.pop(), (loops[0], loops[1]), ranges, loads)


def _windows(nests: list[Nest], maps: dict, out: Var, axis_pos: int, axis: int, tiles: Tiles) -> dict:
    """map -> per tile (lo, hi) of `axis` that the chain computes, last nest first."""
    need: dict = {out: [tuple(t) for t in tiles]}
    ana = Analyzer()
    for i in reversed(range(len(nests))):
        nest = nests[i]
        if nest.out not in need:
            raise PatchTIRError(f"loop nest {i} writes {nest.out.name}, which nothing after it reads")
        loop = nest.loops[axis_pos]
        for t, (lo, hi) in enumerate(need[nest.out]):
            dom = {v: IntervalSet(m, m + e - 1) for v, (m, e) in nest.ranges.items()}
            dom[loop] = IntervalSet(lo, hi - 1)
            for ld in nest.loads:
                s = ana.int_set(ld.indices[axis], dom)
                size = _int(maps[ld.source][axis])
                a, b = max(0, _int(s.min_value)), min(size, _int(s.max_value) + 1)
                windows = need.setdefault(ld.source, [None] * len(tiles))
                old = windows[t]
                windows[t] = (a, b) if old is None else (min(old[0], a), max(old[1], b))
    return need


def _table(var: Var, values: list[int], dtype: str) -> tirx.PrimExpr:
    """values[var] as an expression: a constant, an affine term, or a Select chain."""
    c = [tirx.const(v, dtype) for v in values]
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(steps) <= 1:
        step = steps.pop() if steps else 0
        return c[0] if step == 0 else c[0] + var * tirx.const(step, dtype)
    expr = c[-1]
    for i in reversed(range(len(values) - 1)):
        expr = tirx.Select(var == tirx.const(i, dtype), c[i], expr)
    return expr


def _stream_param(func: tirx.PrimFunc, name: str | None, maps: dict, nests: list[Nest]) -> object:
    """The parameter `name` (the model input to stream), checked: a 4-D map of batch 1 that
    the stage only reads."""
    if name is None:
        return None
    found = [p for p in func.params if p in maps and p.name == name]
    if len(found) != 1:
        raise PatchTIRError(f"patch_stream_input {name!r}: the stage has no 4-D input parameter of that name")
    param = found[0]
    if _int(maps[param][0]) != 1:
        raise PatchTIRError(f"cannot stream an input of batch {_int(maps[param][0])}: streaming reads batch 1")
    if any(n.out.same_as(param) for n in nests):
        raise PatchTIRError("cannot stream an input that the stage writes")
    if not any(ld.source.same_as(param) for n in nests for ld in n.loads):
        raise PatchTIRError(f"cannot stream input {name!r}: no loop nest of the stage reads it")
    return param


def patch_tile(
    func: tirx.PrimFunc,
    tiles_h: Tiles,
    tiles_w: Tiles,
    layout: str = "NHWC",
    stream_input: str | None = None,
    inplace: Sequence[tuple[int, int, int, int]] = (),
) -> tirx.PrimFunc:
    """`func` computed patch by patch over the output tiles (see the module docstring);
    `stream_input` names the input parameter whose windows come from tvmp_stream_read;
    `inplace`: (nest, source nest or -1 for the streamed input, shift bytes, backwards) pairs
    (step 7)."""
    if layout not in AXES:
        raise PatchTIRError(f"patch_layout {layout!r}: use NHWC or NCHW")
    axes = AXES[layout]
    mod = tvm.transform.Sequential(
        [
            s_tir.transform.LowerInitBlock(),
            s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
            s_tir.transform.ConvertBlocksToOpaque(),
        ]
    )(tvm.IRModule({"main": func}))
    func = mod["main"]
    realize = func.body
    if not isinstance(realize, SBlockRealize):
        raise PatchTIRError("the PrimFunc has no root block")
    root = realize.block
    allocs = list(root.alloc_buffers)
    maps = {
        b: tuple(b.shape)
        for b in list(func.params) + allocs
        if hasattr(b, "shape") and b.shape is not None and len(b.shape) == 4
    }
    stmts = _flatten(root.body)
    nests = [_nest(s, maps, axes, i) for i, s in enumerate(stmts)]
    streamed = _stream_param(func, stream_input, maps, nests)
    outs = [p for p in func.params if any(n.out.same_as(p) for n in nests)]
    if len(outs) != 1:
        raise PatchTIRError(f"the stage writes {len(outs)} outputs; it must write one")
    out = outs[0]
    for t, name, axis in ((tiles_h, "rows", axes[0]), (tiles_w, "columns", axes[1])):
        bounds = [tuple(x) for x in t]
        if (
            bounds[0][0] != 0
            or bounds[-1][1] != _int(maps[out][axis])
            or any(a[1] != b[0] for a, b in itertools.pairwise(bounds))
        ):
            raise PatchTIRError(f"tiles {bounds} do not cover the output's {_int(maps[out][axis])} {name}")
    rows = _windows(nests, maps, out, 0, axes[0], tiles_h)
    cols = _windows(nests, maps, out, 1, axes[1], tiles_w)
    scratch_maps = [b for b in allocs if b in maps and b in rows] + ([streamed] if streamed is not None else [])
    dtypes = sorted({str(b.dtype) for b in scratch_maps})
    idx_dtype = str(nests[-1].loops[0].ty.dtype)
    ph, pw = Var("ph", idx_dtype), Var("pw", idx_dtype)
    pairs = _pairs(inplace, nests, scratch_maps, streamed)
    where, pool_bytes = plan_pool(nests, scratch_maps, maps, rows, cols, axes, streamed, pairs)
    pools, views = pool_buffers(dtypes, pool_bytes)
    placed = {}
    for m, (offset, shape) in where.items():
        lo = (tuple(a for a, _ in rows[m]), tuple(a for a, _ in cols[m]))
        elems = offset // dtype_bytes(str(m.dtype))  # offsets are 16-byte aligned: whole elements
        placed[m] = (views[str(m.dtype)], Scratch(elems, shape, lo))

    def c(v: int) -> tirx.PrimExpr:
        return tirx.const(v, idx_dtype)

    def flat(m: Var, indices: Sequence[tirx.PrimExpr]) -> tirx.PrimExpr:
        _pool, s = placed[m]
        idx = list(indices)
        idx[axes[0]] = idx[axes[0]] - _table(ph, list(s.lo[0]), idx_dtype)
        idx[axes[1]] = idx[axes[1]] - _table(pw, list(s.lo[1]), idx_dtype)
        if streamed is not None and m.same_as(streamed):  # batch 1, packed at this window's own size
            height = _table(ph, [b - a for a, b in rows[m]], idx_dtype)
            width = _table(pw, [b - a for a, b in cols[m]], idx_dtype)
            if layout == "NHWC":
                return c(s.offset) + (idx[1] * width + idx[2]) * c(s.shape[3]) + idx[3]
            return c(s.offset) + (idx[1] * height + idx[2]) * width + idx[3]
        linear = c(s.offset)
        stride = 1
        for d in reversed(range(len(idx))):
            linear = linear + idx[d] * c(stride)
            stride *= s.shape[d]
        return linear

    def window_flat(m: Var) -> Callable:  # map indices per axis, tile -> element offsets in m's region
        s = placed[m][1]

        def lay(idx: list, ti: int, tj: int) -> object:
            idx = list(idx)
            idx[axes[0]] = idx[axes[0]] - s.lo[0][ti]
            idx[axes[1]] = idx[axes[1]] - s.lo[1][tj]
            if streamed is not None and m.same_as(streamed):
                h, w = (rows[m][ti][1] - rows[m][ti][0]), (cols[m][tj][1] - cols[m][tj][0])
                if layout == "NHWC":
                    return (idx[1] * w + idx[2]) * s.shape[3] + idx[3]
                return (idx[1] * h + idx[2]) * w + idx[3]
            linear = 0
            for d in range(len(idx)):
                linear = linear * s.shape[d] + idx[d]
            return linear

        return lay

    def nbytes(m: Var) -> int:
        return int(np.prod(placed[m][1].shape)) * dtype_bytes(str(m.dtype))

    backwards = set()
    for (k, _j, shift, reverse), (out_i, (src_i, _)) in zip(inplace, pairs.items(), strict=True):
        nest, out_m, src_m = nests[k], scratch_maps[out_i], scratch_maps[src_i]
        spans = {
            nest.loops[0]: lambda t, m=out_m: (rows[m][t[0]][0], rows[m][t[0]][1] - rows[m][t[0]][0]),
            nest.loops[1]: lambda t, m=out_m: (cols[m][t[1]][0], cols[m][t[1]][1] - cols[m][t[1]][0]),
        }
        flats, sizes = (window_flat(out_m), window_flat(src_m)), (nbytes(out_m), nbytes(src_m))
        tiles_hw = list(itertools.product(range(len(tiles_h)), range(len(tiles_w))))
        forward, back = nest_shifts(nest, out_m, src_m, flats, spans, tiles_hw, sizes)  # over every patch
        if (shift > back) if reverse else (shift < forward):
            need = f"at most {back}" if reverse else f"at least {forward}"
            raise PatchTIRError(
                f"in place: loop nest {k} needs its map {need} B below its source (over every patch), "
                f"the plan gives {shift} B"
            )
        if reverse:
            backwards |= {f.loop_var for f in outer_loops(nest, out_m)}

    def region(m: Var) -> list:
        _pool, s = placed[m]
        n = 1
        for d in s.shape:
            n *= d
        return [tvm.ir.Range.from_min_extent(c(s.offset), c(n))]

    def on_load(ld: TensorLoad) -> tirx.PrimExpr:
        if ld.source not in placed:
            return ld
        return tirx.BufferLoad(placed[ld.source][0], [flat(ld.source, ld.indices)])

    def on_store(st: BufferStore) -> BufferStore:
        if st.buffer not in placed:
            return st
        return BufferStore(placed[st.buffer][0], st.value, [flat(st.buffer, st.indices)])

    def on_region(r: TensorRegion) -> TensorRegion:
        if r.source not in placed:
            return r
        return tirx.BufferRegion(placed[r.source][0], region(r.source))

    tiled = []
    for _i, nest in enumerate(nests):
        lo_h = [a for a, _ in rows[nest.out]]
        lo_w = [a for a, _ in cols[nest.out]]
        ext_h = [b - a for a, b in rows[nest.out]]
        ext_w = [b - a for a, b in cols[nest.out]]
        bounds = {
            nest.loops[0]: (_table(ph, lo_h, idx_dtype), _table(ph, ext_h, idx_dtype)),
            nest.loops[1]: (_table(pw, lo_w, idx_dtype), _table(pw, ext_w, idx_dtype)),
        }

        def on_for(f: For, bounds: dict = bounds) -> For:
            lo, ext = bounds.get(f.loop_var, (f.min, f.extent))
            body = f.body
            if f.loop_var in backwards:  # the same range, last value first
                back = lo + lo + ext - tirx.const(1, str(f.loop_var.ty.dtype)) - f.loop_var
                body = tvm_ffi.structural_map(body, [(Var, lambda v, x=f.loop_var, e=back: e if v.same_as(x) else v)])
            elif f.loop_var not in bounds:
                return f
            return For(f.loop_var, lo, ext, f.kind, body, f.thread_binding, f.annotations)

        tiled.append(
            tvm_ffi.structural_map(
                nest.stmt, [(TensorLoad, on_load), (BufferStore, on_store), (TensorRegion, on_region), (For, on_for)]
            )
        )
    if streamed is not None:  # each patch first reads its input window
        _, s = placed[streamed]
        y0 = _table(ph, [a for a, _ in rows[streamed]], idx_dtype)
        x0 = _table(pw, [a for a, _ in cols[streamed]], idx_dtype)
        h = _table(ph, [b - a for a, b in rows[streamed]], idx_dtype)
        w = _table(pw, [b - a for a, b in cols[streamed]], idx_dtype)
        nbytes = s.shape[1] * s.shape[2] * s.shape[3] * dtype_bytes(str(streamed.dtype))
        unit = dtype_bytes(str(pools[0].dtype))  # the allocation's own elements (bytes when it has views)
        dst = pools[0].access_ptr("w", offset=c(where[streamed][0] // unit), extent=c(nbytes // unit))
        i32 = [tirx.Cast("int32", v) if str(v.ty.dtype) != "int32" else v for v in (y0, x0, h, w)]  # the C ABI's
        read = tirx.call_extern("int32", STREAM_READ, dst, *i32)  # int32 (int64 loops shift args on 32-bit cores)
        tiled.insert(0, _assert(read == tirx.const(0, "int32"), "RuntimeError", STREAM_FAILED))
    nh, nw = len(tiles_h), len(tiles_w)
    body = For(
        ph,
        c(0),
        c(nh),
        tirx.ForKind.SERIAL,
        For(pw, c(0), c(nw), tirx.ForKind.SERIAL, SeqStmt(tiled) if len(tiled) > 1 else tiled[0]),
    )
    kept = [b for b in allocs if b not in placed]
    if len(views) > 1:  # the byte pool, then the dtypes' views of it, before the patch loops
        decls = [tirx.DeclBuffer(v, data=pools[0].data) for v in views.values()]
        body, pools = SeqStmt([*(tirx.AllocBuffer(p) for p in pools), *decls, body]), []
    new_root = SBlock([], [], [], root.name_hint, body, None, pools + kept, list(root.match_buffers), root.annotations)
    streamed_attr = {"patch_input_streamed": True} if streamed is not None else {}
    return func.with_body(SBlockRealize([], True, new_root)).with_attrs(
        {
            **streamed_attr,
            "patch_tiled": True,
            "patch_scratch_bytes": pool_bytes,
            # per nest, per row (column) tile: the [lo, hi) of its map it computes
            "patch_rows": [[list(w) for w in rows[n.out]] for n in nests],
            "patch_cols": [[list(w) for w in cols[n.out]] for n in nests],
        }
    )


def _pairs(inplace: Sequence, nests: list[Nest], scratch_maps: list, streamed: object) -> dict:
    """scratch position -> (source scratch position, shift) for the planner's pairs."""
    pairs = {}

    def position(m: object) -> int:
        found = [i for i, x in enumerate(scratch_maps) if x.same_as(m)]
        if not found:
            raise PatchTIRError(f"in place: {m.name} has no region in the pool")
        return found[0]

    for k, j, shift, _reverse in inplace:
        if not 0 <= k < len(nests) or not -1 <= j < len(nests) or (j < 0 and streamed is None):
            raise PatchTIRError(f"in place: no pair ({k}, {j}) in a stage of {len(nests)} loop nests")
        src = streamed if j < 0 else nests[j].out
        pairs[position(nests[k].out)] = (position(src), int(shift))
    return pairs


def _assert(condition: tirx.PrimExpr, kind: str, message: str) -> tirx.Stmt:
    """AssertStmt(kind, condition, [message]). Built through the FFI constructor, whose order
    is (condition, kind, parts): apache-tvm 0.27's Python AssertStmt.__init__ passes its
    arguments as (kind, condition, parts) and is refused."""
    return _tirx_ffi.AssertStmt(condition, tvm.ir.StringImm(kind), [tvm.ir.StringImm(message)], None)


def _tiles(func: tirx.PrimFunc, axis: int, n: int) -> list[tuple[int, int]]:
    size = _int(func.params[-1].shape[axis])
    return tiles(size, n)


def patch_tile_from_attrs(func: tirx.PrimFunc) -> tirx.PrimFunc:
    attrs = func.attrs or {}
    if "patch_tiled" in attrs:
        return func
    layout = str(attrs["patch_layout"]) if "patch_layout" in attrs else "NHWC"
    axes = AXES.get(layout, (1, 2))
    if "patch_tiles_h" in attrs:
        tiles_h = [tuple(int(x) for x in t) for t in attrs["patch_tiles_h"]]
        tiles_w = [tuple(int(x) for x in t) for t in attrs["patch_tiles_w"]]
    else:
        grid = tuple(int(g) for g in attrs["patch_grid"]) if "patch_grid" in attrs else (2, 2)
        tiles_h, tiles_w = _tiles(func, axes[0], grid[0]), _tiles(func, axes[1], grid[1])
    stream = str(attrs["patch_stream_input"]) if "patch_stream_input" in attrs else None
    pairs = [tuple(int(x) for x in p) for p in attrs["patch_inplace"]] if "patch_inplace" in attrs else []
    return patch_tile(func, tiles_h, tiles_w, layout, stream, pairs)


@tvm.transform.module_pass(opt_level=0, name="PatchTIR")
class PatchTIR:
    """Tile every PrimFunc that carries patch attributes (or, with `all_funcs`, every one:
    the standalone `pipeline="patch"`, where a PrimFunc without attributes gets 2x2 tiles
    after its injective stages are inlined)."""

    def __init__(self, all_funcs: bool = False) -> None:
        self.all_funcs = all_funcs

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        def tile(_gv: tvm.ir.GlobalVar, func: tirx.PrimFunc) -> tirx.PrimFunc:
            attrs = func.attrs or {}
            if "patch_tiles_h" in attrs or "patch_grid" in attrs or "patch_tiled" in attrs:
                return patch_tile_from_attrs(func)
            return patch_tile_from_attrs(schedule_kernel(func)) if self.all_funcs else func

        return map_prim_funcs(mod, tile)
