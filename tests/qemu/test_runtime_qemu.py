"""The C runtime, start-up and harness on the three QEMU mps2 boards.

Pass/fail comes from the firmware's sentinel lines (TVMP_DONE, TVMP_FAULT).
Test models are hand-written C in tests/data/runtime/<name>/; "conv" links a
real TVM kernel, as C-backend source and as an LLVM Cortex-M object.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tvm_patch.targets.project import export_project
from tvm_patch.targets.runner import run_elf
from tvm_patch.targets.toolchain import build_elf, elf_sizes, symbol_size
from tvm_patch_core.boards import BOARDS, Board, board_for
from tvm_patch_core.errors import RunError

pytestmark = pytest.mark.qemu

DATA = Path(__file__).resolve().parents[1] / "data" / "runtime"
CORTEX_M = [name for name, board in BOARDS.items() if not board.is_host]
M4 = board_for("cortex-m4")
# Iterations of the two-instruction loop in the "loop" model: 2 M instructions.
LOOP_ITERATIONS = 1_000_000


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every test model built for every board (about 0.2 s each)."""
    out = tmp_path_factory.mktemp("qemu")
    return {
        (model, name): build_elf(BOARDS[name], [DATA / model / "model.c"], [], out / f"{model}-{name}.elf")
        for model in ("copy", "loop", "fault", "hang", "error")
        for name in CORTEX_M
    }


@pytest.mark.parametrize("board_name", CORTEX_M)
def test_board_boots_runs_and_prints_the_sentinel(elves, board_name: str) -> None:
    board = BOARDS[board_name]
    data = bytes(range(64))
    result = run_elf(board, elves["copy", board_name], data, expected_output_bytes=64)
    assert result.outputs == bytes(b + 1 for b in data[40:]) + bytes(b + 1 for b in data[:40])
    assert (result.device, result.board, result.rc) == ("qemu", board_name, 0)
    assert result.count_unit == "instructions"
    assert result.count % board.instructions_per_tick == 0
    assert 0 < result.stack_bytes < 1024
    assert result.stdout.splitlines()[-1] == "TVMP_DONE"


@pytest.mark.parametrize("board_name", CORTEX_M)
def test_instruction_count_is_exact_and_repeats(elves, board_name: str) -> None:
    """N iterations of subs+bne count as 2N instructions, to one SysTick tick (40 or
    50 instructions), and the same ELF gives the same count every time."""
    board = BOARDS[board_name]
    elf = elves["loop", board_name]
    empty = run_elf(board, elf, u32(0), 4).count
    first = run_elf(board, elf, u32(LOOP_ITERATIONS), 4).count
    second = run_elf(board, elf, u32(LOOP_ITERATIONS), 4).count
    assert first == second
    assert abs((first - empty) - 2 * LOOP_ITERATIONS) <= board.instructions_per_tick


@pytest.mark.parametrize(
    ("kind", "address", "expected"),
    [
        (0, 0, r"UsageFault pc=0x[0-9a-f]{8} .*reason=UNDEFINSTR"),
        (1, 0, r"UsageFault pc=0x00000000 .*reason=INVSTATE"),  # an unset LLVM hook
        (2, 0xF0000000, r"BusFault pc=0x[0-9a-f]{8} .*addr=0xf0000000 reason=PRECISERR"),
        (3, 0, r"MemManage pc=unknown .*stack overflow.*reason=DACCVIOL,MSTKERR"),
    ],
)
def test_faults_are_named_with_pc(elves, kind: int, address: int, expected: str) -> None:
    with pytest.raises(RunError, match=f"fault-mps2-an386.elf on mps2-an386 crashed: {expected}"):
        run_elf(M4, elves["fault", "mps2-an386"], u32(kind, address), 4, timeout_s=30)


def test_stack_overflow_on_armv8m_hits_the_stack_limit(elves) -> None:
    with pytest.raises(RunError, match=r"crashed: UsageFault .*reason=STKOF"):
        run_elf(board_for("cortex-m33"), elves["fault", "mps2-an505"], u32(3, 0), 4, timeout_s=30)


def test_hang_times_out(elves) -> None:
    with pytest.raises(RunError, match=r"hang-mps2-an386.elf on mps2-an386 hung: no TVMP_DONE after 2 s"):
        run_elf(M4, elves["hang", "mps2-an386"], u32(0), 4, timeout_s=2.0)


def test_model_error_is_reported(elves) -> None:
    with pytest.raises(
        RunError,
        match=r"rc=-1: TVMBackendAllocWorkspace: requested 4000 B .*"
        r"region is 64 B with 32 B used",
    ):
        run_elf(M4, elves["error", "mps2-an386"], u32(0), 4)


def test_sizes_of_a_cortex_m_program(elves) -> None:
    elf = elves["copy", "mps2-an386"]
    sizes = elf_sizes(elf)
    assert sizes["flash"] == sizes["text"] + sizes["rodata"] + sizes["data"]
    assert sizes["stack_reserved"] == 32 * 1024
    assert sizes["bss"] >= 256
    assert symbol_size(elf, "tvmp_arena") == 256


def test_stack_size_is_configurable(tmp_path: Path) -> None:
    elf = build_elf(M4, [DATA / "copy" / "model.c"], [], tmp_path / "small.elf", stack_bytes=4096)
    assert elf_sizes(elf)["stack_reserved"] == 4096
    assert run_elf(M4, elf, bytes(64), 64).stack_bytes < 4096


def _conv_kernel():
    spec = importlib.util.spec_from_file_location("conv_kernel", DATA / "conv" / "conv_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_conv(board: Board, kernel: Path, tmp_path: Path) -> tuple[Path, int]:
    conv = _conv_kernel()
    is_object = kernel.suffix == ".o"
    elf = build_elf(
        board,
        [DATA / "conv" / "model.c", *([] if is_object else [kernel])],
        [kernel] if is_object else [],
        tmp_path / f"conv-{board.name}.elf",
    )
    a, w = conv.inputs()
    result = run_elf(board, elf, a.tobytes() + w.tobytes(), 1024)
    got = np.frombuffer(result.outputs, np.float32).reshape(conv.reference(a, w).shape)
    np.testing.assert_allclose(got, conv.reference(a, w), rtol=1e-5, atol=1e-5)
    return elf, result.count


@pytest.mark.parametrize("board_name", CORTEX_M)
def test_tvm_llvm_object_uses_the_runtime_workspace(tmp_path: Path, board_name: str) -> None:
    """An LLVM object calls the workspace API through __TVMBackendAllocWorkspace; the
    runtime's strong definition must replace the object's weak NULL, or the kernel
    jumps to address 0 (the INVSTATE fault above)."""
    board = BOARDS[board_name]
    kernel = _conv_kernel().build_kernel(board.llvm_target, tmp_path)
    elf, count = _run_conv(board, kernel, tmp_path)
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert " D __TVMBackendAllocWorkspace" in symbols
    assert " D __TVMBackendFreeWorkspace" in symbols
    assert count > 0


def test_tvm_c_backend_kernel(tmp_path: Path) -> None:
    kernel = _conv_kernel().build_kernel({"kind": "c"}, tmp_path)
    _, count = _run_conv(M4, kernel, tmp_path)
    assert count > 0


def test_exported_project_builds_with_make_and_runs(tmp_path: Path) -> None:
    project = export_project(M4, [DATA / "error" / "model.c"], [], tmp_path / "project")
    headers = sorted(p.relative_to(project / "include").as_posix() for p in (project / "include").rglob("*.h"))
    assert headers == [
        "dlpack/dlpack.h",
        "tvm/ffi/c_api.h",
        "tvm/runtime/base.h",
        "tvm/runtime/c_backend_api.h",
    ]
    built = subprocess.run(["make", "-s"], cwd=project, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (project / "input.bin").write_bytes(u32(9))
    ran = subprocess.run(["make", "-s", "run"], cwd=project, capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result, sentinel = ran.stdout.splitlines()[-2:]
    assert re.fullmatch(r"TVMP_RESULT rc=0 count=\d+ unit=instructions stack=\d+", result)
    assert sentinel == "TVMP_DONE"
    assert (project / "output.bin").read_bytes() == u32(9)
