"""Board table: names, CPU/FPU flags, LLVM targets, and agreement with the linker scripts."""

from __future__ import annotations

import pytest

from tvm_patch_core.boards import BOARDS, TARGET_BOARDS, UnknownBoard, board_for
from tvm_patch_core.errors import TvmPatchError

CORTEX_M = [board for board in BOARDS.values() if not board.is_host]


def test_every_target_names_a_board() -> None:
    assert set(TARGET_BOARDS.values()) == set(BOARDS)
    for target, name in TARGET_BOARDS.items():
        assert board_for(target) is BOARDS[name]
        assert board_for(name) is BOARDS[name]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownBoard, match=r"cortex-m4.*mps2-an386") as err:
        board_for("cortex-m0")
    assert isinstance(err.value, TvmPatchError)


@pytest.mark.parametrize(
    ("target", "machine", "fpu", "mtriple"),
    [
        # QEMU's M4 FPU is single precision (MVFR0 0x10110021).
        ("cortex-m4", "mps2-an386", "fpv4-sp-d16", "thumbv7em-none-eabi"),
        # QEMU's M7 has the double-precision FPv5 (MVFR0 0x10110221).
        ("cortex-m7", "mps2-an500", "fpv5-d16", "thumbv7em-none-eabi"),
        # M33: Armv8-M mainline, FPv5 single precision (MVFR0 0x10110021).
        ("cortex-m33", "mps2-an505", "fpv5-sp-d16", "thumbv8m.main-none-eabi"),
    ],
)
def test_cortex_m_flags(target: str, machine: str, fpu: str, mtriple: str) -> None:
    board = board_for(target)
    assert board.qemu_machine == machine
    assert board.gcc_flags == (f"-mcpu={target}", "-mthumb", f"-mfpu={fpu}", "-mfloat-abi=hard")
    assert board.llvm_target == {
        "kind": "llvm",
        "mtriple": mtriple,
        "mcpu": target,
        "mfloat-abi": "hard",
    }


def test_cortex_m3_has_no_fpu_and_the_soft_float_abi() -> None:
    board = board_for("cortex-m3")
    assert board.qemu_machine == "mps2-an385"
    assert board.gcc_flags == ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft")
    assert board.llvm_target == {
        "kind": "llvm",
        "mtriple": "thumbv7m-none-eabi",
        "mcpu": "cortex-m3",
        "mfloat-abi": "soft",
    }


def test_clocks_give_the_count_resolution() -> None:
    """mps2 SYSCLK is 25 MHz, the AN505's 20 MHz: one SysTick tick is 40 or 50
    instructions under -icount shift=0."""
    assert [b.instructions_per_tick for b in CORTEX_M] == [40, 40, 40, 50]  # AN385, AN386, AN500, AN505
    assert BOARDS["host"].instructions_per_tick is None


def test_host_board() -> None:
    host = board_for("host")
    assert host.is_host and host.qemu_machine is None and host.llvm_target is None
    assert host.linker_script is None and host.gcc_flags == ()


def test_boards_are_hashable_and_frozen() -> None:
    board = BOARDS["mps2-an386"]
    assert {board: 1}[board] == 1
    with pytest.raises(AttributeError):
        board.name = "other"  # type: ignore[misc]


def test_json_target_picks_the_board_of_its_cpu_and_keeps_the_target():
    import json

    target = {"kind": "llvm", "mtriple": "thumbv7em-none-eabi", "mcpu": "cortex-m7", "mfloat-abi": "hard"}
    board = board_for(json.dumps(target))
    assert board.name == "mps2-an500" and board.llvm_target == target
    assert board_for('{"kind": "c"}').name == "host"


def test_json_target_without_a_board_is_refused():
    import pytest

    from tvm_patch_core.errors import TvmPatchError

    with pytest.raises(TvmPatchError, match="cortex-m55"):
        board_for('{"kind": "llvm", "mtriple": "thumbv8.1m.main-none-eabi", "mcpu": "cortex-m55"}')
