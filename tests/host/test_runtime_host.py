"""The C runtime and harness compiled with the host gcc and run natively.

Test models are hand-written C in tests/data/runtime/<name>/ implementing the
tvmp_model.h contract; "conv" links a real TVM C-backend kernel.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tvm_patch.targets.project import export_project
from tvm_patch.targets.runner import run_elf
from tvm_patch.targets.toolchain import (
    build_elf,
    elf_sizes,
    include_dirs,
    runtime_dir,
    symbol_size,
)
from tvm_patch_core.boards import board_for
from tvm_patch_core.errors import RunError

DATA = Path(__file__).resolve().parents[1] / "data" / "runtime"
HOST = board_for("host")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


def build(name: str, out: Path, extra_sources: tuple[Path, ...] = ()) -> Path:
    return build_elf(HOST, [DATA / name / "model.c", *extra_sources], [], out / f"{name}.elf")


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("host")
    return {name: build(name, out) for name in ("copy", "error", "fault", "hang")}


def test_copy_model_runs_and_concatenates_inputs_and_outputs(elves: dict[str, Path]) -> None:
    """Two inputs (40 B, 24 B) in, two outputs out, in slot order, through the workspace."""
    data = bytes(range(64))
    result = run_elf(HOST, elves["copy"], data, expected_output_bytes=64)
    expected = bytes(b + 1 for b in data[40:]) + bytes(b + 1 for b in data[:40])
    assert result.outputs == expected
    assert (result.device, result.board, result.rc) == ("host", "host", 0)
    assert result.count_unit == "ns" and result.count >= 0
    assert result.stack_bytes is None
    assert result.stdout.splitlines()[-1] == "TVMP_DONE"


def test_workspace_exhaustion_reports_the_numbers(elves: dict[str, Path]) -> None:
    """4000 B asked of a 64 B region with 32 B in use: all three numbers in the message."""
    with pytest.raises(RunError, match=r"rc=-1: TVMBackendAllocWorkspace: requested 4000 B") as err:
        run_elf(HOST, elves["error"], u32(0), 4)
    assert "workspace region is 64 B with 32 B used" in str(err.value)


def test_kernel_error_parts_are_joined(elves: dict[str, Path]) -> None:
    with pytest.raises(RunError, match=r"ValueError: Mismatched A\.ndim on argument #0"):
        run_elf(HOST, elves["error"], u32(1), 4)


def test_non_lifo_free_is_an_error(elves: dict[str, Path]) -> None:
    with pytest.raises(RunError, match="frees must be LIFO"):
        run_elf(HOST, elves["error"], u32(2), 4)


def test_nonzero_rc_without_message(elves: dict[str, Path]) -> None:
    with pytest.raises(RunError, match="rc=5: tvmp_model_run failed and recorded no message"):
        run_elf(HOST, elves["error"], u32(3), 4)


@pytest.mark.parametrize(("kind", "signal_name"), [(0, "SIGILL"), (1, "SIGSEGV"), (2, "SIGSEGV")])
def test_crash_names_the_signal(elves: dict[str, Path], kind: int, signal_name: str) -> None:
    with pytest.raises(RunError, match=f"crashed: killed by {signal_name}"):
        run_elf(HOST, elves["fault"], u32(kind, 16), 4)


def test_hang_times_out(elves: dict[str, Path]) -> None:
    with pytest.raises(RunError, match=r"hung: no TVMP_DONE after 1 s"):
        run_elf(HOST, elves["hang"], u32(0), 4, timeout_s=1.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(50), r"input.bin: too short \(slot 1: wanted 24 B, got 10 B\)"),
        (bytes(65), "input.bin: longer than the model's inputs"),
    ],
)
def test_wrong_input_size(elves: dict[str, Path], data: bytes, message: str) -> None:
    with pytest.raises(RunError, match=f"failed before running the model: {message}"):
        run_elf(HOST, elves["copy"], data, 64)


def test_wrong_output_size(elves: dict[str, Path]) -> None:
    with pytest.raises(RunError, match="wrote 64 B of output, expected 60 B"):
        run_elf(HOST, elves["copy"], bytes(64), 60)


def test_sizes_and_arena_symbol(elves: dict[str, Path]) -> None:
    sizes = elf_sizes(elves["copy"])
    assert sizes["flash"] == sizes["text"] + sizes["rodata"] + sizes["data"]
    assert sizes["text"] > 0 and sizes["bss"] >= 256
    assert symbol_size(elves["copy"], "tvmp_arena") == 256  # 160 B of slots + 96 B workspace


def test_runtime_never_allocates(tmp_path: Path) -> None:
    """The runtime's objects reference no allocator at all."""
    objects = []
    for name in ("tvmp_runtime.c", "tvmp_text.c"):
        obj = tmp_path / (name + ".o")
        cmd = ["gcc", "-O2", "-c", *(f"-I{d}" for d in include_dirs()), str(runtime_dir() / name)]
        subprocess.run([*cmd, "-o", str(obj)], check=True)
        objects.append(str(obj))
    undefined = subprocess.run(["nm", "-u", *objects], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in undefined.stdout.splitlines() if line.strip()}
    assert not names & {"malloc", "calloc", "realloc", "free"}, names


def _conv_kernel():
    spec = importlib.util.spec_from_file_location("conv_kernel", DATA / "conv" / "conv_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tvm_c_backend_kernel(tmp_path: Path) -> None:
    """A TVM C-backend conv kernel links against the runtime and matches numpy."""
    conv = _conv_kernel()
    kernel = conv.build_kernel({"kind": "c"}, tmp_path)
    elf = build_elf(HOST, [DATA / "conv" / "model.c", kernel], [], tmp_path / "conv.elf")
    a, w = conv.inputs()
    result = run_elf(HOST, elf, a.tobytes() + w.tobytes(), 1024)
    got = np.frombuffer(result.outputs, np.float32).reshape(conv.reference(a, w).shape)
    np.testing.assert_allclose(got, conv.reference(a, w), rtol=1e-5, atol=1e-5)


def test_exported_host_project_builds_and_runs(tmp_path: Path) -> None:
    project = export_project(HOST, [DATA / "copy" / "model.c"], [], tmp_path / "project")
    subprocess.run(["make", "-s"], cwd=project, check=True, capture_output=True)
    (project / "input.bin").write_bytes(bytes(64))
    ran = subprocess.run(["make", "-s", "run"], cwd=project, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines()[-1] == "TVMP_DONE"
    assert (project / "output.bin").read_bytes() == bytes([1] * 64)
