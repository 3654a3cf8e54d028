"""Each kernel's workspace, read from its lowered TIR.

TVM lowers every allocation a schedule could not keep on the stack (more than 1 KiB, TVM's
kMaxStackAlloca) into `TVMBackendAllocWorkspace(device_type, device_id, nbytes, ...)`. The
kernel's workspace region in the arena is the sum of those sizes, each rounded up to the
runtime's 16-byte granule: an upper bound (allocations are freed LIFO, and one inside a loop
is freed before it is made again).

`lower_for_target` runs TVM's own build steps up to code generation (tvm.tirx.build does the
same, then generates code), so the workspace and the code come from the same TIR: with direct
entry points (targets/direct_api.py) unless `calls` asks for TVM's packed API.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import tirx
from tvm.ir.expr import Call
from tvm.target import Target
from tvm.tirx.build import split_host_device_mods

from tvm_patch_core.liveness import aligned
from tvm_patch_core.options import KernelCalls

from .direct_api import lower_direct

_ALLOC = "tirx.TVMBackendAllocWorkspace"


def lower_for_target(kernels: tvm.IRModule, target: Target, calls: KernelCalls = KernelCalls.DIRECT) -> tvm.IRModule:
    """`kernels` through TVM's TIR pipeline and host finalization for `target`."""
    target = Target(target).with_host(Target(target))
    mod = tirx.transform.BindTarget(target)(kernels)
    pipeline, finalize_host, _ = tvm.tirx.get_default_tir_pipeline(target)
    mod = lower_direct(mod, pipeline) if calls is KernelCalls.DIRECT else pipeline(mod)
    host, _ = split_host_device_mods(mod)
    return finalize_host()(host)


def kernel_workspaces(lowered: tvm.IRModule) -> dict[str, int]:
    """Kernel symbol -> workspace bytes it may request, from a lower_for_target module."""
    found: dict[str, int] = {}
    for gv, func in lowered.functions.items():
        sizes: list[int] = []

        def visit(node: Call, sizes: list[int] = sizes) -> None:
            if getattr(node.op, "name", "") == _ALLOC:
                sizes.append(int(node.args[2]))

        tvm_ffi.structural_walk(func.body, [(Call, visit)])
        symbol = func.attrs.get("global_symbol", gv.name_hint) if func.attrs is not None else gv.name_hint
        name = str(symbol).removeprefix("__tvm_ffi_")  # the symbol the call sequence calls
        found[name] = found.get(name, 0) + sum(aligned(n) for n in sizes)
    return found


def workspaces(kernels: tvm.IRModule, target: Target | dict | None = None) -> dict[str, int]:
    """Kernel symbol -> workspace bytes, for the C backend unless `target` is given."""
    return kernel_workspaces(lower_for_target(kernels, Target(target or {"kind": "c"})))
