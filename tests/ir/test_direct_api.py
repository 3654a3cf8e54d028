"""MakeDirectAPI: each kernel becomes `int32_t name(T* ...)` over its buffers' data pointers.

TVM's MakePackedAPI would make it `__tvm_ffi_name(void*, TVMFFIAny*, int32_t, void*)` with
per-call checks of every DLTensor; the direct entry point keeps only TVM's compute body.
"""

from __future__ import annotations

import pytest
import tvm
from tvm.script import tirx as T
from tvm.target import Target
from tvm.tirx.build import tir_to_runtime

from tvm_patch.targets.direct_api import KernelSignature, kernel_signatures
from tvm_patch.targets.workspace import kernel_workspaces, lower_for_target
from tvm_patch_core.errors import UnsupportedOperator
from tvm_patch_core.options import KernelCalls

C = Target({"kind": "c"})


@T.prim_func(s_tir=True)
def widen(a: T.Buffer((4, 8), "int8"), b: T.Buffer((4, 8), "int32")):
    T.func_attr({"global_symbol": "widen", "tirx.noalias": True})
    for i, j in T.grid(4, 8):
        with T.sblock("b"):
            vi, vj = T.axis.remap("SS", [i, j])
            b[vi, vj] = T.Cast("int32", a[vi, vj]) + 1


@T.prim_func(s_tir=True)
def staged(a: T.Buffer((1024,), "int8"), b: T.Buffer((1024,), "int8")):
    """A 4 KiB intermediate: more than TVM keeps on the stack, so it asks for workspace."""
    T.func_attr({"global_symbol": "staged", "tirx.noalias": True})
    tmp = T.sblock_alloc_buffer((1024,), "int32")
    for i in range(1024):
        with T.sblock("tmp"):
            vi = T.axis.remap("S", [i])
            tmp[vi] = T.Cast("int32", a[vi]) * 3
    for i in range(1024):
        with T.sblock("b"):
            vi = T.axis.remap("S", [i])
            b[vi] = T.Cast("int8", tmp[1023 - vi] // 4)


@T.prim_func(s_tir=True)
def scaled(a: T.Buffer((4,), "int8"), n: T.int32):
    T.func_attr({"global_symbol": "scaled"})
    for i in range(4):
        with T.sblock("a"):
            vi = T.axis.remap("S", [i])
            a[vi] = a[vi] * T.Cast("int8", n)


def c_source(func: tvm.tirx.PrimFunc, calls: KernelCalls) -> str:
    lowered = lower_for_target(tvm.IRModule({func.attrs["global_symbol"]: func}), C, calls)
    return tir_to_runtime(lowered, {}, C.with_host(C)).inspect_source()


def test_direct_entry_takes_typed_data_pointers():
    src = c_source(widen, KernelCalls.DIRECT)
    assert "int32_t widen(int8_t* a, int32_t* b)" in src
    assert "TVMFFIAny" not in src and "__tvm_ffi_widen" not in src and "__tvm_ffi_main__" not in src
    assert "return 0;" in src


def test_packed_entry_is_still_there_for_the_debug_build():
    src = c_source(widen, KernelCalls.PACKED)
    assert "int32_t __tvm_ffi_widen(" in src
    assert "Mismatched" in src  # TVM's argument checks, the reason for the debug build


def test_direct_workspace_calls_keep_a_device_and_are_read_by_kernel_name():
    """LowerTVMBuiltin needs the device context MakePackedAPI used to set; the workspace is
    read under the kernel's own name."""
    lowered = lower_for_target(tvm.IRModule({"staged": staged}), C, KernelCalls.DIRECT)
    assert kernel_workspaces(lowered) == {"staged": 4096}
    src = tir_to_runtime(lowered, {}, C.with_host(C)).inspect_source()
    assert "TVMBackendAllocWorkspace(1, 0, (uint64_t)4096" in src


def test_signatures_are_read_from_the_kernels():
    assert kernel_signatures(tvm.IRModule({"widen": widen})) == {
        "widen": KernelSignature((("int8", (4, 8)), ("int32", (4, 8))))
    }


def test_scalar_parameters_are_refused_by_name():
    with pytest.raises(UnsupportedOperator, match=r"kernel scaled: parameter n is a scalar.*--kernel-calls packed"):
        lower_for_target(tvm.IRModule({"scaled": scaled}), C, KernelCalls.DIRECT)
