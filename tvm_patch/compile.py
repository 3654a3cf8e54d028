"""The whole compile, one named step per line: import, analyse, lower, codegen, plan, emit, build.

    model file -> load_model -> lower_model: lower_to_program -> layer_graph -> [choose_plan -> build_patch_stage]
               -> build_kernels -> plan_arena -> emit_model -> build_elf -> export_project -> report.json

Everything is written into a staging folder beside OUT and moved into place only when the
build succeeded, so a failed compile leaves nothing half-written; OUT is replaced only when a
previous tvmc compile wrote it (tvm_patch/outdir.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ArenaTooLarge
from .frontend import convert_layout, load_model
from .inplace import apply_inplace_depthwise
from .kernels import build_kernels, resolve_kernel_backend
from .layers import Layer, layer_graph
from .liveness import program_buffers, step_workspaces
from .lower import Program, lower_to_program
from .options import CompileOptions
from .outdir import check_out_dir, staged_output
from .passes.patch_tir import PatchTIRError
from .patch_planner import NoPatchStage, PlanChoice, choose_plan
from .patch_stage import build_patch_stage
from .plot import live_bytes, plot_profile
from .report import compile_report
from .targets.arena import plan_arena
from .targets.boards import board_for
from .targets.emit_c import emit_model
from .targets.project import export_project
from .targets.toolchain import build_elf, require_tools


@dataclass(frozen=True)
class CompileResult:
    out_dir: Path
    elf: Path
    report: dict
    log: tuple[str, ...] = ()  # TVM's own messages during the build (tvmc compile -v shows them)


def compile_model(model_path: str | Path, out_dir: str | Path, options: CompileOptions) -> CompileResult:
    out_dir = check_out_dir(Path(out_dir), Path(model_path))  # never replace what tvmc did not write
    if options.tuning_records and options.schedule == "patch" and options.patches is None:
        from .tune.records import recorded_grid

        options = replace(options, patches=recorded_grid(options.tuning_records))  # `tvmc tune`'s fastest grid
    board = board_for(options.target)
    require_tools(board)
    imported = load_model(model_path, options.input_shapes, allow_nonfinite=options.allow_nonfinite_weights)
    mod = convert_layout(imported.mod, options.desired_layout)  # tvmc's --desired-layout
    per_layer, layers, program, choice, refusal = lower_model(mod, options)
    tuning = None
    if options.tuning_records:  # `tvmc tune`'s best schedules instead of InlineKernels where recorded
        from .tune.records import apply_records_file  # MetaSchedule: imported only when used

        program, tuning = apply_records_file(program, per_layer, options.tuning_records, imported.path, board)
    backend = resolve_kernel_backend(options.kernels, board)
    with staged_output(out_dir) as staging:  # becomes OUT only if everything below succeeds
        src = staging / "src"
        kernels = build_kernels(program, board, backend, src)  # TVM codegen: C source or LLVM object
        workspace = step_workspaces(program, kernels.workspace)
        plan = plan_arena(program_buffers(program, workspace))  # one static arena, offsets planned
        plan.check_no_overlap()
        _check_fits(imported.path.name, plan.size, board, None if options.exclude_input else options.sram_cap)
        labels = ([s.name for s in imported.inputs], [s.name for s in imported.outputs])
        emitted = emit_model(program, plan, workspace, imported.name, src, labels)  # call sequence + arena
        (staging / "arena_plan.txt").write_text(plan.print_plan() + "\n")
        model_sources = list(emitted.files) + kernels.sources
        elf = build_elf(board, model_sources, kernels.objects, staging / "model.elf", [src])
        export_project(board, model_sources, kernels.objects, staging / "project")  # headers come along
        layer_view = apply_inplace_depthwise(per_layer, layers, dry_run=True) if options.inplace_depthwise else per_layer
        report = compile_report(imported, options, board, backend, program, layer_view, layers, plan, elf,
                                choice, refusal, kernels.workspace)
        if tuning is not None:
            report["tuning"] = tuning
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if options.plot:  # MCUNetV2 Figure 1: bytes live per layer, per-layer vs patch
            patched = live_bytes(program, kernels.workspace) if program.stage is not None else None
            plot_profile(staging / "profile.png", layers, live_bytes(layer_view, kernels.workspace), patched,
                         options.sram_cap, f"{imported.path.name} on {board.name}")
    return CompileResult(out_dir, out_dir / "model.elf", report, kernels.log)


def lower_model(mod, options: CompileOptions) -> tuple[Program, list[Layer], Program, PlanChoice | None, str | None]:
    """(per-layer program, layers, program to build, patch plan, why the patch pass refused)."""
    per_layer = lower_to_program(mod)  # kernels at int8 boundaries, intermediates inlined
    layers = layer_graph(per_layer.grouped)  # per-layer shapes, MACs, activation bytes
    program, choice, refusal = per_layer, None, None
    if options.schedule == "patch":
        try:  # split, grid and tiles under the SRAM cap
            choice = choose_plan(per_layer, layers, options.sram_cap, options.split, options.patches,
                                 exclude_input=options.exclude_input, inplace=options.inplace_depthwise)
            program = build_patch_stage(per_layer, layers, choice.plan)  # FuseStage + PatchTIR: one tiled kernel
        except (NoPatchStage, PatchTIRError) as why:
            program, choice, refusal = per_layer, None, str(why)  # stays per-layer; the report says why
    if options.inplace_depthwise:
        program = apply_inplace_depthwise(program, layers)  # depthwise output over its input
    return per_layer, layers, program, choice, refusal


def _check_fits(model: str, arena: int, board, sram_cap: int | None) -> None:
    if board.ram_bytes is not None and arena > board.ram_bytes:
        raise ArenaTooLarge(
            f"{model}: the arena needs {arena:,} bytes but {board.name} has {board.ram_bytes:,} bytes "
            "of RAM; try --pass patch or a board with more RAM"
        )
    if sram_cap is not None and arena > sram_cap:
        raise ArenaTooLarge(f"{model}: the arena needs {arena:,} bytes, over --sram-cap {sram_cap:,} bytes; try --pass patch")
