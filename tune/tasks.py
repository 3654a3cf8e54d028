"""Tuning tasks: the compiled model's kernels that MetaSchedule may re-schedule, with budgets.

A task is one kernel of the program `tvmc compile` would build with the same options, taken
as FuseTIR left it (before InlineKernels, whose output MetaSchedule cannot re-schedule). Only
kernels that reach the final program unchanged are tasks: the patch stage kernel and the
kernels rewritten to run in place (depthwise, residual add) keep their schedules.

Each task's workspace budget is the SRAM cap minus the arena bytes live at the kernel's steps
without any workspace, from the same liveness the arena planner uses; a kernel that runs at
several steps gets the smallest budget.

The patch stage kernel is not a task (its loops are PatchTIR's); its grid is searched whole
(tune/grid.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from tvm_patch_core import liveness
from tvm_patch_core.arena import live_per_step
from tvm_patch_core.boards import Board, board_for
from tvm_patch_core.errors import TuneError
from tvm_patch_core.graph import Graph
from tvm_patch_core.options import CompileOptions

from ..frontend import convert_layout, load_model
from ..lower import Program
from ..rewrite import Lowered, lower_model
from ..targets.workspace import workspaces


@dataclass(frozen=True)
class TuneTask:
    name: str  # the kernel's global symbol in the program
    func: tirx.PrimFunc  # unscheduled (FuseTIR's output)
    steps: tuple[int, ...]  # the steps it runs at
    budget: int | None  # workspace bytes it may allocate; None without a cap

    @property
    def weight(self) -> float:
        return float(len(self.steps))

    @property
    def module(self) -> tvm.IRModule:
        return task_module(self.func)


@dataclass(frozen=True)
class TaskSet:
    model: Path
    model_sha256: str
    board: Board
    lowered: Lowered  # the final program (InlineKernels schedules everywhere) and the per-layer one
    tasks: list[TuneTask]
    skipped: dict[str, str] = field(default_factory=dict)  # kernel -> why it is not a task
    untuned_arena: int = 0


def task_module(func: tirx.PrimFunc) -> tvm.IRModule:
    """The module MetaSchedule tunes and the records are keyed by (structural hash)."""
    return tvm.IRModule({"main": func.with_attr("global_symbol", "main")})


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def front_end(model_path: str | Path, options: CompileOptions) -> tuple[Path, Lowered, Board]:
    """compile_model's steps up to the kernels' codegen (the same functions)."""
    imported = load_model(model_path, options.input_shapes, allow_nonfinite=options.allow_nonfinite_weights)
    lowered = lower_model(convert_layout(imported.mod, options.desired_layout), options)
    return imported.path, lowered, board_for(options.target)


def tunable_kernels(program: Program, per_layer: Program) -> tuple[dict[str, tirx.PrimFunc], dict[str, str]]:
    """Kernel name -> unscheduled PrimFunc for the kernels that reach `program` untouched."""
    tunable: dict[str, tirx.PrimFunc] = {}
    skipped: dict[str, str] = {}
    fused = per_layer.fused
    for gv, func in program.kernels.functions.items():
        name = gv.name_hint
        if fused is None or name not in {gv.name_hint for gv in fused.get_global_vars()}:
            skipped[name] = "not a FuseTIR kernel (patch stage)"
        elif not tvm_ffi.structural_equal(func, per_layer.kernels[name]):
            skipped[name] = "rescheduled after lowering (in place)"
        elif _reductions(fused[name]) > 1:  # MetaSchedule's compute-location rules fail on these
            skipped[name] = "several reduction stages (int8 softmax: row max, sum, reciprocal)"
        else:
            tunable[name] = fused[name]
    return tunable, skipped


def _reductions(func: tirx.PrimFunc) -> int:
    found = []
    reduces = [(s_tir.SBlock, lambda b: found.append(any(iv.iter_type == 2 for iv in b.iter_vars)))]  # CommReduce
    tvm_ffi.structural_walk(func.body, reduces)
    return sum(found)


def kernel_steps(graph: Graph) -> dict[str, list[int]]:
    at: dict[str, list[int]] = {}
    for i, call in enumerate(graph.calls):
        at.setdefault(call.kernel, []).append(i)
    return at


def kernel_budgets(graph: Graph, cap: int) -> dict[str, int]:
    """Kernel -> workspace bytes it may allocate: the cap minus the arena bytes live at its
    steps without any workspace (the smallest over its steps)."""
    live = live_per_step(liveness.buffers(graph, {}))
    return {k: min(cap - live.get(i, 0) for i in steps) for k, steps in kernel_steps(graph).items()}


def arena_size(program: Program) -> int:
    """The arena `tvmc compile` would plan for this program (workspace from the kernels' TIR)."""
    return liveness.plan(program.graph, liveness.step_workspaces(program.graph, workspaces(program.kernels))).size


def extract_tasks(model_path: str | Path, options: CompileOptions) -> TaskSet:
    path, lowered, board = front_end(model_path, options)
    program = lowered.program
    tunable, skipped = tunable_kernels(program, lowered.per_layer)
    at = kernel_steps(program.graph)
    untuned = arena_size(program)
    cap = options.sram_cap
    if cap is not None and untuned > cap:
        raise TuneError(
            f"{path.name}: the untuned program's arena is {untuned:,} B, over --sram-cap {cap:,} B; "
            "tuning only re-schedules kernels, it cannot shrink the tensors (try --pass patch)"
        )
    budgets = kernel_budgets(program.graph, cap) if cap is not None else {}
    tasks = []
    for name, func in sorted(tunable.items(), key=lambda kv: min(at.get(kv[0], [0]))):
        where = tuple(at.get(name, ()))
        if not where:
            skipped[name] = "never called"
            continue
        tasks.append(TuneTask(name, func, where, budgets.get(name)))
    if not tasks:
        raise TuneError(f"{path.name}: no kernel can be tuned ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    return TaskSet(path, file_sha256(path), board, lowered, tasks, skipped, untuned)
