"""ONNX external data is read from the model's folder only, whatever the current folder is."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import tiny
from tvm_patch.compile import compile_model
from tvm_patch.run import run_compiled
from tvm_patch_core.errors import ModelLoadError
from tvm_patch_core.options import CompileOptions


def test_external_data_beside_the_model_from_another_cwd(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    path = tiny.with_external_weight(models / "m.onnx", "m.data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "m.data").write_bytes(np.zeros(4 * 3 * 9, "float32").tobytes())  # a decoy in the cwd
    monkeypatch.chdir(elsewhere)
    built = compile_model(path, tmp_path / "out", CompileOptions(target="host"))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype("float32")
    got = run_compiled(built.out_dir, device="host", inputs=[x]).outputs[0]
    monkeypatch.chdir(models)  # onnxruntime resolves the data against the model's folder too
    np.testing.assert_allclose(got, tiny.reference(path, [x])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("location", ["../secret.data", "/etc/hostname", "sub/../../secret.data"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "secret.data").write_bytes(b"\0" * 432)
    path = tiny.with_external_weight(models / "m.onnx", location, data_file=tmp_path / "secret.data")
    with pytest.raises(ModelLoadError, match=r"outside the model's folder|not a file name inside"):
        compile_model(path, tmp_path / "out", CompileOptions(target="host"))
    assert not (tmp_path / "out").exists()


def test_external_data_through_a_symlink_out_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "secret.data").write_bytes(b"\0" * 432)
    (models / "link.data").symlink_to(tmp_path / "secret.data")
    path = tiny.with_external_weight(models / "m.onnx", "link.data", data_file=tmp_path / "secret.data")
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        compile_model(path, tmp_path / "out", CompileOptions(target="host"))


def test_missing_or_short_external_data_is_named(tmp_path):
    path = tiny.with_external_weight(tmp_path / "m.onnx", "m.data")
    (tmp_path / "m.data").write_bytes(b"\0" * 10)
    with pytest.raises(ModelLoadError, match=r"'W'.*does not match"):
        compile_model(path, tmp_path / "out", CompileOptions(target="host"))
    (tmp_path / "m.data").unlink()
    with pytest.raises(ModelLoadError, match=r"'W'.*does not exist"):
        compile_model(path, tmp_path / "out", CompileOptions(target="host"))
