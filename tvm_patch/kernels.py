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
from .capture import native_stderr
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
    log: tuple[str, ...] = ()  # what TVM printed while building them (shown with tvmc -v)


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
    with tvm.transform.PassContext(config={"tirx.disable_assert": not keeps_argument_checks(program)}):
        return _build(program, board, backend, out_dir)


def keeps_argument_checks(program: Program) -> bool:
    """Integer programs (int8 models after lower_int8) are built without the packed-API
    argument asserts: the emitted call sequence passes each kernel the exact DLTensors it
    was compiled for, so they cannot fire, and on Cortex-M they were 177 KB of the 200 KB of
    kernel code of vww_96_int8 (flash 421,332 -> 295,132 B, LLVM). Models with float weights
    keep them, so the fp32 build is unchanged byte for byte."""
    weights = [t for t in program.tensors.values() if t.kind == "weight"]
    return any(t.dtype.startswith("float") for t in weights) or not weights


def _build(program: Program, board: Board, backend: str, out_dir: Path) -> Kernels:
    with native_stderr() as log:
        c_source = tvm.tirx.build(program.kernels, tvm.target.Target({"kind": "c"})).inspect_source()
    c_path = out_dir / "kernels.c"
    c_path.write_text(c_source)
    workspace = kernel_workspaces(c_source)
    if backend == "c":
        return Kernels("c", sources=[c_path], workspace=workspace, log=tuple(log))
    objects = []
    with native_stderr() as llvm_log:
        target = tvm.target.Target(board.llvm_target or {"kind": "llvm"})
        for suffix, group in _alias_groups(program.kernels):
            obj = out_dir / f"kernels{suffix}.o"
            tvm.tirx.build(group, target).write_to_file(str(obj))
            objects.append(obj)
    return Kernels("llvm", objects=objects, workspace=workspace, log=(*log, *llvm_log))


def _alias_groups(kernels: tvm.IRModule) -> list[tuple[str, tvm.IRModule]]:
    """The kernels that may alias (in place: `tirx.noalias` False) apart from the rest.

    TVM's LLVM codegen drops `noalias` from every function of a module as soon as one
    function in it may alias (and stops splitting out the `_compute_` body): measured on VWW
    int8, one tuned conv kernel ran 5.58 M instructions built beside the in-place kernels and
    2.97 M built without them."""
    split: dict[bool, dict] = {True: {}, False: {}}
    for gv, func in kernels.functions.items():
        split[bool(func.attrs.get("tirx.noalias", True)) if func.attrs is not None else True][gv] = func
    return [(suffix, tvm.IRModule(split[key])) for key, suffix in ((True, ""), (False, "_inplace")) if split[key]]
