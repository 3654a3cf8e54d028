"""TVM codegen for the kernels: C source (any compiler) or an LLVM object (Cortex-M).

Both come from the same scheduled PrimFuncs; the workspace each kernel may request is read
from the C source in both cases (the LLVM object lowers the same TIR the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import tvm

from .errors import TvmPatchError
from .lower import Program

if TYPE_CHECKING:
    from .targets.boards import Board
from .targets.workspace import kernel_workspaces

# Measured with `python bench/kernel_backends.py` (QEMU instruction counts, see README):
# the LLVM thumbv7em object beats arm-none-eabi-gcc -O2 on TVM's C output.
CORTEX_M_DEFAULT = "llvm"


@dataclass(frozen=True)
class Kernels:
    backend: str
    sources: list[Path] = field(default_factory=list)
    objects: list[Path] = field(default_factory=list)
    workspace: dict[str, int] = field(default_factory=dict)


def resolve_kernel_backend(requested: str, board: Board) -> str:
    if requested not in ("auto", "c", "llvm"):
        raise TvmPatchError(f"--kernels {requested!r}: choose c, llvm or auto")
    if requested != "auto":
        return requested
    return "c" if board.llvm_target is None else CORTEX_M_DEFAULT


def build_kernels(program: Program, board: Board, backend: str, out_dir: Path) -> Kernels:
    """Write kernels.c always (the host build and the workspace analysis use it) and, for the
    llvm backend, kernels.o for the board; `sources`/`objects` are what the board build links."""
    out_dir.mkdir(parents=True, exist_ok=True)
    c_source = tvm.tirx.build(program.kernels, tvm.target.Target({"kind": "c"})).inspect_source()
    c_path = out_dir / "kernels.c"
    c_path.write_text(c_source)
    workspace = kernel_workspaces(c_source)
    if backend == "c":
        return Kernels("c", sources=[c_path], workspace=workspace)
    obj = out_dir / "kernels.o"
    target = board.llvm_target or {"kind": "llvm"}
    tvm.tirx.build(program.kernels, tvm.target.Target(target)).write_to_file(str(obj))
    return Kernels("llvm", objects=[obj], workspace=workspace)
