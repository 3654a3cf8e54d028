"""TVM codegen for the kernels: C source (any compiler) or an LLVM object (Cortex-M).

Both come from the same scheduled PrimFuncs. `kernels.c` is always written (the host build
of `tvmc run --device host` compiles it); the workspace each kernel may request is read from
the TIR the code is generated from (targets/workspace.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm.target import Target
from tvm.tirx.build import tir_to_runtime

from tvm_patch_core.boards import Board
from tvm_patch_core.capture import native_stderr
from tvm_patch_core.options import KernelBackend

from .workspace import kernel_workspaces, lower_for_target

# Measured with `python bench/kernel_backends.py` (QEMU instruction counts, see README):
# the LLVM thumbv7em object beats arm-none-eabi-gcc -O2 on TVM's C output.
CORTEX_M_DEFAULT = KernelBackend.LLVM


@dataclass(frozen=True)
class Kernels:
    backend: KernelBackend
    sources: list[Path] = field(default_factory=list)
    objects: list[Path] = field(default_factory=list)
    workspace: dict[str, int] = field(default_factory=dict)  # kernel symbol -> bytes
    log: tuple[str, ...] = ()  # what TVM printed while building them (shown with tvmc -v)


def resolve_kernel_backend(requested: KernelBackend, board: Board) -> KernelBackend:
    if requested is not KernelBackend.AUTO:
        return requested
    return KernelBackend.C if board.llvm_target is None else CORTEX_M_DEFAULT


def build_kernels(
    kernels: tvm.IRModule, board: Board, backend: KernelBackend, out_dir: Path, argument_checks: bool = True
) -> Kernels:
    """Write kernels.c always and, for the llvm backend, kernels*.o for the board;
    `sources`/`objects` are what the board build links. Without `argument_checks` the kernels
    carry none of TVM's packed-API asserts on their arguments (targets/build.py decides)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tvm.transform.PassContext(config={"tirx.disable_assert": not argument_checks}):
        return _build(kernels, board, backend, out_dir)


def _build(kernels: tvm.IRModule, board: Board, backend: KernelBackend, out_dir: Path) -> Kernels:
    c_target = Target({"kind": "c"})
    with native_stderr() as log:
        lowered = lower_for_target(kernels, c_target)
        c_source = tir_to_runtime(lowered, {}, c_target.with_host(c_target)).inspect_source()
    c_path = out_dir / "kernels.c"
    c_path.write_text(c_source)
    workspace = kernel_workspaces(lowered)
    if backend is KernelBackend.C:
        return Kernels(backend, sources=[c_path], workspace=workspace, log=tuple(log))
    objects = []
    with native_stderr() as llvm_log:
        target = Target(board.llvm_target or {"kind": "llvm"})
        for suffix, group in alias_groups(kernels):
            obj = out_dir / f"kernels{suffix}.o"
            tvm.tirx.build(group, target).write_to_file(str(obj))
            objects.append(obj)
    return Kernels(backend, objects=objects, workspace=workspace, log=(*log, *llvm_log))


def alias_groups(kernels: tvm.IRModule) -> list[tuple[str, tvm.IRModule]]:
    """The kernels that may alias (in place: `tirx.noalias` False) apart from the rest.

    TVM's LLVM codegen drops `noalias` from every function of a module as soon as one
    function in it may alias (and stops splitting out the `_compute_` body): measured on VWW
    int8, one tuned conv kernel ran 5.58 M instructions built beside the in-place kernels and
    2.97 M built without them."""
    split: dict[bool, dict] = {True: {}, False: {}}
    for gv, func in kernels.functions.items():
        split[bool(func.attrs.get("tirx.noalias", True)) if func.attrs is not None else True][gv] = func
    return [(suffix, tvm.IRModule(split[key])) for key, suffix in ((True, ""), (False, "_inplace")) if split[key]]
