"""PatchStage: the patch stage as a Relax rewrite, for `tvm.compile(..., relax_pipeline="patch")`.

The model is lowered the way the C flow lowers it (GroupKernels, FuseTIR, InlineKernels:
one scheduled PrimFunc per layer), the planner picks split/grid/tiles, and FuseStage
replaces the stage's K kernel calls by ONE call_tir of a fused PrimFunc that carries the
plan; PatchTIR then tiles that PrimFunc into per-patch loops with halos and one scratch pool.
The rest of the model is left as it was.
"""

from __future__ import annotations

import tvm

from tvm_patch.frontend import normalize
from tvm_patch.layers import layer_graph
from tvm_patch.lower import lower_to_program
from tvm_patch.patch_planner import NoPatchStage, choose_plan
from tvm_patch.patch_stage import PatchPlan, build_patch_stage

from .patch_tir import PatchTIRError


def patch_stage_relax(mod: tvm.IRModule, plan: PatchPlan | None = None, **planner_options) -> tvm.IRModule:
    """The lowered module with its first K kernels replaced by the tiled stage kernel."""
    program = lower_to_program(normalize(mod))  # as our loader leaves it: constants folded
    layers = layer_graph(program.grouped)
    if plan is None:
        plan = choose_plan(program, layers, **planner_options).plan
    return build_patch_stage(program, layers, plan).lowered


@tvm.transform.module_pass(opt_level=0, name="PatchStage")
class PatchStage:
    """Plan and apply the patch stage to `main` (a model straight from the frontend).

    Options as `tvmc compile --pass patch`: sram_cap (bytes), split (K), patches ((nh, nw)),
    exclude_input. A model with no possible stage is only lowered, unchanged in function."""

    def __init__(self, sram_cap: int | None = None, split: int | None = None,
                 patches: tuple[int, int] | None = None, exclude_input: bool = False) -> None:
        self.options = {"sram_cap": sram_cap, "split": split, "grid": patches, "exclude_input": exclude_input}

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        try:
            return patch_stage_relax(mod, **self.options)
        except (NoPatchStage, PatchTIRError):
            return lower_to_program(normalize(mod)).lowered


def patch_pipeline(**options):
    """Relax pipeline "patch": PatchStage, then TVM's zero + default build pipelines."""
    from tvm.relax import pipeline

    @tvm.transform.module_pass(opt_level=0, name="PatchPipeline")
    def _pipeline(mod: tvm.IRModule, ctx: tvm.transform.PassContext) -> tvm.IRModule:
        mod = PatchStage(**options)(mod)
        mod = pipeline.zero_pipeline()(mod)
        return pipeline.default_build_pipeline()(mod)

    return _pipeline
