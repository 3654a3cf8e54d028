"""PatchStage: the patch stage as a Relax rewrite, for `tvm.compile(..., relax_pipeline="patch")`.

The C/AOT flow runs the stage from the emitted call sequence over arena scratch buffers
(tvm_patch/patch_stage.py). This pass expresses the same computation in Relax so any TVM
target can build it: the model is grouped into kernels (GroupKernels), the planner picks
split/grid/tiles, and the stage's K kernel calls are replaced by, per patch, each layer
re-instantiated on its window (sliced inputs, the patch's share of the padding), the
patches' last windows joined with `concat` into the stage output. The rest of the model is
left as it was.
"""

from __future__ import annotations

import tvm
from tvm import relax

from tvm_patch.layers import layer_graph
from tvm_patch.lower import lower_to_program
from tvm_patch.patch_planner import NoPatchStage, choose_plan
from tvm_patch.patch_stage import PatchPlan, emit_patch_layer, layer_patches

from .group_kernels import substitute


def patch_stage_relax(mod: tvm.IRModule, plan: PatchPlan | None = None, **planner_options) -> tvm.IRModule:
    """The grouped module with its first K kernels replaced by the per-patch computation."""
    program = lower_to_program(mod)
    layers = layer_graph(program.grouped)
    if plan is None:
        plan = choose_plan(program, layers, **planner_options).plan
    grouped = program.grouped
    func = grouped["main"]
    bindings = list(func.body.blocks[0].bindings)
    calls = [b for b in bindings if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.GlobalVar)]
    stage_bindings = {id(calls[i]) for i in plan.stage}
    last_stage = calls[plan.stage[-1]]
    rest = {gv: f for gv, f in grouped.functions.items() if gv.name_hint != "main"}
    bb = relax.BlockBuilder(tvm.IRModule(rest, attrs=grouped.attrs))
    with bb.function("main", list(func.params), attrs=dict(func.attrs) if func.attrs else None):
        with bb.dataflow():
            vmap: dict[relax.Expr, relax.Expr] = {}
            for b in bindings:
                if id(b) not in stage_bindings:
                    vmap[b.var] = bb.emit(substitute(b.value, vmap), name_hint=b.var.name)
                    continue
                if b is not last_stage:
                    continue
                vmap[b.var] = _emit_stage(bb, program, layers, plan, calls, vmap)
            out = bb.emit_output(substitute(func.body.body, vmap))
        bb.emit_func_output(out)
    return relax.transform.DeadCodeElimination()(bb.get())


def _emit_stage(bb, program, layers, plan, calls, vmap) -> relax.Expr:
    views: dict[str, relax.Expr] = {}
    tiles: dict[int, relax.Expr] = {}
    for lp in layer_patches(program, layers, plan):
        grouped_args = calls[lp.layer.index].value.args
        params = [views[a] if a in views else substitute(grouped_args[j], vmap) for j, a in enumerate(lp.args)]
        views[lp.view] = emit_patch_layer(bb, lp, params)
        tiles[lp.patch] = views[lp.view]
    nh, nw = plan.grid
    h_axis, w_axis = lp.axes
    rows = [bb.emit(relax.op.concat([tiles[r * nw + c] for c in range(nw)], axis=w_axis)) if nw > 1 else tiles[r * nw]
            for r in range(nh)]
    return bb.emit(relax.op.concat(rows, axis=h_axis)) if nh > 1 else rows[0]


@tvm.transform.module_pass(opt_level=0, name="PatchStage")
class PatchStage:
    """Plan and apply the patch stage to `main` (a model straight from the frontend).

    Options as `tvmc compile --pass patch`: sram_cap (bytes), split (K), patches ((nh, nw)),
    exclude_input. A model with no possible stage is only grouped, unchanged in function."""

    def __init__(self, sram_cap: int | None = None, split: int | None = None,
                 patches: tuple[int, int] | None = None, exclude_input: bool = False) -> None:
        self.options = {"sram_cap": sram_cap, "split": split, "grid": patches, "exclude_input": exclude_input}

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        try:
            return patch_stage_relax(mod, **self.options)
        except NoPatchStage:
            return mod


def patch_pipeline(**options):
    """Relax pipeline "patch": PatchStage, then TVM's zero + default build pipelines."""
    from tvm.relax import pipeline

    @tvm.transform.module_pass(opt_level=0, name="PatchPipeline")
    def _pipeline(mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        mod = PatchStage(**options)(mod)
        mod = pipeline.zero_pipeline()(mod)
        return pipeline.default_build_pipeline()(mod)

    return _pipeline
