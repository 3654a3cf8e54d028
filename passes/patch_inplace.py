"""The check behind PatchTIR's in-place pairs: a nest may write its map `shift` bytes below
the region of a map it reads only if, in the order its loops really run, no write lands on a
byte that the same or a later iteration still reads (tvm_patch_core.stage_inplace.min_shift).

The planner proposes each pair and its shift from the layers' geometry; this recomputes the
shift from the nest itself, per patch: the loops around the store, in their nesting order,
over the patch's window; the store's index and every load of the source, affine in the loop
variables (reduction loops at their lowest), clipped to the map (padding guards never read
below row or column 0) and laid out as the pool lays the two regions out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm_ffi
from tvm import tirx
from tvm.ir.expr import TensorLoad, Var
from tvm.sym import Analyzer
from tvm.tirx.stmt import BufferStore, For

from tvm_patch_core.errors import PatchTIRError
from tvm_patch_core.graph import dtype_bytes
from tvm_patch_core.stage_inplace import shifts

Flat = Callable[[list[np.ndarray], int, int], np.ndarray]  # window indices per axis, tile -> element offsets


def _walk(node: object, kind: type) -> list:
    found: list = []
    tvm_ffi.structural_walk(node, [(kind, found.append)])
    return found


def _affine(expr: tirx.PrimExpr, names: list[Var]) -> tuple[int, dict]:
    """(constant, var -> coefficient) of an index affine in `names`, checked at one more point."""
    ana = Analyzer()

    def at(values: dict) -> int:
        consts = {k: tirx.const(x, k.ty.dtype) for k, x in values.items()}
        v = ana.simplify(tvm_ffi.structural_map(expr, [(Var, lambda var: consts.get(var, var))]))
        if not isinstance(v, tirx.IntImm):
            raise PatchTIRError(f"in-place check: index {expr} is not affine in the nest's loops")
        return int(v.value)

    zero = {v: 0 for v in names}
    c0 = at(zero)
    coef = {v: at({**zero, v: 1}) - c0 for v in names}
    probe = {v: 3 + 2 * i for i, v in enumerate(names)}
    if at(probe) != c0 + sum(coef[v] * probe[v] for v in names):
        raise PatchTIRError(f"in-place check: index {expr} is not affine in the nest's loops")
    return c0, coef


def outer_loops(nest: object, out: Var) -> list[For]:
    """The loops around the nest's stores of `out` that its index uses, outermost first (the
    loops a backwards pair reverses; the reduction loops inside stay as they are)."""
    stores = [s for s in _walk(nest.stmt, BufferStore) if s.buffer.same_as(out)]
    around = [
        f for f in _walk(nest.stmt, For) if any(any(x.same_as(s) for x in _walk(f.body, BufferStore)) for s in stores)
    ]
    depth = [sum(any(x.same_as(f) for x in _walk(g.body, For)) for g in around) for f in around]
    around = [around[i] for i in sorted(range(len(around)), key=depth.__getitem__)]
    used = [v for s in stores for i in s.indices for v in _walk(i, Var)]
    return [f for f in around if any(f.loop_var.same_as(v) for v in used)]


def nest_shifts(
    nest: object,
    out: Var,
    src: Var,
    flats: tuple[Flat, Flat],
    windows: dict,
    tiles: list[tuple],
    sizes: tuple[int, int],
) -> tuple[int, int]:
    """stage_inplace.shifts (forward, reverse) over every patch in `tiles` (row tile, column
    tile): the largest forward and the smallest reverse shift. `windows[v]` gives each loop
    over H or W its range for a tile; `flats` lay window indices out in the output's and the
    source's region; `sizes` their bytes. The indices' coefficients are read once per nest."""
    stores = [s for s in _walk(nest.stmt, BufferStore) if s.buffer.same_as(out)]
    outer = [f.loop_var for f in outer_loops(nest, out)]
    loads = [ld for ld in _walk(nest.stmt, TensorLoad) if ld.source.same_as(src)]
    if not loads:
        raise PatchTIRError("in-place check: the nest does not read its source")
    inner = [v for v in nest.ranges if not any(v.same_as(o) for o in outer)]
    affine = {}
    for expr in [*stores[0].indices, *(i for ld in loads for i in ld.indices)]:
        affine[expr] = _affine(expr, outer + inner)
    dims = [int(d) for d in src.shape]
    out_flat, src_flat = flats
    osize, isize = dtype_bytes(str(out.dtype)), dtype_bytes(str(src.dtype))
    forward, reverse = 0, sizes[0]
    for tile in tiles:
        ranges = [windows[v](tile) if v in windows else nest.ranges[v] for v in outer]
        grids = np.meshgrid(*(np.arange(m, m + e) for m, e in ranges), indexing="ij")
        point = {v: g.ravel() for v, g in zip(outer, grids, strict=True)}
        n = grids[0].size if grids else 1

        def index(expr: tirx.PrimExpr, pick: Callable | None, point: dict = point, n: int = n) -> np.ndarray:
            c0, coef = affine[expr]  # pick: min or max over the inner (reduction) loops
            value = np.full(n, c0, dtype=np.int64)
            for v in outer:
                value += coef[v] * point[v]
            for v in inner if pick is not None else []:
                m, e = nest.ranges[v]
                value += pick(coef[v] * m, coef[v] * (m + e - 1))
            return value

        write = out_flat([index(i, None) for i in stores[0].indices], *tile) * osize
        first = np.minimum.reduce(
            [src_flat([np.maximum(0, index(i, min)) for i in ld.indices], *tile) for ld in loads]
        )  # padding guards: no read below 0 or past the map's end
        last = np.maximum.reduce(
            [
                src_flat([np.minimum(d - 1, index(i, max)) for i, d in zip(ld.indices, dims, strict=True)], *tile)
                for ld in loads
            ]
        )
        f, r = shifts(write, osize, first * isize, last * isize + isize - 1, sizes)
        forward, reverse = max(forward, f), min(reverse, r)
    return forward, reverse
