"""TVM codegen for the kernels: C source (any compiler) or an LLVM object (Cortex-M).

Both come from the same scheduled PrimFuncs; the workspace each kernel may request is read
from the C source in both cases (the LLVM object lowers the same TIR the same way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tvm
import tvm_ffi

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
    c_source = exact_float_literals(c_source, program.kernels)
    c_path = out_dir / "kernels.c"
    c_path.write_text(c_source)
    workspace = kernel_workspaces(c_source)
    if backend == "c":
        return Kernels("c", sources=[c_path], workspace=workspace)
    target = tvm.target.Target(board.llvm_target or {"kind": "llvm"})
    objects = []
    for suffix, group in _alias_groups(program.kernels):
        obj = out_dir / f"kernels{suffix}.o"
        tvm.tirx.build(group, target).write_to_file(str(obj))
        objects.append(obj)
    return Kernels("llvm", objects=objects, workspace=workspace)


# A float literal as TVM's CodeGenC prints it: std::scientific, 6 decimals, `f` suffix.
_C_FLOAT = re.compile(r"(?<![\w.])-?\d\.\d{6}e[+-]\d{2,3}f(?!\w)")


def exact_float_literals(c_source: str, kernels: tvm.IRModule) -> str:
    """TVM's C codegen prints float immediates with 7 significant digits; float32 needs 9. A
    quantize scale 0.0117647061 became 1.176471e-02f, so the C kernels divided by a value 3e-7
    off and rounded int8 ties the other way from the LLVM build and onnxruntime (fuzzer seed
    392: 1 LSB at 300 of 1,564 outputs, 3 LSB after the next layer). Each literal is rewritten
    with 9 digits from the kernels' own float32 constants; one that two different constants
    print as (not seen yet) is left as TVM printed it."""
    exact: dict[str, set[float]] = {}

    def note(imm) -> None:
        if str(imm.ty) == "float32" and np.isfinite(imm.value):
            value = float(np.float32(imm.value))
            exact.setdefault(f"{value:.6e}f", set()).add(value)

    for func in kernels.functions.values():
        tvm_ffi.structural_walk(func, [(tvm.tirx.FloatImm, note)])

    def fix(m: re.Match) -> str:
        values = exact.get(m.group(0), ())
        return f"{next(iter(values)):.8e}f" if len(values) == 1 else m.group(0)

    return _C_FLOAT.sub(fix, c_source)


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
