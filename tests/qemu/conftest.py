"""Skip tests marked ``qemu`` when the Arm toolchain, newlib or QEMU is missing."""

from __future__ import annotations

import functools

import pytest

from tvm_patch.targets.toolchain import require_tools
from tvm_patch_core.boards import board_for
from tvm_patch_core.errors import ToolchainMissing


@functools.cache
def _missing_tools() -> str | None:
    try:
        require_tools(board_for("cortex-m4"), build=True, run=True)
    except ToolchainMissing as missing:
        return str(missing)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing_tools()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"Cortex-M toolchain or QEMU missing: {reason}")
    for item in items:
        if "qemu" in item.keywords:
            item.add_marker(skip)
