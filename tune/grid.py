"""The patch grid as a tuning choice: measure each feasible grid whole, keep the fastest.

A grid changes the whole program (the stage's windows, halos, scratch and every budget
after it), not one kernel's schedule, so each candidate grid (the planner's own choice under
the cap, then 1x1..4x4) is lowered and built as `tvmc compile --pass patch --patches NxM`
would build it, and run whole: QEMU instruction count with `--runner qemu` (the board's
build), host time otherwise (the host build, the median of three runs). Grids the planner or
the build refuses under the cap are skipped, with the reason. The winner goes into the
records header (`patch_grid`) and `tvmc compile --pass patch --tuning-records` uses it
unless --patches is given; the kernels are then tuned on that grid's program.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tvm_patch_core.boards import BOARDS, board_for
from tvm_patch_core.errors import TvmPatchError
from tvm_patch_core.graph import Graph
from tvm_patch_core.options import CompileOptions, KernelBackend

from ..frontend import convert_layout, load_model
from ..rewrite import lower_model
from ..targets.build import build_program
from ..targets.runner import run_elf

GRIDS = ((1, 1), (2, 2), (3, 3), (4, 4))


@dataclass(frozen=True)
class GridChoice:
    grid: tuple[int, int]
    costs: dict[tuple[int, int], float]  # grid -> instructions (qemu) or seconds (host)
    refused: dict[str, str]  # "planner" or "NxM" -> why the planner or the build refused it
    unit: str  # "instructions" | "host_seconds"


def search_grid(
    model: str | Path,
    options: CompileOptions,
    runner: str,
    grids: tuple[tuple[int, int], ...] = GRIDS,
    planner: bool = True,
) -> GridChoice:
    """Measure the planner's own grid (with `planner`) and each of `grids`; keep the fastest."""
    qemu = runner == "qemu"
    unit = "instructions" if qemu else "host_seconds"
    board = board_for(options.target) if qemu else BOARDS["host"]
    backend = KernelBackend.AUTO if qemu else KernelBackend.C
    imported = load_model(model, options.input_shapes, allow_nonfinite=options.allow_nonfinite_weights)
    mod = convert_layout(imported.mod, options.desired_layout)
    costs: dict[tuple[int, int], float] = {}
    refused: dict[str, str] = {}
    for grid in ([None] if planner else []) + list(grids):
        key = "planner" if grid is None else f"{grid[0]}x{grid[1]}"
        opts = replace(options, patch=replace(options.patch, grid=grid), tuning_records=None)
        try:
            lowered = lower_model(mod, opts)
        except TvmPatchError as why:
            refused[key] = str(why).splitlines()[0]
            continue
        stage = lowered.program.stage
        if stage is None or (grid is not None and stage.plan.grid != grid):
            refused[key] = lowered.refusal or "no patch stage with this grid"
            continue
        if stage.plan.grid in costs:
            continue  # the planner's choice is one of the grids already measured
        graph, kernels = lowered.program.graph, lowered.program.kernels
        cap = options.sram_cap  # the planner's arena: the input streamed or not
        with tempfile.TemporaryDirectory(prefix="tvmp-grid-") as tmp:
            try:
                built = build_program(graph, kernels, board, backend, imported.name, Path(tmp), sram_cap=cap)
            except TvmPatchError as why:
                refused[key] = str(why).splitlines()[0]
                continue
            data = _inputs(graph)
            out_bytes = sum(graph.tensors[t].nbytes for t in graph.outputs)
            runs = [run_elf(board, built.elf, data, out_bytes).count for _ in range(1 if qemu else 3)]
        count = sorted(runs)[len(runs) // 2]
        costs[stage.plan.grid] = float(count) if qemu else count / 1e9
    if not costs:
        raise TvmPatchError("no patch grid fits: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    best = min(costs, key=costs.__getitem__)
    return GridChoice(best, costs, refused, unit)


def _inputs(graph: Graph) -> bytes:
    """Seeded random inputs (the counts of these kernels do not depend on the data)."""
    rng = np.random.default_rng(0)
    blobs = []
    for name in graph.inputs:
        t = graph.tensors[name]
        dtype = np.dtype(t.dtype)
        if dtype.kind in "iu":
            x = rng.integers(np.iinfo(dtype).min, int(np.iinfo(dtype).max) + 1, size=t.shape).astype(dtype)
        else:
            x = rng.standard_normal(t.shape).astype(dtype)
        blobs.append(x.tobytes())
    return b"".join(blobs)
