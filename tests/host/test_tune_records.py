"""Records tuned for another model or target are refused, naming both."""

from __future__ import annotations

import json

import pytest

from tests.models import zoo
from tvm_patch.cli import main
from tvm_patch_core.boards import board_for


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("foreign")
    a = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2)], 3, 16), d / "model_a.onnx")
    b = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2)], 3, 16, seed=1), d / "model_b.onnx")
    return a, b


def _records(path, model, target):
    from tvm_patch.tune.records import header_for

    path.write_text(json.dumps({**header_for(model, board_for(target)), "workloads": [], "records": []}))
    return path


def test_records_of_another_model_are_refused(models, tmp_path, capsys):
    a, b = models
    rec = _records(tmp_path / "a.json", a, "host")
    assert main(["compile", str(b), "--target", "host", "--tuning-records", str(rec), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "ForeignRecords" in err and "model_a.onnx" in err and "model_b.onnx" in err
    assert not (tmp_path / "out").exists()


def test_records_of_another_target_are_refused(models, tmp_path, capsys):
    a, _ = models
    rec = _records(tmp_path / "m4.json", a, "cortex-m4")
    assert (
        main(["compile", str(a), "--target", "cortex-m7", "--tuning-records", str(rec), "-o", str(tmp_path / "out")])
        == 1
    )
    err = capsys.readouterr().err
    assert "ForeignRecords" in err and "mps2-an386 (cortex-m4)" in err and "mps2-an500 (cortex-m7)" in err


def test_tune_refuses_to_continue_foreign_records(models, tmp_path, capsys):
    a, b = models
    rec = _records(tmp_path / "a.json", a, "host")
    assert main(["tune", str(b), "--target", "host", "--trials", "1", "-o", str(rec)]) == 1
    assert "ForeignRecords" in capsys.readouterr().err
    assert json.loads(rec.read_text())["model"] == "model_a.onnx"  # left as it was


def test_not_a_records_file(models, tmp_path, capsys):
    a, _ = models
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["compile", str(a), "--target", "host", "--tuning-records", str(bad), "-o", str(tmp_path / "o")]) == 1
    assert "not a tvm-patch records file" in capsys.readouterr().err


def test_own_records_without_entries_compile_unchanged(models, tmp_path, capsys):
    a, _ = models
    rec = _records(tmp_path / "a.json", a, "host")
    assert main(["compile", str(a), "--target", "host", "--tuning-records", str(rec), "-o", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["tuning"]["kernels"] == {}
