"""`tvmc tune` on a small conv chain (host runner): the cap holds, the records reproduce, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tvm

from tests.models import zoo
from tvm_patch.compile import compile_model
from tvm_patch.run import run_compiled
from tvm_patch.targets.workspace import workspaces
from tvm_patch.tune.grid import search_grid
from tvm_patch.tune.records import apply_records, open_records
from tvm_patch.tune.tasks import arena_size, extract_tasks, task_module
from tvm_patch.tune.tuner import TuneSettings, tune_model
from tvm_patch_core.boards import board_for
from tvm_patch_core.errors import TuneError
from tvm_patch_core.options import CompileOptions, PatchOptions


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Two plain convolutions (no depthwise: those run in place and keep their schedule)."""
    path = tmp_path_factory.mktemp("tune") / "chain.onnx"
    return zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8)], 3, 16), path)


@pytest.mark.slow
def test_tune_under_cap_records_reproduce_and_resume(chain, tmp_path):
    untuned = compile_model(chain, tmp_path / "untuned", CompileOptions(target="host"))
    cap = untuned.report.peak_sram_bytes + 1024  # tight: most tiled candidates need more
    options = CompileOptions(target="host", sram_cap=cap)
    records = tmp_path / "records.json"
    s = tune_model(chain, options, TuneSettings(trials=16, trials_per_iter=8), records)
    assert s.trials >= 8 and s.rejected > 0, s
    assert s.tuned_arena <= cap

    # Every measured candidate, not only the best, fits its kernel's budget: workspace read
    # from the candidate's lowered TIR, exactly as tvmc compile reads it.
    tasks = {t.name: t for t in extract_tasks(chain, options).tasks}
    doc, database = open_records(records, chain, board_for("host"))
    assert doc["records"], "no candidate was measured"
    checked = 0
    for task in tasks.values():
        mod = task_module(task.func)
        if not database.has_workload(mod):
            continue
        for rec in database.get_top_k(database.commit_workload(mod), 100):
            checked += 1
            sch = tvm.s_tir.Schedule(mod)
            rec.trace.apply_to_schedule(sch, remove_postproc=False)
            assert workspaces(sch.mod).get("main", 0) <= task.budget, task.name
    assert checked == len(doc["records"])

    # Compiling with the records applies the tuned schedules (same TIR) and respects the cap in
    # the built arena (report.json reads the ELF's tvmp_arena symbol).
    tuned = compile_model(chain, tmp_path / "tuned", CompileOptions(target="host", tuning_records=str(records)))
    assert tuned.report.peak_sram_bytes <= cap
    applied = {a.kernel: a for a in s.applied if a.used}
    assert applied, "no record beat InlineKernels; nothing to check"
    kernels = tuned.report.tuning["kernels"]
    assert {k: v["scheduled_hash"] for k, v in kernels.items()} == {k: a.scheduled_hash for k, a in applied.items()}

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype("float32")
    want = run_compiled(tmp_path / "untuned", device="host", inputs=[x]).outputs[0]
    got = run_compiled(tmp_path / "tuned", device="host", inputs=[x]).outputs[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))

    # Resume: a second run starts from the file's records and adds to them.
    before = len(json.loads(records.read_text())["records"])
    again = tune_model(chain, options, TuneSettings(trials=8, trials_per_iter=8, seed=1), records)
    assert again.resumed_records == before
    assert len(json.loads(records.read_text())["records"]) > before

    # Records tuned under this cap, applied under a tighter one, keep to the tighter one.
    tight = untuned.report.peak_sram_bytes
    ts = extract_tasks(chain, CompileOptions(target="host"))
    _, database = open_records(records, chain, board_for("host"))
    program, _ = apply_records(ts.lowered.program, ts.lowered.per_layer, database, None, tight)
    assert arena_size(program) <= tight


def test_tasks_are_the_untouched_kernels_with_budgets(chain):
    ts = extract_tasks(chain, CompileOptions(target="host", sram_cap=64 * 1024))
    graph = ts.lowered.program.graph
    assert [t.name for t in ts.tasks] == [c.kernel for c in graph.calls]
    # budget = cap - the arena bytes live at the kernel's step (input + output of that conv)
    sizes = {n: t.nbytes for n, t in graph.tensors.items()}
    first = graph.calls[0]
    live = sizes[first.inputs[0]] + sizes[first.outputs[0]]
    assert ts.tasks[0].budget == 64 * 1024 - live


def test_depthwise_kernels_that_run_in_place_are_not_tasks(tmp_path):
    model = zoo.save(
        zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8, groups=8)], 3, 16), tmp_path / "dw.onnx"
    )
    ts = extract_tasks(model, CompileOptions(target="host"))
    assert len(ts.tasks) == 1 and len(ts.skipped) == 1
    assert "in place" in next(iter(ts.skipped.values()))


def test_untuned_arena_over_the_cap_is_refused(chain):
    with pytest.raises(TuneError, match="over --sram-cap 1,024 B"):
        extract_tasks(chain, CompileOptions(target="host", sram_cap=1024))


@pytest.mark.slow
def test_patch_grid_is_searched_recorded_and_reused(tmp_path):
    model = zoo.save(
        zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8), zoo.ConvSpec(8)], 3, 16), tmp_path / "c.onnx"
    )
    options = CompileOptions(target="host", schedule="patch", patch=PatchOptions(split=2))
    choice = search_grid(model, options, "host", grids=((1, 1), (2, 2)), planner=False)
    measured = {f"{a}x{b}" for a, b in choice.costs}
    assert measured | set(choice.refused) == {"1x1", "2x2"} and choice.grid in ((1, 1), (2, 2))

    records = tmp_path / "records.json"
    grid = CompileOptions(target="host", schedule="patch", patch=PatchOptions(split=2, grid=(2, 2)))
    s = tune_model(model, grid, TuneSettings(trials=4, trials_per_iter=4), records)
    assert json.loads(records.read_text())["patch_grid"] == [2, 2] and s.grid is None  # given, not searched
    options = CompileOptions(target="host", schedule="patch", patch=PatchOptions(split=2), tuning_records=str(records))
    built = compile_model(model, tmp_path / "o", options)
    assert built.report.patch_stages[0].grid == (2, 2)
