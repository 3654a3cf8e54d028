"""The board files the toolchain ships: linker scripts agree with the boards, runtime sources exist."""

from __future__ import annotations

import re

import pytest

from tvm_patch.targets.toolchain import linker_scripts, runtime_dir, runtime_sources
from tvm_patch_core.boards import BOARDS, Board, board_for

CORTEX_M = [b for b in BOARDS.values() if not b.is_host]


def test_host_has_no_linker_script() -> None:
    assert linker_scripts(board_for("host")) == []


_REGION = re.compile(r"(FLASH|RAM)\s*\([a-z]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+),\s*LENGTH\s*=\s*(\d+)M")


@pytest.mark.parametrize("board", CORTEX_M, ids=lambda b: b.name)
def test_linker_script_agrees_with_the_board(board: Board) -> None:
    script, common = linker_scripts(board)
    assert script.name == board.linker_script and common.is_file()
    regions = {m[0]: (int(m[1], 16), int(m[2]) * 1024 * 1024) for m in _REGION.findall(script.read_text())}
    assert regions["FLASH"][1] == board.flash_bytes
    assert regions["RAM"][1] == board.ram_bytes
    # The AN505 boots secure: code and data at the secure aliases (bit 28 set).
    secure = board.cpu == "cortex-m33"
    assert regions["FLASH"][0] == (0x10000000 if secure else 0x0)
    assert regions["RAM"][0] == (0x38000000 if secure else 0x20000000)


@pytest.mark.parametrize("board", list(BOARDS.values()), ids=lambda b: b.name)
def test_runtime_sources_are_shipped(board: Board) -> None:
    sources = runtime_sources(board)
    assert all(path.is_file() and path.parent == runtime_dir() for path in sources)
    assert {p.name for p in sources} >= {"tvmp_main.c", "tvmp_runtime.c"}
    platform = "tvmp_platform_host.c" if board.is_host else "tvmp_platform_cortexm.c"
    assert platform in {p.name for p in sources}
