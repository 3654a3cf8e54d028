"""TVM codegen for the kernels: C source (any compiler) or an LLVM object (Cortex-M).

Both come from the same scheduled PrimFuncs, with the same entry points: direct (typed data
pointers, targets/direct_api.py) or TVM's packed API (debug). `kernels.c` is always written
(the host build of `tvmc run --device host` compiles it); the workspace each kernel may
request is read from the TIR the code is generated from (targets/workspace.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
import tvm_ffi
from tvm.target import Target
from tvm.tirx.build import tir_to_runtime

from tvm_patch_core.boards import Board
from tvm_patch_core.capture import native_stderr
from tvm_patch_core.options import KernelBackend, KernelCalls

from .direct_api import KernelSignature, kernel_signatures
from .workspace import kernel_workspaces, lower_for_target

# Measured with `python bench/kernel_backends.py` (QEMU instruction counts, see README):
# the LLVM thumbv7em object beats arm-none-eabi-gcc -O2 on TVM's C output.
CORTEX_M_DEFAULT = KernelBackend.LLVM


@dataclass(frozen=True)
class Kernels:
    backend: KernelBackend
    calls: KernelCalls = KernelCalls.DIRECT
    sources: list[Path] = field(default_factory=list)
    objects: list[Path] = field(default_factory=list)
    workspace: dict[str, int] = field(default_factory=dict)  # kernel symbol -> bytes
    signatures: dict[str, KernelSignature] = field(default_factory=dict)  # kernel symbol -> parameters
    log: tuple[str, ...] = ()  # what TVM printed while building them (shown with tvmc -v)


def resolve_kernel_backend(requested: KernelBackend, board: Board) -> KernelBackend:
    if requested is not KernelBackend.AUTO:
        return requested
    return KernelBackend.C if board.llvm_target is None else CORTEX_M_DEFAULT


def build_kernels(
    kernels: tvm.IRModule,
    board: Board,
    backend: KernelBackend,
    out_dir: Path,
    calls: KernelCalls = KernelCalls.DIRECT,
) -> Kernels:
    """Write kernels.c always and, for the llvm backend, kernels*.o for the board;
    `sources`/`objects` are what the board build links. Direct kernels are `int32_t
    <name>(T* ...)` (targets/direct_api.py); KernelCalls.PACKED builds TVM's packed functions
    `__tvm_ffi_<name>` with every argument assert (a debug build)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    signatures = kernel_signatures(kernels)
    c_target = Target({"kind": "c"})
    with native_stderr() as log:
        lowered = lower_for_target(kernels, c_target, calls)
        c_source = tir_to_runtime(lowered, {}, c_target.with_host(c_target)).inspect_source()
    c_source = exact_float_literals(c_source, kernels)
    c_path = out_dir / "kernels.c"
    c_path.write_text(c_source)
    if backend is KernelBackend.C:
        return Kernels(backend, calls, [c_path], [], kernel_workspaces(lowered), signatures, tuple(log))
    objects, workspace = [], {}
    with native_stderr() as llvm_log:
        target = Target(board.llvm_target or {"kind": "llvm"})
        for suffix, group in alias_groups(kernels):
            obj = out_dir / f"kernels{suffix}.o"
            workspace.update(build_object(group, target, obj, calls))
            objects.append(obj)
    return Kernels(backend, calls, [], objects, workspace, signatures, (*log, *llvm_log))


def build_object(
    kernels: tvm.IRModule, target: Target, obj: Path, calls: KernelCalls = KernelCalls.DIRECT
) -> dict[str, int]:
    """Write the LLVM object of `kernels` for `target`; returns each kernel's workspace bytes,
    read from the TIR the object is generated from."""
    lowered = lower_for_target(kernels, target, calls)
    tir_to_runtime(lowered, {}, Target(target)).write_to_file(str(obj))
    return kernel_workspaces(lowered)


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

    def note(imm: tvm.tirx.FloatImm) -> None:
        if str(imm.ty) == "float32" and np.isfinite(imm.value):
            value = float(np.float32(imm.value))
            exact.setdefault(f"{value:.6e}f", set()).add(value)

    for func in kernels.functions.values():
        tvm_ffi.structural_walk(func, [(tvm.tirx.FloatImm, note)])

    def fix(m: re.Match) -> str:
        values = exact.get(m.group(0), ())
        return f"{next(iter(values)):.8e}f" if len(values) == 1 else m.group(0)

    return _C_FLOAT.sub(fix, c_source)


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
