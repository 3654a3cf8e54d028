"""The patch stage for TVM users: a Relax pass and the two pipelines `import tvm_patch` registers.

- PatchStage (Relax): the model is lowered the way the C flow lowers it (GroupKernels,
  FuseTIR, InlineKernels: one scheduled PrimFunc per layer), the planner picks split, grid and
  tiles, and the stage's K kernel calls become ONE call_tir of the fused PrimFunc, tiled by
  PatchTIR into per-patch loops with halos and one scratch pool. The rest is left as it was.
  Relax pipeline "patch": PatchStage, then TVM's zero and default build pipelines.
- TIR pipeline "patch": PatchTIR on every PrimFunc of a conv chain, then TVM's s_tir pipeline.
"""

from __future__ import annotations

import tvm

from tvm_patch_core.errors import NoPatchStage, PatchTIRError
from tvm_patch_core.options import CompileOptions, PatchOptions, Schedule

from .frontend import normalize
from .lower import lower_to_program
from .passes.patch_tir import PatchTIR
from .rewrite import lower_model


@tvm.transform.module_pass(opt_level=0, name="PatchStage")
class PatchStage:
    """Plan and apply the patch stage to `main` (a model straight from the frontend).

    Options as `tvmc compile --pass patch`: sram_cap (bytes), split (K), patches ((nh, nw)).
    The input stays a tensor the caller passes: a streamed stage calls tvmp_stream_read, which
    only the C runtime of `tvmc compile` provides, so --stream-input is not offered here. A
    model with no possible stage is only lowered, unchanged in function."""

    def __init__(
        self,
        sram_cap: int | None = None,
        split: int | None = None,
        patches: tuple[int, int] | None = None,
    ) -> None:
        patch = PatchOptions(grid=patches, split=split)
        self.options = CompileOptions(schedule=Schedule.PATCH, patch=patch, sram_cap=sram_cap, inplace=False)

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        mod = normalize(mod)  # a TVM user's module may not have its constants folded
        try:
            return lower_model(mod, self.options).program.lowered
        except (NoPatchStage, PatchTIRError):
            return lower_to_program(mod).lowered


def patch_relax_pipeline(**options: object) -> tvm.transform.Pass:
    """Relax pipeline "patch": PatchStage, then TVM's zero + default build pipelines."""
    from tvm.relax import pipeline

    @tvm.transform.module_pass(opt_level=0, name="PatchPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        mod = PatchStage(**options)(mod)
        mod = pipeline.zero_pipeline()(mod)
        return pipeline.default_build_pipeline()(mod)

    return _pipeline


def patch_tir_pipeline() -> tuple:
    """TIR pipeline "patch": PatchTIR on every PrimFunc, then TVM's default (s_tir) pipeline."""
    from tvm.tirx import compilation_pipeline

    base, finalize_host, finalize_device = compilation_pipeline.get_tir_pipeline("s_tir")

    @tvm.transform.module_pass(opt_level=0, name="PatchTIRPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return base(PatchTIR(all_funcs=True)(mod))

    return _pipeline, finalize_host, finalize_device
