"""The patch grid as a tuning choice (issue 4, item 2): measure each feasible grid, keep the fastest.

A grid changes the whole program (the stage's windows, halos, scratch and every budget
after it), not one kernel's schedule, so each candidate grid (the planner's own choice under
the cap, then 1x1..4x4) is compiled as `tvmc compile --pass patch --patches NxM` would
compile it and measured whole: QEMU instruction count with
`--runner qemu`, host time otherwise. Grids the planner refuses under the cap are skipped,
with the reason. The winner goes into the records header (`patch_grid`) and `tvmc compile
--pass patch --tuning-records` uses it unless --patches is given; the kernels are then tuned
on that grid's program.

When the patch stage becomes one PrimFunc tiled from a plan, the same loop can instead make
one MetaSchedule task per grid (tasks.TuneTask.variants) and compare the tuned stage kernels.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import TvmPatchError
from ..options import CompileOptions

GRIDS = ((1, 1), (2, 2), (3, 3), (4, 4))


@dataclass(frozen=True)
class GridChoice:
    grid: tuple[int, int]
    costs: dict[str, float]  # "NxM" -> instructions (qemu) or seconds (host)
    refused: dict[str, str]  # "NxM" -> why the planner or the build refused it
    unit: str


def search_grid(model: str | Path, options: CompileOptions, runner: str, grids=GRIDS, planner: bool = True) -> GridChoice:
    """Measure the planner's own grid (with `planner`) and each of `grids`; keep the fastest."""
    from ..compile import compile_model
    from ..run import run_compiled

    device = "qemu" if runner == "qemu" else "host"
    unit = "instructions" if device == "qemu" else "host_seconds"
    costs: dict[str, float] = {}
    refused: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="tvmp-grid-"))
    try:
        for grid in ([None] if planner else []) + list(grids):
            key = "planner" if grid is None else f"{grid[0]}x{grid[1]}"
            try:
                built = compile_model(model, tmp / key, replace(options, patches=grid, tuning_records=None))
            except TvmPatchError as why:
                refused[key] = str(why).splitlines()[0]
                continue
            stages = built.report.get("patch_stages", [])
            if not stages or (grid is not None and tuple(stages[0]["grid"]) != grid):
                refused[key] = built.report.get("patch_refused", "no patch stage with this grid")
                continue
            if grid is None:  # the planner's choice under the cap, measured under its own name
                key = "{}x{}".format(*stages[0]["grid"])
                if key in costs:
                    continue
            if key in costs:
                continue
            out = built.out_dir
            runs = [run_compiled(out, device=device).report[unit] for _ in range(1 if device == "qemu" else 3)]
            costs[key] = sorted(runs)[len(runs) // 2]
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not costs:
        raise TvmPatchError("no patch grid fits: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    best = min(costs, key=costs.get)
    nh, nw = (int(v) for v in best.split("x"))
    return GridChoice((nh, nw), costs, refused, unit)
