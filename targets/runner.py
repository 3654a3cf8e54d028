"""Run a built program on the host or in QEMU and read back its outputs and counts.

The program (``targets/runtime/tvmp_main.c``) reads ``input.bin`` from its
working directory, writes ``output.bin`` and prints::

    TVMP_RESULT rc=0 count=1234560 unit=instructions stack=1184
    TVMP_ERROR <message>        (only when rc != 0)
    TVMP_DONE

or ``TVMP_FAULT <exception> pc=0x... ...`` when it crashes. Pass/fail is decided
from those lines, never from the exit status alone. Each run gets a fresh
temporary directory. QEMU runs with ``-icount shift=0`` (one instruction per
virtual nanosecond) so the count is deterministic, and without a network.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tvm_patch_core.boards import Board
from tvm_patch_core.errors import RunError

from .toolchain import require_tools

SENTINEL = "TVMP_DONE"
_TAIL_LINES = 5
_RESULT = re.compile(r"^TVMP_RESULT rc=(-?\d+) count=(\d+) unit=(\w+) stack=(\d+|none)\s*$")


@dataclass(frozen=True)
class RunResult:
    device: str  # "host" or "qemu"
    board: str
    rc: int
    count: int
    count_unit: str  # "instructions" (QEMU) or "ns" (host)
    stack_bytes: int | None
    outputs: bytes
    stdout: str


def qemu_command(board: Board, elf: Path) -> list[str]:
    return [
        "qemu-system-arm",
        "-machine",
        str(board.qemu_machine),
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-net",
        "none",
        "-kernel",
        str(elf),
    ]


def _tail(lines: list[str]) -> str:
    shown = [line for line in lines if line.strip()][-_TAIL_LINES:]
    return " | ".join(shown) if shown else "(no output)"


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def run_elf(
    board: Board,
    elf: Path | str,
    input_bytes: bytes,
    expected_output_bytes: int,
    timeout_s: float = 300.0,
) -> RunResult:
    """Run ``elf`` with ``input_bytes`` as input.bin; raise RunError unless it succeeds."""
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise RunError(f"{elf} does not exist")
    require_tools(board, build=False, run=True)
    device = "host" if board.is_host else "qemu"
    cmd = [str(elf)] if board.is_host else qemu_command(board, elf)
    where = f"{elf.name} on {board.name}"
    with tempfile.TemporaryDirectory(prefix="tvmp-run-") as tmp:
        workdir = Path(tmp)
        (workdir / "input.bin").write_bytes(input_bytes)
        try:
            done = subprocess.run(
                cmd,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as hung:
            partial = (hung.stdout or b"").decode(errors="replace").splitlines()
            raise RunError(
                f"{where} hung: no {SENTINEL} after {timeout_s:g} s; last output: {_tail(partial)}"
            ) from None
        stdout = done.stdout.decode(errors="replace")
        lines = stdout.splitlines()

        fault = next((line for line in lines if line.startswith("TVMP_FAULT")), None)
        if fault is not None:
            raise RunError(f"{where} crashed: {fault[len('TVMP_FAULT') :].strip()}")
        if board.is_host and done.returncode < 0:
            raise RunError(f"{where} crashed: killed by {_signal_name(done.returncode)}; last output: {_tail(lines)}")
        if SENTINEL not in (line.strip() for line in lines):
            raise RunError(f"{where} ended (exit {done.returncode}) without {SENTINEL}; last output: {_tail(lines)}")
        errors = [line[len("TVMP_ERROR") :].strip() for line in lines if line.startswith("TVMP_ERROR")]
        result = next((m for m in map(_RESULT.match, lines) if m), None)
        if result is None:
            detail = errors[0] if errors else f"no TVMP_RESULT line; last output: {_tail(lines)}"
            raise RunError(f"{where} failed before running the model: {detail}")
        rc = int(result.group(1))
        if rc != 0:
            detail = errors[0] if errors else "no TVMP_ERROR message"
            raise RunError(f"{where}: model returned rc={rc}: {detail}")
        output_path = workdir / "output.bin"
        outputs = output_path.read_bytes() if output_path.exists() else b""
        if len(outputs) != expected_output_bytes:
            raise RunError(f"{where} wrote {len(outputs)} B of output, expected {expected_output_bytes} B")
    stack = result.group(4)
    return RunResult(
        device=device,
        board=board.name,
        rc=rc,
        count=int(result.group(2)),
        count_unit=result.group(3),
        stack_bytes=None if stack == "none" else int(stack),
        outputs=outputs,
        stdout=stdout,
    )
