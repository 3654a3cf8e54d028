"""The C the emitter writes, kept as golden files so a diff shows what changed.

Two small models: a 3-conv chain built per layer, and the same chain with a 2-layer patch
stage on a 2x2 grid. Accept an intended change with `pytest tests/host/test_golden_c.py
--update-golden` and commit the files with it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.models import tiny
from tvm_patch.compile import compile_model
from tvm_patch_core.options import CompileOptions, PatchOptions, Schedule

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
EMITTED = ("tvmgen_chain.c", "tvmgen_chain.h", "tvmgen_chain_weights.c", "tvmp_model.h")
CASES = {
    "per_layer": CompileOptions(target="host"),
    "patched": CompileOptions(target="host", schedule=Schedule.PATCH, patch=PatchOptions(split=2, grid=(2, 2))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_emitted_c_matches_the_golden_files(tmp_path, request, case):
    model = tiny.chain(tmp_path / "chain.onnx", layers=3, channels=4, size=8)
    built = compile_model(model, tmp_path / "out", CASES[case])
    assert (built.report.schedule == "patch") == (case == "patched")
    folder = GOLDEN / case
    for name in EMITTED:
        got = (built.out_dir / "src" / name).read_text()
        golden = folder / name
        if request.config.getoption("--update-golden"):
            folder.mkdir(parents=True, exist_ok=True)
            golden.write_text(got)
            continue
        want = golden.read_text()
        if got != want:
            diff = difflib.unified_diff(
                want.splitlines(), got.splitlines(), f"golden/{case}/{name}", "emitted", lineterm=""
            )
            shown = "\n".join(list(diff)[:80])
            pytest.fail(f"{name} differs from the golden file (accept with --update-golden):\n{shown}")
