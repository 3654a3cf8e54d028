"""The whole compile, one named step per line: import, analyse, lower, codegen, plan, emit, build.

    model file -> load_model -> layer_graph -> lower_to_program -> build_kernels
               -> plan_arena -> emit_model -> build_elf -> export_project -> report.json

Everything is written into a temporary folder beside OUT and moved into place only when the
build succeeded, so a failed compile leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ArenaTooLarge
from .frontend import convert_layout, load_model
from .kernels import build_kernels, resolve_kernel_backend
from .layers import layer_graph
from .liveness import program_buffers
from .lower import lower_to_program
from .options import CompileOptions
from .targets.arena import plan_arena
from .targets.boards import board_for
from .targets.emit_c import emit_model
from .targets.project import export_project
from .targets.toolchain import build_elf, elf_sizes, require_tools, symbol_size


@dataclass(frozen=True)
class CompileResult:
    out_dir: Path
    elf: Path
    report: dict


def compile_model(model_path: str | Path, out_dir: str | Path, options: CompileOptions) -> CompileResult:
    out_dir = Path(out_dir)
    board = board_for(options.target)
    require_tools(board)
    imported = load_model(model_path, options.input_shapes)  # ONNX/TFLite -> Relax, constants folded
    mod = convert_layout(imported.mod, options.desired_layout)  # tvmc's --desired-layout
    program = lower_to_program(mod)  # kernels at int8 boundaries, intermediates inlined
    layers = layer_graph(program.grouped)  # per-layer shapes, MACs, activation bytes
    backend = resolve_kernel_backend(options.kernels, board)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        src = staging / "src"
        kernels = build_kernels(program, board, backend, src)  # TVM codegen: C source or LLVM object
        workspace = {i: kernels.workspace.get(c.kernel, 0) for i, c in enumerate(program.calls)}
        plan = plan_arena(program_buffers(program, workspace))  # one static arena, offsets planned
        plan.check_no_overlap()
        if board.ram_bytes is not None and plan.size > board.ram_bytes:
            raise ArenaTooLarge(
                f"{imported.path.name}: the arena needs {plan.size:,} bytes but {board.name} has "
                f"{board.ram_bytes:,} bytes of RAM; try --pass patch or a board with more RAM"
            )
        emitted = emit_model(program, plan, workspace, imported.name, src)  # call sequence + arena
        (staging / "arena_plan.txt").write_text(plan.print_plan() + "\n")
        model_sources = list(emitted.files) + kernels.sources
        elf = build_elf(board, model_sources, kernels.objects, staging / "model.elf", [src])
        export_project(board, model_sources, kernels.objects, staging / "project")  # headers come along
        sizes = elf_sizes(elf)
        report = {
            "model": str(imported.path),
            "name": imported.name,
            "format": imported.format,
            "target": options.target,
            "board": board.name,
            "kernels": backend,
            "schedule": options.schedule,
            "peak_sram_bytes": symbol_size(elf, "tvmp_arena"),
            "planned_arena_bytes": plan.size,
            "lower_bound_bytes": plan.lower_bound,
            "arena_algorithm": plan.algorithm,
            "flash_bytes": sizes["text"] + sizes["rodata"],
            "elf_sizes": sizes,
            "macs": sum(layer.macs for layer in layers),
            "inputs": [_io(program.tensors[t], plan) for t in program.inputs],
            "outputs": [_io(program.tensors[t], plan) for t in program.outputs],
            "layers": [layer.as_dict() for layer in layers],
        }
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CompileResult(out_dir, out_dir / "model.elf", report)


def _io(tensor, plan) -> dict:
    return {
        "name": tensor.name,
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "bytes": tensor.nbytes,
        "arena_offset": plan.offset(tensor.name),
    }
