"""A damaged or hostile records file gets one `error:` line (BadRecords), never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.models import tiny
from tvm_patch.cli import main


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("tuned")
    model = tiny.conv(d / "m.onnx")
    assert main(["tune", str(model), "--target", "host", "--trials", "4", "-o", str(d / "rec.json")]) == 0
    doc = json.loads((d / "rec.json").read_text())
    assert doc["records"], "the fixture needs at least one record to damage"
    return model, doc


def _first(insts: list, kind: str) -> list:
    return next(i for i in insts if i[0] == kind)


def undefined_loop_variable(doc):
    _first(doc["records"][0][1][0][0], "Reorder")[1][0] = "l999"


def unknown_instruction(doc):
    doc["records"][0][1][0][0][0][0] = "NoSuchInstruction"


def corrupted_workload(doc):
    blob = doc["workloads"][0][1]
    doc["workloads"][0][1] = blob[:40] + "AAAA" + blob[80:]


def index_out_of_range(doc):
    doc["records"][0][0] = 7


def records_not_a_list(doc):
    doc["records"] = "x"


@pytest.mark.parametrize(
    "damage", [undefined_loop_variable, unknown_instruction, corrupted_workload, index_out_of_range, records_not_a_list]
)
def test_damaged_records(tuned, tmp_path, capsys, damage):
    model, doc = tuned
    doc = copy.deepcopy(doc)
    damage(doc)
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps(doc))
    capsys.readouterr()
    rc = main(["compile", str(model), "--target", "host", "--tuning-records", str(rec), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "BadRecords" in err and "damaged" in err, err
    assert not (tmp_path / "o").exists()


def test_binary_garbage(tuned, tmp_path, capsys):
    model, _ = tuned
    rec = tmp_path / "rec.json"
    rec.write_bytes(bytes(range(256)) * 8)
    capsys.readouterr()
    rc = main(["compile", str(model), "--target", "host", "--tuning-records", str(rec), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "not a tvm-patch records file" in err, err
