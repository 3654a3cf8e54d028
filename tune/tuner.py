"""The tuning loop: tasks -> MetaSchedule (evolutionary search, XGBoost) -> records.json.

    extract_tasks -> one TuneContext per kernel (design space + SramCap budget)
                  -> tune_tasks (gradient task scheduler, XGBoost cost model, our builder/runner)
                  -> apply the best records to the program and plan its arena (must fit the cap)
                  -> records.json (header: model, target, cap; MetaSchedule's JSONDatabase entries)

Resume: when the output file exists (same model and target), its records seed the database:
the search starts from them and the new trials are added to them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from tvm_patch_core.capture import native_stderr
from tvm_patch_core.errors import TuneError
from tvm_patch_core.options import CompileOptions, Schedule
from tvm_patch_core.progress import Progress

from .grid import GridChoice, search_grid
from .postproc import Rejections, SramCap
from .records import (
    apply_records,
    check_owner,
    header_for,
    read_records,
    unpack_database,
    write_records,
)
from .runners import make_runner, measure_untuned, tuning_target
from .space import design_space, search_strategy
from .tasks import arena_size, extract_tasks


@dataclass(frozen=True)
class TuneSettings:
    trials: int = 64  # measured candidates, over all kernels
    runner: str = "host"  # host | qemu
    rpc_tracker: str | None = None  # HOST:PORT: measure on TVM RPC servers instead
    rpc_key: str | None = None
    trials_per_iter: int = 8
    population: int = 64
    seed: int = 0
    verbose: bool = False
    grid_search: bool = True  # with --pass patch and no --patches: measure grids, keep the fastest


@dataclass
class TuneSummary:
    records: Path
    tasks: list[str]
    skipped: dict[str, str]
    trials: int
    rejected: int
    best: dict[str, float]  # kernel -> fastest measured (seconds; QEMU: instructions x 1e-9)
    untuned_arena: int
    tuned_arena: int
    sram_cap: int | None
    seconds: float
    resumed_records: int = 0
    applied: list = field(default_factory=list)
    grid: GridChoice | None = None  # when the patch grid was searched


@derived_object
class ProgressCallback(PyMeasureCallback):
    """Trials done, best time so far and candidates the cap rejected, on one line."""

    def __init__(self, names: list[str], total: int, rejections: Rejections, unit: str) -> None:
        super().__init__()
        self.names, self.rejections, self.unit = names, rejections, unit
        self.best: dict[str, float] = {}
        self.trials = 0
        self.bar = Progress("tuning", total)

    def apply(
        self,
        task_scheduler: object,
        task_id: int,
        measure_candidates: list,
        builder_results: list,
        runner_results: list,
    ) -> None:
        name = self.names[task_id]
        for r in runner_results:
            self.trials += 1
            self.bar.total = max(self.bar.total, self.trials)  # the last round may overshoot --trials
            if r.error_msg is None and r.run_secs:
                t = sum(float(s) for s in r.run_secs) / len(r.run_secs)
                self.best[name] = min(self.best.get(name, t), t)
            total = sum(self.best.values())
            best = f"{total * 1e9:,.0f} instr" if self.unit == "instructions" else f"{total * 1e6:,.1f} us"
            self.bar.step(f"best sum {best}, cap rejected {self.rejections.total}")


@contextlib.contextmanager
def _without_tensor_intrinsics():
    """TuneContext() imports tvm.s_tir.tensor_intrin (25-50 s here: hundreds of TVMScript
    intrinsics for GPUs and x86). This search space uses none, so stand in an empty module
    while the contexts are made and tuned; the real one imports normally afterwards."""
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        yield
        return
    sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        if sys.modules.get(name) is not None and not hasattr(sys.modules[name], "__file__"):
            del sys.modules[name]


@contextlib.contextmanager
def _quiet(verbose: bool):
    log = logging.getLogger("tvm.s_tir.meta_schedule")
    old = log.level
    if not verbose:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(old)


def _logger(work_dir: Path, name: str) -> logging.Logger:
    log = logging.getLogger(f"tvm_patch.tune.{name}")
    log.handlers.clear()
    log.addHandler(logging.FileHandler(work_dir / f"{name}.log"))
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def tune_model(model_path: str | Path, options: CompileOptions, settings: TuneSettings, out: str | Path) -> TuneSummary:
    start = time.monotonic()
    out = Path(out)
    grid = None
    if options.schedule is Schedule.PATCH and options.patch.grid is None and settings.grid_search:
        grid = search_grid(model_path, options, settings.runner)  # a whole-program choice, first
        options = replace(options, patch=replace(options.patch, grid=grid.grid))
    taskset = extract_tasks(model_path, options)
    header = header_for(
        taskset.model,
        taskset.board,
        sram_cap=options.sram_cap,
        schedule=str(options.schedule),
        runner="rpc" if settings.rpc_tracker else settings.runner,
    )
    if options.schedule is Schedule.PATCH and options.patch.grid is not None:
        header["patch_grid"] = list(options.patch.grid)
    if grid is not None:
        header["patch_grid_costs"] = {"unit": grid.unit, **{f"{a}x{b}": v for (a, b), v in grid.costs.items()}}
        header["patch_grid_refused"] = grid.refused
    previous = None
    if out.exists():
        previous = read_records(out)
        check_owner(previous, out, taskset.model, taskset.board)
    builder, runner = make_runner(settings.runner, taskset.board, settings.rpc_tracker, settings.rpc_key)
    target = tuning_target("rpc" if settings.rpc_tracker else settings.runner, taskset.board)
    rejections = Rejections()
    names = [t.name for t in taskset.tasks]
    unit = "instructions" if settings.runner == "qemu" and not settings.rpc_tracker else "seconds"
    progress = ProgressCallback(names, settings.trials, rejections, unit)
    with tempfile.TemporaryDirectory(prefix="tvmp-tune-") as tmp, _without_tensor_intrinsics():
        work = Path(tmp)
        database = unpack_database(previous or {}, work / "db")
        resumed = len(previous.get("records", [])) if previous else 0
        contexts = []
        for i, task in enumerate(taskset.tasks):
            cap = [] if task.budget is None else [SramCap(task.name, task.budget, rejections)]
            contexts.append(
                ms.TuneContext(
                    mod=task.module,
                    target=target,
                    space_generator=design_space(cap),
                    search_strategy=search_strategy(settings.population),
                    task_name=task.name,
                    rand_state=settings.seed + i,
                    num_threads=1,
                    logger=_logger(work, task.name),
                ).clone()
            )
        with _quiet(settings.verbose), native_stderr() as tvm_log:
            ms.tune_tasks(
                tasks=contexts,
                task_weights=[t.weight for t in taskset.tasks],
                work_dir=str(work),
                max_trials_global=settings.trials,
                num_trials_per_iter=settings.trials_per_iter,
                builder=builder,
                runner=runner,
                database=database,
                cost_model="xgb",
                measure_callbacks=[*ms.MeasureCallback.create("default"), progress],
                task_scheduler="gradient",
            )
        progress.bar.done()
        with _quiet(settings.verbose), native_stderr() as untuned_log:
            per_layer = taskset.lowered.per_layer
            base = measure_untuned(builder, runner, target, {t.name: per_layer.kernels[t.name] for t in taskset.tasks})
        if settings.verbose:  # TVM's own C++ messages (LLVM warnings of every candidate build)
            for line in (*tvm_log, *untuned_log):
                print(f"tvm: {line}", file=sys.stderr)
        untuned = {str(tvm_ffi.structural_hash(t.module)): base[t.name] for t in taskset.tasks if t.name in base}
        header["untuned_secs"] = untuned
        tuned, applied = apply_records(
            taskset.lowered.program, taskset.lowered.per_layer, database, untuned, options.sram_cap
        )
        tuned_arena = arena_size(tuned)
        if options.sram_cap is not None and tuned_arena > options.sram_cap:
            raise TuneError(
                f"the tuned program's arena is {tuned_arena:,} B, over --sram-cap {options.sram_cap:,} B "
                "(the cap postprocessor's budget was exceeded by the arena planner's packing)"
            )
        write_records(out, header, work / "db")
    return TuneSummary(
        out,
        names,
        taskset.skipped,
        progress.trials,
        rejections.total,
        progress.best,
        taskset.untuned_arena,
        tuned_arena,
        options.sram_cap,
        time.monotonic() - start,
        resumed,
        applied,
        grid,
    )


__all__ = ["TuneSettings", "TuneSummary", "tune_model"]
