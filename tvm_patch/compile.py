"""The whole compile, one named step per line: import, plan and rewrite, build, export, report.

Everything is written into a staging folder beside OUT and moved into place only when the
build succeeded, so a failed compile leaves nothing half-written; OUT is replaced only when a
previous tvmc compile wrote it (tvm_patch_core/outdir.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tvm_patch_core.boards import board_for
from tvm_patch_core.options import CompileOptions, Schedule
from tvm_patch_core.outdir import check_out_dir, staged_output
from tvm_patch_core.report import CompileReport

from .frontend import convert_layout, load_model
from .passes.int8_dsp import use_dsp_kernels
from .plot import plot_profile
from .rewrite import lower_model
from .summary import summarize
from .targets.build import build_program
from .targets.kernels import resolve_kernel_backend
from .targets.project import export_project
from .targets.toolchain import require_tools
from .tune.records import apply_records_file, recorded_grid


@dataclass(frozen=True)
class CompileResult:
    out_dir: Path
    elf: Path
    report: CompileReport
    log: tuple[str, ...] = ()  # TVM's own messages during the build (tvmc compile -v shows them)


def compile_model(model_path: str | Path, out_dir: str | Path, options: CompileOptions) -> CompileResult:
    out_dir = check_out_dir(Path(out_dir), Path(model_path))  # never replace what tvmc did not write
    options = _with_recorded_grid(options)  # `tvmc tune`'s fastest patch grid, unless --patches
    board = board_for(options.target)
    require_tools(board)  # fail before the long work, with the install command
    imported = load_model(model_path, options.input_shapes, allow_nonfinite=options.allow_nonfinite_weights)
    mod = convert_layout(imported.mod, options.desired_layout)  # tvmc's --desired-layout
    lowered = lower_model(mod, options)  # kernels, layer graph, patch plan, then each rewrite once
    tuning = None
    if options.tuning_records:  # `tvmc tune`'s schedules instead of InlineKernels where faster
        lowered, tuning = apply_records_file(lowered, options.tuning_records, imported.path, board)
    if options.dsp_kernels:  # int8 convs -> SMLAD micro-kernels (tuned kernels keep their schedule)
        keep = frozenset(tuning["kernels"]) if tuning else frozenset()
        lowered = replace(lowered, program=use_dsp_kernels(lowered.program, keep))
    backend = resolve_kernel_backend(options.kernels, board)
    labels = ([s.name for s in imported.inputs], [s.name for s in imported.outputs])
    cap = options.sram_cap  # the planner planned for this arena (the input streamed or not)
    with staged_output(out_dir) as staging:  # becomes OUT only if everything below succeeds
        program = lowered.program
        built = build_program(
            program.graph, program.kernels, board, backend, imported.name, staging, labels, cap, options.kernel_calls
        )
        (staging / "arena_plan.txt").write_text(built.plan.print_plan() + "\n")
        export_project(board, built.sources, built.kernels.objects, staging / "project")  # headers come along
        report = summarize(imported, options, board, lowered, built, tuning)  # figures read from the ELF
        (staging / "report.json").write_text(report.to_json())
        if options.plot:  # MCUNetV2 Figure 1: bytes live per layer, per-layer vs patch
            plot_profile(
                staging / "profile.png", lowered, built, options.sram_cap, f"{imported.path.name} on {board.name}"
            )
    return CompileResult(out_dir, out_dir / "model.elf", report, built.kernels.log)


def _with_recorded_grid(options: CompileOptions) -> CompileOptions:
    if options.tuning_records and options.schedule is Schedule.PATCH and options.patch.grid is None:
        return replace(options, patch=replace(options.patch, grid=recorded_grid(options.tuning_records)))
    return options
