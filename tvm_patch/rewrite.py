"""Plan, then rewrite: the lowered model, its patch plan, and each rewrite applied once.

    lower_to_program -> layer_graph -> [choose_plan -> build_stage] -> apply_inplace

The planner (tvm_patch_core.patch_planner) predicts from windows and liveness without
building anything; `build_stage` and `apply_inplace` then apply the chosen rewrites to the
kernels, and the graph records what was really built.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import tvm

from tvm_patch_core.errors import NoPatchStage, PatchTIRError
from tvm_patch_core.inplace_rules import choose_inplace, with_inplace
from tvm_patch_core.layers import Layer
from tvm_patch_core.options import CompileOptions, Schedule
from tvm_patch_core.patch_planner import PlanChoice, choose_plan
from tvm_patch_core.stage import STAGE_KERNEL, PatchPlan, StageInfo, plan_windows, stage_scratch, streamed_graph
from tvm_patch_core.windows import stage_layout

from .layer_graph import layer_graph
from .lower import Program, lower_to_program, read_program
from .passes.fuse_stage import FuseStage
from .passes.inplace_kernels import InplaceKernels, aliasing_kernels
from .passes.patch_tir import PatchTIR


@dataclass(frozen=True)
class Lowered:
    per_layer: Program  # one kernel per layer, before any rewrite
    layers: list[Layer]
    program: Program  # what gets built
    choice: PlanChoice | None  # the patch plan (None: per layer)
    refusal: str | None  # why the patch pass left the model per layer


def build_stage(
    program: Program, layers: list[Layer], plan: PatchPlan, stream_input: bool = False, inplace: bool = True
) -> Program:
    """The program with its first K calls replaced by one call of the tiled stage kernel;
    `stream_input`: the kernel reads the model input window by window (tvmp_stream_read);
    `inplace`: stage layers write over their source where the planner's pairs pay."""
    layout = stage_layout(layers, list(plan.stage))
    windows = plan_windows(layers, plan)
    scratch, _, pairs = stage_scratch(program.graph, layers, plan, windows, stream_input, inplace)
    kept = tuple((p.out, p.source, p.shift, int(p.reverse)) for p in pairs)
    fuse = FuseStage(len(plan.stage), plan.tiles_h, plan.tiles_w, layout, stream_input, kept)
    built = read_program(PatchTIR()(fuse(program.lowered)), program.grouped)
    pool = int(built.kernels[STAGE_KERNEL].attrs["patch_scratch_bytes"])  # the built kernel's own
    graph = streamed_graph(built.graph, layout) if stream_input else built.graph  # no arena slot for the input
    return replace(
        built, graph=graph, fused=program.fused, stage=StageInfo(plan, layout, windows, scratch, pool, tuple(pairs))
    )


def apply_inplace(program: Program, layers: list[Layer]) -> Program:
    """Depthwise and residual outputs over their input, where the rules allow and the kernel
    rewrite succeeded."""
    stage_layers = len(program.stage.plan.stage) if program.stage is not None else 0
    choice = choose_inplace(program.graph, layers, stage_layers)
    kernels = InplaceKernels(choice.depthwise, choice.residual)(program.kernels)
    graph = with_inplace(program.graph, choice, kept=aliasing_kernels(kernels))
    return replace(program, graph=graph, kernels=kernels)


def lower_model(mod: tvm.IRModule, options: CompileOptions) -> Lowered:
    """The steps of compile_model up to the kernels' codegen (`tvmc tune` shares them)."""
    per_layer = lower_to_program(mod)  # kernels at int8 boundaries, intermediates inlined
    layers = layer_graph(per_layer.grouped)  # per-layer shapes, MACs, activation bytes
    program, choice, refusal = per_layer, None, None
    if options.schedule is Schedule.PATCH:
        try:  # split, grid and tiles under the SRAM cap, predicted without building
            choice = choose_plan(per_layer.graph, layers, options)
            stream = options.patch.stream_input  # the stage reads the input window by window
            # FuseStage + PatchTIR: one tiled kernel, stage layers in place where the plan says
            program = build_stage(per_layer, layers, choice.plan, stream, options.inplace)
        except (NoPatchStage, PatchTIRError) as why:
            program, choice, refusal = per_layer, None, str(why)  # stays per layer; the report says why
    if options.inplace:
        program = apply_inplace(program, layers)  # depthwise and residual outputs over their input
    return Lowered(per_layer, layers, program, choice, refusal)
