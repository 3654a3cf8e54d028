"""The records file `tvmc tune -o records.json` writes and `tvmc compile --tuning-records` applies.

One JSON file: a header naming the model (file name and SHA-256) and the target (board and
its LLVM target), then MetaSchedule's own JSONDatabase entries, verbatim: `workloads` (one
per tuned kernel: structural hash + the unscheduled PrimFunc) and `records` (workload index,
trace, measured times, ...). Records for another model or target are refused, naming both.

Applying: each kernel of the final program that reached it unchanged (tune/tasks.py) and
whose unscheduled PrimFunc is in the records gets the best record's trace replayed on it
instead of InlineKernels' schedule; every other kernel keeps InlineKernels.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import tvm
import tvm_ffi
from tvm.s_tir import Schedule
from tvm.s_tir.meta_schedule.database import Database, JSONDatabase

from tvm_patch_core.boards import Board
from tvm_patch_core.capture import native_stderr
from tvm_patch_core.errors import BadRecords, ForeignRecords

from ..lower import Program
from ..rewrite import Lowered
from .postproc import workspace_bytes
from .tasks import file_sha256, kernel_budgets, task_module, tunable_kernels

FORMAT = "tvm-patch/tuning-records/1"
WORKLOADS = "database_workload.json"
TUNING_RECORDS = "database_tuning_record.json"


def target_id(board: Board) -> dict:
    return {"board": board.name, "llvm": dict(board.llvm_target) if board.llvm_target else None}


def header_for(model: Path, board: Board, **extra) -> dict:
    return {
        "format": FORMAT,
        "model": Path(model).name,
        "model_sha256": file_sha256(model),
        "target": target_id(board),
        **extra,
    }


def write_records(path: Path, header: dict, database_dir: Path) -> dict:
    """Bundle a JSONDatabase folder's two files under `header` into one JSON file at `path`."""
    workloads = [json.loads(line) for line in _lines(database_dir / WORKLOADS)]
    records = [json.loads(line) for line in _lines(database_dir / TUNING_RECORDS)]
    doc = {**header, "workloads": workloads, "records": records}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    tmp.replace(path)
    return doc


def read_records(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BadRecords(f"{path}: no such records file; write one with `tvmc tune MODEL -o {path}`") from None
    except IsADirectoryError:
        raise BadRecords(f"{path}: is a folder, not a records file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRecords(f"{path}: not JSON ({type(err).__name__}); not a tvm-patch records file") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadRecords(f"{path}: not a tvm-patch records file (expected format {FORMAT!r})")
    for key in ("workloads", "records"):
        if not isinstance(doc.get(key, []), list):
            raise BadRecords(f"{path}: {key!r} is not a list; the records file is damaged, tune again")
    return doc


def check_owner(doc: dict, path: Path, model: Path, board: Board) -> None:
    """Refuse records tuned for another model or target, naming both."""
    want_model, want_target = file_sha256(model), target_id(board)
    if doc.get("model_sha256") != want_model:
        raise ForeignRecords(
            f"{path} was tuned for model {doc.get('model')} (sha256 {str(doc.get('model_sha256'))[:12]}), "
            f"not {Path(model).name} (sha256 {want_model[:12]}); tune this model with `tvmc tune`"
        )
    if doc.get("target") != want_target:
        raise ForeignRecords(
            f"{path} was tuned for target {_target_text(doc.get('target'))}, not {_target_text(want_target)}; "
            "tune for this target with `tvmc tune --target`"
        )


def _target_text(t: object) -> str:
    if not isinstance(t, dict):
        return repr(t)
    llvm = t.get("llvm") or {}
    return f"{t.get('board')} ({llvm.get('mcpu', 'host')})"


def recorded_grid(path: str | Path) -> tuple[int, int] | None:
    """The patch grid the records were tuned on (None: not a patch build)."""
    grid = read_records(Path(path)).get("patch_grid")
    return (int(grid[0]), int(grid[1])) if grid else None


def unpack_database(doc: dict, database_dir: Path) -> JSONDatabase:
    """Write the bundle's entries back as a JSONDatabase folder (MetaSchedule reads it)."""
    database_dir.mkdir(parents=True, exist_ok=True)
    (database_dir / WORKLOADS).write_text("".join(json.dumps(w) + "\n" for w in doc.get("workloads", [])))
    (database_dir / TUNING_RECORDS).write_text("".join(json.dumps(r) + "\n" for r in doc.get("records", [])))
    try:
        with native_stderr():
            return JSONDatabase(str(database_dir / WORKLOADS), str(database_dir / TUNING_RECORDS), allow_missing=False)
    except Exception as err:
        raise BadRecords(
            f"the records file for {doc.get('model', '?')} is damaged ({_first_line(err)}); tune again"
        ) from None


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = next((line for line in lines if "Check failed" in line or "Error" in line), lines[0] if lines else "")
    text = text.removeprefix("parallel_for_dynamic error with ")
    return text if len(text) <= 200 else text[:197] + "..."


def open_records(path: Path, model: Path, board: Board) -> tuple[dict, Database]:
    doc = read_records(path)
    check_owner(doc, path, model, board)
    with tempfile.TemporaryDirectory(prefix="tvmp-records-") as tmp:
        database = unpack_database(doc, Path(tmp))  # JSONDatabase reads the files once, here
    return doc, database


@dataclass(frozen=True)
class Applied:
    kernel: str
    workload_hash: str  # structural hash of the unscheduled kernel (the database key)
    scheduled_hash: str  # structural hash of the kernel as built
    run_secs: float  # the record's mean measured time (QEMU: instructions x 1e-9)
    untuned_secs: float | None = None  # InlineKernels' schedule, measured the same way
    used: bool = True  # False: the record was slower than InlineKernels, which was kept


def best_schedule(
    database: Database, func: tvm.tirx.PrimFunc, budget: int | None = None
) -> tuple[tvm.tirx.PrimFunc, float] | None:
    """The unscheduled kernel with the database's fastest trace replayed whose workspace fits
    `budget` (records of an earlier run under a larger cap may not), or None."""
    mod = task_module(func)
    if not database.has_workload(mod):
        return None
    for record in database.get_top_k(database.commit_workload(mod), 64):
        sch = Schedule(mod)
        try:
            with native_stderr():
                record.trace.apply_to_schedule(sch, remove_postproc=False)
        except Exception as err:
            raise BadRecords(
                f"a record for kernel {func.attrs.get('global_symbol', '?') if func.attrs else '?'} "
                f"does not replay ({_first_line(err)}); the records are damaged, tune again"
            ) from None
        if budget is not None and workspace_bytes(sch.mod) > budget:
            continue
        secs = [float(s) for s in record.run_secs]
        return sch.mod["main"], sum(secs) / len(secs)
    return None


def apply_records(
    program: Program,
    per_layer: Program,
    database: Database,
    untuned: dict[str, float] | None = None,
    sram_cap: int | None = None,
) -> tuple[Program, list[Applied]]:
    """`program` with the tuned kernels scheduled from `database` instead of InlineKernels;
    `untuned` (workload hash -> InlineKernels' measured seconds) keeps the default schedule
    wherever the best record is not faster; with `sram_cap`, only records whose workspace
    fits the kernel's budget count."""
    tunable, _ = tunable_kernels(program, per_layer)
    budgets = kernel_budgets(program.graph, sram_cap) if sram_cap is not None else {}
    kernels = dict(program.kernels.functions.items())
    applied = []
    for gv in list(kernels):
        if gv.name_hint not in tunable:
            continue
        best = best_schedule(database, tunable[gv.name_hint], budgets.get(gv.name_hint))
        if best is None:
            continue
        func = best[0].with_attr("global_symbol", gv.name_hint)
        workload = str(tvm_ffi.structural_hash(task_module(tunable[gv.name_hint])))
        base = (untuned or {}).get(workload)
        used = base is None or best[1] < base
        if used:
            kernels[gv] = func
        applied.append(Applied(gv.name_hint, workload, str(tvm_ffi.structural_hash(func)), best[1], base, used))
    return replace(program, kernels=tvm.IRModule(kernels)), applied


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def apply_records_file(lowered: Lowered, path: str | Path, model: Path, board: Board) -> tuple[Lowered, dict]:
    """compile_model's hook: the program with `path`'s schedules applied, and report.json's
    "tuning" entry (which kernels got which schedule)."""
    doc, database = open_records(Path(path), model, board)
    tuned, applied = apply_records(
        lowered.program, lowered.per_layer, database, doc.get("untuned_secs"), doc.get("sram_cap")
    )
    report = {
        "records": str(path),
        "sram_cap": doc.get("sram_cap"),
        "kernels": {
            a.kernel: {
                "workload_hash": a.workload_hash,
                "scheduled_hash": a.scheduled_hash,
                "run_secs": a.run_secs,
                "untuned_secs": a.untuned_secs,
            }
            for a in applied
            if a.used
        },
        "kept_default": [a.kernel for a in applied if not a.used],
    }
    return replace(lowered, program=tuned), report
