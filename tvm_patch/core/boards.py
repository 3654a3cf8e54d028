"""The boards tvm-patch builds for: the host, and four QEMU mps2 Cortex-M machines.

Facts below were checked against QEMU 7.2 (hw/arm/mps2.c, hw/arm/mps2-tz.c) and
on the emulator itself: a firmware read MVFR0 (0x10110021 on the M4 and M33:
single precision only; 0x10110221 on the M7: double precision too), and a loop
of known length timed with SysTick under ``-icount shift=0`` gave exactly 40
(AN386, AN500: 25 MHz) and 50 (AN505: 20 MHz) instructions per tick.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .errors import UnknownBoard

MiB = 1024 * 1024


@dataclass(frozen=True)
class Board:
    """One build and run target.

    ``llvm_target`` is the JSON dict for ``tvm.target.Target`` that kernels for this
    board are compiled with (None on the host, where kernels use TVM's C backend or
    host LLVM); treat it as read-only and pass ``dict(board.llvm_target)``.
    ``ram_bytes`` / ``flash_bytes`` are the data RAM and code memory the linker
    script gives the program (None on the host). ``clock_hz`` is the core clock
    SysTick counts; under ``-icount shift=0`` one tick is 1e9 / clock_hz instructions.
    """

    name: str
    cpu: str
    qemu_machine: str | None
    gcc_flags: tuple[str, ...]
    llvm_target: dict[str, str] | None = field(hash=False)
    ram_bytes: int | None
    flash_bytes: int | None
    clock_hz: int | None
    linker_script: str | None

    @property
    def is_host(self) -> bool:
        return self.qemu_machine is None

    @property
    def instructions_per_tick(self) -> int | None:
        """Resolution of the instruction count (None on the host, which counts ns)."""
        return None if self.clock_hz is None else 1_000_000_000 // self.clock_hz


def _cortex_m(name: str, cpu: str, fpu: str | None, mtriple: str, code: int, ram: int, clock_hz: int) -> Board:
    """A QEMU mps2 board; `fpu` None: no FPU, soft-float ABI (every float op a library call)."""
    abi = "hard" if fpu else "soft"
    return Board(
        name=name,
        cpu=cpu,
        qemu_machine=name,
        gcc_flags=(f"-mcpu={cpu}", "-mthumb", *([f"-mfpu={fpu}"] if fpu else []), f"-mfloat-abi={abi}"),
        llvm_target={"kind": "llvm", "mtriple": mtriple, "mcpu": cpu, "mfloat-abi": abi},
        ram_bytes=ram,
        flash_bytes=code,
        clock_hz=clock_hz,
        linker_script=f"{name}.ld",
    )


BOARDS: dict[str, Board] = {
    "host": Board(
        name="host",
        cpu="host",
        qemu_machine=None,
        gcc_flags=(),
        llvm_target=None,
        ram_bytes=None,
        flash_bytes=None,
        clock_hz=None,
        linker_script=None,
    ),
    # AN385: Cortex-M3 (Armv7-M: no FPU, no DSP extension), the same memory map and clock as
    # the AN386 below; int8 models need neither (tests check they link no soft-float routine).
    "mps2-an385": _cortex_m("mps2-an385", "cortex-m3", None, "thumbv7m-none-eabi", 4 * MiB, 4 * MiB, 25_000_000),
    # AN386: Cortex-M4 with FPv4 single precision. Code in ZBT SSRAM1 at 0x0,
    # data in ZBT SSRAM2&3 at 0x20000000; SYSCLK 25 MHz.
    "mps2-an386": _cortex_m(
        "mps2-an386",
        "cortex-m4",
        "fpv4-sp-d16",
        "thumbv7em-none-eabi",
        4 * MiB,
        4 * MiB,
        25_000_000,
    ),
    # AN500: Cortex-M7 with FPv5 double precision (QEMU's M7 has the DP FPU).
    # Same memory map and clock as the AN386.
    "mps2-an500": _cortex_m("mps2-an500", "cortex-m7", "fpv5-d16", "thumbv7em-none-eabi", 4 * MiB, 4 * MiB, 25_000_000),
    # AN505: Cortex-M33 (Armv8-M mainline, DSP, FPv5 single precision), boots
    # secure: code at 0x10000000, data at 0x38000000 (secure aliases); 20 MHz.
    "mps2-an505": _cortex_m(
        "mps2-an505",
        "cortex-m33",
        "fpv5-sp-d16",
        "thumbv8m.main-none-eabi",
        4 * MiB,
        4 * MiB,
        20_000_000,
    ),
}

TARGET_BOARDS: dict[str, str] = {
    "host": "host",
    "cortex-m3": "mps2-an385",
    "cortex-m4": "mps2-an386",
    "cortex-m7": "mps2-an500",
    "cortex-m33": "mps2-an505",
}


def board_for(name: str) -> Board:
    """The board for a target name (``cortex-m4``), a board name (``mps2-an386``) or a TVM JSON
    target (``{"kind": "llvm", "mtriple": "thumbv7em-none-eabi", "mcpu": "cortex-m7", ...}``:
    the board of that CPU, with the given target used for the kernels)."""
    if name.lstrip().startswith("{"):
        return _board_for_json_target(name)
    key = TARGET_BOARDS.get(name, name)
    if key not in BOARDS:
        raise UnknownBoard(
            f"unknown target or board {name!r}; targets: {', '.join(TARGET_BOARDS)}; boards: {', '.join(BOARDS)}"
        )
    return BOARDS[key]


def _board_for_json_target(text: str) -> Board:
    try:
        target = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnknownBoard(f"--target {text!r} is not valid JSON ({err.msg} at column {err.colno})") from None
    kind, cpu = target.get("kind"), target.get("mcpu")
    if kind == "c" or (kind == "llvm" and not cpu and "thumb" not in str(target.get("mtriple", ""))):
        return BOARDS["host"]
    if kind == "llvm" and cpu in TARGET_BOARDS:
        return dataclasses.replace(BOARDS[TARGET_BOARDS[cpu]], llvm_target=dict(target))
    raise UnknownBoard(
        f"--target {text}: no board for kind={kind!r} mcpu={cpu!r}; a JSON target needs kind 'c', "
        f"host 'llvm', or 'llvm' with mcpu one of {', '.join(t for t in TARGET_BOARDS if t != 'host')}"
    )
