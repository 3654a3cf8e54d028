"""PatchTIR: tile a fused conv-chain PrimFunc into per-patch loops with halos.

For `tvm.build(prim_mod, target, pipeline="patch")` on a TE/TIR conv chain (one PrimFunc
computing several convolutions): inside the function, the output is computed patch by
patch and every intermediate only for the window the patch needs, halo included.

Known limit: TVM's CompactBufferAllocation keeps such an intermediate at full size when
its halo is clipped at the image border (the window's start is max(0, ...), not a
constant), so on this path the work is per patch but the buffer is not yet smaller. The
model-level flow (tvmc --pass patch, tvm_patch/patch_stage.py) does not have this limit:
its scratch buffers are sized to the largest window.

1. Inline what can be inlined (padding, elementwise stages) into its consumers.
2. Split the output block's H and W loops into the grid (attribute `patch_grid`, default
   2x2; tiles that cannot divide the size get a predicate) and move the two tile loops out.
3. `compute_at` every producer under the tile loops, last first: TVM's region analysis
   gives each the window its consumer reads (the halo), clipped at the borders.
Layout from the attribute `patch_layout` ("NHWC" default, or "NCHW").
"""

from __future__ import annotations

import tvm
from tvm import tirx
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import ScheduleError

from .inline_kernels import map_prim_funcs

_REDUCE = 2  # IterVar.CommReduce


def _is_reduction(sch: Schedule, block) -> bool:
    return any(iv.iter_type == _REDUCE for iv in sch.get(block).iter_vars)


def patch_tile(func: tirx.PrimFunc, grid: tuple[int, int] = (2, 2), layout: str = "NHWC") -> tirx.PrimFunc:
    sch = Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")
    changed = True
    while changed:  # step 1
        changed = False
        for block in sch.get_child_blocks(root):
            outs = {sch.get(o).name_hint for o in sch.get_output_blocks(root)}
            if _is_reduction(sch, block) or sch.get(block).name_hint in outs:
                continue
            try:
                sch.compute_inline(block)
            except ScheduleError:
                continue
            changed = True
            break
    outputs = sch.get_output_blocks(root)
    if len(outputs) != 1:
        return func
    out = outputs[0]
    loops = sch.get_loops(out)
    h_pos, w_pos = (1, 2) if layout == "NHWC" else (2, 3)
    if len(loops) < 4:
        return func
    ho, hi = sch.split(loops[h_pos], [grid[0], None])  # step 2
    wo, wi = sch.split(loops[w_pos], [grid[1], None])
    sch.reorder(ho, wo, hi, wi)
    out_name = sch.get(out).name_hint
    for block in reversed(sch.get_child_blocks(root)):  # step 3
        if sch.get(block).name_hint == out_name:
            continue
        sch.compute_at(block, wo, preserve_unit_loops=True)
    return sch.mod["main"]


@tvm.transform.module_pass(opt_level=0, name="PatchTIR")
class PatchTIR:
    """Apply `patch_tile` to every PrimFunc (grid and layout from its attributes)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        def tile(_gv, func: tirx.PrimFunc) -> tirx.PrimFunc:
            attrs = func.attrs or {}
            grid = tuple(int(g) for g in attrs["patch_grid"]) if "patch_grid" in attrs else (2, 2)
            layout = str(attrs["patch_layout"]) if "patch_layout" in attrs else "NHWC"
            return patch_tile(func, grid, layout)

        return map_prim_funcs(mod, tile)


def patch_tir_pipeline():
    """TIR pipeline "patch": PatchTIR, then TVM's default (s_tir) pipeline."""
    from tvm.tirx import compilation_pipeline

    base, finalize_host, finalize_device = compilation_pipeline.get_tir_pipeline("s_tir")

    @tvm.transform.module_pass(opt_level=0, name="PatchTIRPipeline")
    def _pipeline(mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return base(PatchTIR()(mod))

    return _pipeline, finalize_host, finalize_device
