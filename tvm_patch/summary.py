"""The CompileReport of a build: every memory figure read from the artifact or the planner.

- peak SRAM: the ELF's `tvmp_arena` symbol; flash: the ELF's text + rodata;
- without the input: the same arena planned with the model inputs left out (MCUNetV2's count;
  equal to peak SRAM when the input is streamed, `input_streamed`);
- with --pass patch, the per-layer build's arena for comparison: the per-layer graph with
  its in-place choice, planned as the build would plan it (one-channel temporaries as
  workspace).
"""

from __future__ import annotations

from tvm_patch_core import liveness
from tvm_patch_core.arena import ArenaPlan
from tvm_patch_core.boards import Board
from tvm_patch_core.graph import Graph, TensorKind
from tvm_patch_core.inplace_rules import choose_inplace, with_inplace
from tvm_patch_core.layers import Layer
from tvm_patch_core.options import CompileOptions, Schedule
from tvm_patch_core.patch_planner import PlanChoice
from tvm_patch_core.report import CompileReport, FrontPointReport, StageLayerReport, StageReport, TensorReport
from tvm_patch_core.stage import STAGE_KERNEL, StageInfo
from tvm_patch_core.windows import patch_macs

from .frontend import ImportedModel
from .rewrite import Lowered
from .targets.build import Built
from .targets.toolchain import elf_sizes, symbol_size


def summarize(
    imported: ImportedModel,
    options: CompileOptions,
    board: Board,
    lowered: Lowered,
    built: Built,
    tuning: dict | None = None,
) -> CompileReport:
    graph, plan = lowered.program.graph, built.plan
    sizes = elf_sizes(built.elf)
    layer_macs = sum(layer.macs for layer in lowered.layers)
    stage, choice = lowered.program.stage, lowered.choice
    patched = options.schedule is Schedule.PATCH
    per_layer = _per_layer_arena(lowered, options, built) if patched else (None, None)
    return CompileReport(
        model=str(imported.path),
        name=imported.name,
        format=imported.format,
        target=options.target,
        board=board.name,
        kernels=str(built.kernels.backend),
        schedule=str(Schedule.PATCH if stage is not None else Schedule.LAYER),
        peak_sram_bytes=symbol_size(built.elf, "tvmp_arena"),
        peak_sram_bytes_excl_input=_arena(graph, built.workspace, exclude_inputs=True),
        planned_arena_bytes=plan.size,
        lower_bound_bytes=plan.lower_bound,
        arena_algorithm=plan.algorithm,
        flash_bytes=sizes["text"] + sizes["rodata"],
        elf_sizes=sizes,
        macs=layer_macs + (choice.extra_macs if stage is not None and choice is not None else 0),
        inputs=tuple(_io(graph, plan, t, s.name) for t, s in zip(graph.inputs, imported.inputs, strict=True)),
        outputs=tuple(_io(graph, plan, t, s.name) for t, s in zip(graph.outputs, imported.outputs, strict=True)),
        layers=tuple(lowered.layers),
        inplace_depthwise=tuple(sorted(graph.inplace)),
        layer_peak_sram_bytes=per_layer[0],
        layer_peak_sram_bytes_excl_input=per_layer[1],
        layer_macs=layer_macs if patched else None,
        patch_refused=lowered.refusal,
        predicted_peak_sram_bytes=choice.arena_bytes if stage is not None and choice is not None else None,
        predicted_peak_sram_bytes_excl_input=(
            choice.arena_bytes_excl_input if stage is not None and choice is not None else None
        ),
        patch_stages=(
            (_stage(stage, lowered.layers, choice, options),) if stage is not None and choice is not None else ()
        ),
        tuning=tuning,
        input_streamed=any(graph.tensors[t].kind is TensorKind.STREAMED for t in graph.inputs),
    )


def _arena(graph: Graph, workspace: dict[int, int], exclude_inputs: bool = False) -> int:
    bufs = liveness.buffers(graph, workspace, exclude_inputs)
    return liveness.plan(graph, workspace, exclude_inputs).size if bufs else 0


def _per_layer_arena(lowered: Lowered, options: CompileOptions, built: Built) -> tuple[int, int]:
    """(arena, arena without the input) of the per-layer build of the same model."""
    graph = lowered.per_layer.graph
    if options.inplace:
        graph = with_inplace(graph, choose_inplace(graph, lowered.layers))
    workspace = liveness.step_workspaces(graph, built.kernels.workspace)  # kernels both builds share
    for step, temp in liveness.temp_workspaces(graph).items():  # the in-place kernels not built here
        workspace[step] = max(workspace.get(step, 0), temp)
    return _arena(graph, workspace), _arena(graph, workspace, exclude_inputs=True)


def _stage(stage: StageInfo, layers: list[Layer], choice: PlanChoice, options: CompileOptions) -> StageReport:
    plan = stage.plan
    cost = patch_macs(layers, plan.stage, tiles_h=list(plan.tiles_h), tiles_w=list(plan.tiles_w))
    per_layer = []
    for pos, idx in enumerate(plan.stage):
        layer = layers[idx]
        ins = [w[idx][0] for w in stage.windows]
        outs = [w[idx][1] for w in stage.windows]
        stride = layer.strides[0] if layer.strides else 1
        per_layer.append(StageLayerReport(
            layer=layer.name,
            op=layer.op,
            input_window_max=(max(w.height for w in ins), max(w.width for w in ins)),
            output_window_max=(max(w.height for w in outs), max(w.width for w in outs)),
            halo_rows_max=max(i.height - o.height * stride for i, o in zip(ins, outs, strict=True)),
            macs=layer.macs,
            patched_macs=cost.layer_patched_macs[pos],
            scratch_bytes=stage.scratch.get(idx, 0),
        ))  # fmt: skip
    return StageReport(
        layers=tuple(layers[i].name for i in plan.stage),
        grid=plan.grid,
        tiles_h=plan.tiles_h,
        tiles_w=plan.tiles_w,
        layout=stage.layout,
        per_layer=tuple(per_layer),
        macs=cost.per_layer_macs,
        patched_macs=cost.patched_macs,
        extra_macs=cost.extra_macs,
        extra_fraction_of_model=round(choice.extra_fraction, 5),
        kernel=STAGE_KERNEL,
        scratch_pool_bytes=stage.pool_bytes,
        in_place=tuple(layers[plan.stage[p.out]].name for p in stage.pairs),
        plans_considered=choice.considered,
        front=tuple(
            FrontPointReport(
                split=p.split,
                grid=p.grid,
                arena_bytes=p.arena_bytes,
                extra_macs=p.extra_macs,
                extra_fraction_of_model=round(p.extra_macs / max(sum(layer.macs for layer in layers), 1), 5),
                chosen=p.extra_macs == choice.extra_macs and p.grid == plan.grid and p.split == len(plan.stage),
            )
            for p in choice.front
        ),
        front_excludes_input=options.patch.stream_input,
    )


def _io(graph: Graph, plan: ArenaPlan, tensor: str, label: str) -> TensorReport:
    t = graph.tensors[tensor]
    offset = None if t.kind is TensorKind.STREAMED else plan.offset(t.name)
    return TensorReport(label, t.name, t.shape, t.dtype, t.nbytes, offset)
