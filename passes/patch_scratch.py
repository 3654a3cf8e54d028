"""The patch stage's scratch pool (PatchTIR, passes/patch_tir.py, step 4): where each map's
window lives and what is allocated.

Every scratch map (the stage's intermediates, and a streamed input's window) is a region of
its largest window, live from the first nest that touches it to the last; the regions are laid
out in bytes by the arena planner (tvm_patch_core.arena, 16-byte aligned), whatever their
dtype. Maps that are never live together may share bytes; two that are live together share
none, except the planner's in-place pairs (a map written over the one it reads, at the
distance the nest's loop order allows, step 7). The pool is one allocation: a buffer of the
maps' dtype, or for maps of several dtypes a uint8 buffer with a typed view per dtype.
tvm_patch_core.stage.scratch_pool predicts the same layout without building anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx

from tvm_patch_core.arena import ALIGNMENT, Buffer, plan_arena
from tvm_patch_core.graph import dtype_bytes


@dataclass(frozen=True)
class Scratch:
    offset: int  # elements into the pool of its dtype
    shape: tuple[int, ...]  # the map's shape with H, W cut to the largest window
    lo: tuple[tuple[int, ...], tuple[int, ...]]  # window origin per row tile, per column tile


def plan_pool(
    nests: list,
    scratch_maps: list,
    maps: dict,
    rows: dict,
    cols: dict,
    axes: tuple[int, int],
    streamed: object = None,
    pairs: dict | None = None,
) -> tuple[dict, int]:
    """(map -> (byte offset, shape), pool bytes): every scratch map, whatever its dtype, in one
    arena of bytes over the nests' lifetimes (the key of a map is its position in the list);
    `pairs`: position -> (source position, shift), a map starting that far below its source
    (Buffer.inplace_shift; the planner's pairs, checked by passes/patch_inplace.py)."""
    pairs = pairs or {}
    shapes, buffers = {}, []
    for m in scratch_maps:
        shape = [int(d) for d in maps[m]]
        shape[axes[0]] = max(b - a for a, b in rows[m])
        shape[axes[1]] = max(b - a for a, b in cols[m])
        shapes[m] = tuple(shape)
        used = [i for i, n in enumerate(nests) if n.out.same_as(m) or any(ld.source.same_as(m) for ld in n.loads)]
        nbytes = dtype_bytes(str(m.dtype))
        for d in shape:
            nbytes *= d
        first = 0 if streamed is not None and m.same_as(streamed) else min(used)  # filled before nest 0
        k = len(buffers)
        src, shift = pairs.get(k, (None, None))
        buffers.append(Buffer(str(k), nbytes, first, max(used), None if src is None else str(src), shift))
    plan = plan_arena(buffers, alignment=ALIGNMENT)
    return {m: (plan.offset(str(i)), shapes[m]) for i, m in enumerate(scratch_maps)}, plan.size


def pool_buffers(dtypes: list[str], nbytes: int) -> tuple[list, dict]:
    """(the allocations, dtype -> the buffer its maps index): one pool of that dtype, or, for
    maps of several dtypes (an int8 stage with a float32 residual path or a float32 input),
    one byte pool with a view of it per dtype, so maps of different dtypes share bytes too."""
    if not dtypes:
        return [], {}

    def elems(dtype: str) -> tuple[int]:
        return (nbytes // dtype_bytes(dtype),)

    if len(dtypes) == 1:
        (dtype,) = dtypes
        pool = tirx.decl_buffer(elems(dtype), dtype, f"patch_scratch_{dtype}", layout=None)
        return [pool], {dtype: pool}
    base = tirx.decl_buffer((nbytes,), "uint8", "patch_scratch", layout=None)
    views = {d: tirx.decl_buffer(elems(d), d, f"patch_scratch_{d}", data=base.data, layout=None) for d in dtypes}
    return [base], views
