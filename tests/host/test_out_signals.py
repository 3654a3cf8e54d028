"""A compile interrupted by SIGINT or SIGTERM leaves no staging folder and OUT as it was; one
killed by SIGKILL leaves a staging folder that the next compile of that OUT removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.models import tiny
from tvm_patch_core.outdir import MARKER

TVMC = str(Path(sys.executable).parent / "tvmc")


def _start(model: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [TVMC, "compile", str(model), "--target", "cortex-m4", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_staging(out: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = list(out.parent.glob(f".{out.name}.tvmc-staging-*"))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"compile ended before its staging folder was seen: {proc.communicate()}")
        time.sleep(0.005)
    pytest.fail("no staging folder appeared")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny.chain(tmp_path_factory.mktemp("sig") / "chain.onnx", layers=6, channels=16, size=32)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.slow
@pytest.mark.parametrize("sig, rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_compile_cleans_up(model, tmp_path, sig, rc):
    out = tmp_path / "out"
    proc = _start(model, out)
    _wait_for_staging(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == rc, err
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_interrupted_recompile_keeps_the_previous_out(model, tmp_path):
    out = tmp_path / "out"
    assert (
        subprocess.run(
            [TVMC, "compile", str(model), "--target", "host", "-o", str(out)], capture_output=True, check=False
        ).returncode
        == 0
    )
    before = sorted(p.name for p in out.iterdir())
    proc = _start(model, out)
    _wait_for_staging(out, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert sorted(p.name for p in out.iterdir()) == before and (out / MARKER).is_file()
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_killed_compile_is_cleaned_by_the_next(model, tmp_path):
    out = tmp_path / "out"
    proc = _start(model, out)
    staging = _wait_for_staging(out, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert staging.exists()  # SIGKILL cannot be handled
    done = subprocess.run(
        [TVMC, "compile", str(model), "--target", "host", "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not staging.exists() and _leftovers(tmp_path) == [] and (out / MARKER).is_file()
