"""`tvmc compile` then `tvmc run`, as a user types them: every file OUT promises is there."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.models import zoo
from tvm_patch.cli import main


@pytest.mark.slow
def test_compile_and_run_on_host(tmp_path, capsys):
    model = zoo.save(
        zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8, groups=8)], 3, 16), tmp_path / "chain.onnx"
    )
    out = tmp_path / "out"
    assert main(["compile", str(model), "--target", "host", "-o", str(out), "--output-format", "mlf"]) == 0
    assert "peak SRAM" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    for key in (
        "model",
        "target",
        "board",
        "schedule",
        "peak_sram_bytes",
        "lower_bound_bytes",
        "flash_bytes",
        "macs",
        "layers",
    ):
        assert key in report, key
    assert report["schedule"] == "layer" and report["board"] == "host"
    assert [layer["op"] for layer in report["layers"]] == ["nn.conv2d", "nn.conv2d"]
    # 16x16x3 -> 8x8x8 (stride 2, 3x3) -> 8x8x8 depthwise: MACs counted per layer.
    assert [layer["macs"] for layer in report["layers"]] == [8 * 8 * 8 * 3 * 9, 8 * 8 * 8 * 1 * 9]
    assert (out / "model.elf").is_file() and (out / "project" / "Makefile").is_file()
    assert (out / "src" / "tvmgen_chain.h").is_file() and (out / "arena_plan.txt").is_file()
    with tarfile.open(out / "model.tar") as tar:
        assert "metadata.json" in tar.getnames()

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype("float32")
    np.savez(tmp_path / "x.npz", input=x)
    rc = main(
        [
            "run",
            str(out),
            "--device",
            "host",
            "--inputs",
            str(tmp_path / "x.npz"),
            "--outputs",
            str(tmp_path / "y.npz"),
            "--report",
            str(tmp_path / "run.json"),
            "--print-top",
            "3",
            "--print-time",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ms (host)" in printed and "[" in printed
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["device"] == "host" and run["host_seconds"] > 0 and run["outputs"][0]["crc32"]
    y = np.load(tmp_path / "y.npz")[report["outputs"][0]["name"]]
    import onnxruntime as ort

    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_console_script_is_installed():
    """pip puts `tvmc` beside the interpreter (PATH shims, e.g. pyenv's, may lag behind)."""
    script = Path(sys.executable).parent / "tvmc"
    proc = subprocess.run([str(script), "--help"], check=False, capture_output=True, text=True)
    assert proc.returncode == 0 and "compile" in proc.stdout and "run" in proc.stdout


def test_run_without_compile_says_what_to_do(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nothing"), "--device", "host"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tvmc compile" in err
