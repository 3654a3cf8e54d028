"""report.json: what was built, with every memory figure read from the artifact or the planner."""

from __future__ import annotations

from pathlib import Path

from .inplace import channel_temp_bytes
from .layers import Layer
from .liveness import program_buffers, step_workspaces
from .lower import Program
from .patch_analysis import patch_macs
from .patch_stage import STAGE_KERNEL
from .targets.arena import ArenaPlan, plan_arena
from .targets.toolchain import elf_sizes, symbol_size


def arena_without_inputs(program: Program, workspace: dict[int, int]) -> int:
    """The planner's arena with the model inputs left out (MCUNetV2 counts no input image)."""
    buffers = [b for b in program_buffers(program, workspace) if b.name not in program.inputs]
    return plan_arena(buffers).size if buffers else 0


def compile_report(imported, options, board, backend, program: Program, per_layer: Program, layers: list[Layer],
                   plan: ArenaPlan, elf: Path, choice, refusal: str | None, kernel_ws: dict[str, int]) -> dict:
    sizes = elf_sizes(elf)
    layer_macs = sum(layer.macs for layer in layers)
    workspace = step_workspaces(program, kernel_ws)
    report = {
        "model": str(imported.path),
        "name": imported.name,
        "format": imported.format,
        "target": options.target,
        "board": board.name,
        "kernels": backend,
        "schedule": "patch" if program.stage is not None else "layer",
        "peak_sram_bytes": symbol_size(elf, "tvmp_arena"),
        "peak_sram_bytes_excl_input": arena_without_inputs(program, workspace),
        "planned_arena_bytes": plan.size,
        "lower_bound_bytes": plan.lower_bound,
        "arena_algorithm": plan.algorithm,
        "flash_bytes": sizes["text"] + sizes["rodata"],
        "elf_sizes": sizes,
        "macs": layer_macs + (choice.extra_macs if program.stage is not None else 0),
        "inputs": [_io(program.tensors[t], plan, s.name) for t, s in zip(program.inputs, imported.inputs, strict=True)],
        "outputs": [_io(program.tensors[t], plan, s.name) for t, s in zip(program.outputs, imported.outputs, strict=True)],
        "layers": [layer.as_dict() for layer in layers],
    }
    report["inplace_depthwise"] = sorted(program.inplace)
    if options.schedule == "patch":
        layer_ws = step_workspaces(per_layer, kernel_ws)
        for step, temp in channel_temp_bytes(per_layer).items():  # kernels not built in this compile
            layer_ws[step] = max(layer_ws.get(step, 0), temp)
        report["layer_peak_sram_bytes"] = plan_arena(program_buffers(per_layer, layer_ws)).size
        report["layer_peak_sram_bytes_excl_input"] = arena_without_inputs(per_layer, layer_ws)
        report["layer_macs"] = layer_macs
    if refusal is not None:
        report["patch_refused"] = refusal
    if program.stage is not None:
        report["predicted_peak_sram_bytes"] = choice.predicted_bytes
        report["patch_stages"] = [_stage(program, layers, choice)]
    return report


def _stage(program: Program, layers: list[Layer], choice) -> dict:
    stage = program.stage
    cost = patch_macs(layers, stage.plan.stage, tiles_h=list(stage.plan.tiles_h), tiles_w=list(stage.plan.tiles_w))
    per_layer = []
    for pos, idx in enumerate(stage.plan.stage):
        layer = layers[idx]
        ins = [w[idx][0] for w in stage.windows]
        outs = [w[idx][1] for w in stage.windows]
        per_layer.append({
            "layer": layer.name,
            "op": layer.op,
            "input_window_max": [max(w.height for w in ins), max(w.width for w in ins)],
            "output_window_max": [max(w.height for w in outs), max(w.width for w in outs)],
            "halo_rows_max": max(i.height - o.height * (layer.strides[0] if layer.strides else 1) for i, o in zip(ins, outs)),
            "macs": layer.macs,
            "patched_macs": cost.layer_patched_macs[pos],
            "scratch_bytes": stage.scratch.get(idx, 0),
        })
    return {
        "layers": [layers[i].name for i in stage.plan.stage],
        "grid": list(stage.plan.grid),
        "tiles_h": [list(t) for t in stage.plan.tiles_h],
        "tiles_w": [list(t) for t in stage.plan.tiles_w],
        "layout": stage.layout,
        "per_layer": per_layer,
        "macs": cost.per_layer_macs,
        "patched_macs": cost.patched_macs,
        "extra_macs": cost.extra_macs,
        "extra_fraction_of_model": round(choice.extra_fraction, 5),
        "kernel": STAGE_KERNEL,  # one fused kernel, tiled by PatchTIR
        "scratch_pool_bytes": stage.pool_bytes,  # its workspace: the patch windows, allocated once
        "plans_considered": choice.considered,
    }


def _io(tensor, plan: ArenaPlan, label: str) -> dict:
    return {
        "name": label,  # the model's own name (npz keys for `tvmc run --inputs/--outputs`)
        "tensor": tensor.name,
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "bytes": tensor.nbytes,
        "arena_offset": plan.offset(tensor.name),
    }
