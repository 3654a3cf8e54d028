"""The patch grid as a tuning choice (issue 4, item 2): measure each feasible grid, keep the fastest.

A grid changes the whole program (the stage's windows, halos, scratch and every budget
after it), not one kernel's schedule, so each candidate grid is compiled as `tvmc compile
--pass patch --patches NxN` would compile it and measured whole: QEMU instruction count with
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


def search_grid(model: str | Path, options: CompileOptions, runner: str, grids=GRIDS) -> GridChoice:
    from ..compile import compile_model
    from ..run import run_compiled

    device = "qemu" if runner == "qemu" else "host"
    unit = "instructions" if device == "qemu" else "host_seconds"
    costs: dict[str, float] = {}
    refused: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="tvmp-grid-"))
    try:
        for nh, nw in grids:
            key = f"{nh}x{nw}"
            try:
                built = compile_model(model, tmp / key, replace(options, patches=(nh, nw), tuning_records=None))
            except TvmPatchError as why:
                refused[key] = str(why).splitlines()[0]
                continue
            stages = built.report.get("patch_stages", [])
            if not stages or tuple(stages[0]["grid"]) != (nh, nw):
                refused[key] = built.report.get("patch_refused", "no patch stage with this grid")
                continue
            runs = [run_compiled(tmp / key, device=device).report[unit] for _ in range(1 if device == "qemu" else 3)]
            costs[key] = sorted(runs)[len(runs) // 2]
            shutil.rmtree(tmp / key, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not costs:
        raise TvmPatchError("no patch grid fits: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    best = min(costs, key=costs.get)
    nh, nw = (int(v) for v in best.split("x"))
    return GridChoice((nh, nw), costs, refused, unit)
