"""Direct kernel entry points: typed data pointers in, an error code out, no packed API.

TVM's default TIR pipeline ends with MakePackedAPI, FP8StorageLegalize and BF16StorageLegalize.
MakePackedAPI turns every function with a global symbol into `int32_t __tvm_ffi_<name>(void*
self, TVMFFIAny* args, int32_t num_args, void* result)`, which unpacks each DLTensor and
checks the argument count, type index, ndim, dtype, device, shape, strides and byte offset on
every call. The call sequence passes tensors the emitter itself built from the same graph, so
`lower_direct` checks them once at compile time instead (`KernelSignature`, used by
targets/emit_c.py) and builds each kernel as `int32_t <name>(int8_t* p0, int32_t* p1, ...)`:

1. TVM's own pipeline for the target, with those three passes disabled (PassContext);
2. MakeDirectAPI: each exported function takes its buffers' data pointers, in parameter
   order, and declares the buffers over them; the body is TVM's, the same TIR the packed
   wrapper's `_compute_` scope holds, with the device context the workspace calls need
   (CPU, device 0) and the arena's real alignment (16 bytes) instead of TVM's assumed 64.
   The body is not split into a `_compute_` function again: measured on the three MLPerf
   Tiny int8 models, per layer and patched, that was faster only for VWW's patch stage
   kernel (and 270.2 M instructions in all, against 269.7 M);
3. the two storage legalizers MakePackedAPI had to precede.

It does not take scalar or symbolic-shape parameters (our kernels have none; they are refused
by name).
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import tirx
from tvm.tirx.buffer import buffer_data_pointer_type, is_buffer_var

from tvm_patch_core.arena import ALIGNMENT
from tvm_patch_core.errors import UnsupportedOperator

# The tail of TVM's default TIR pipeline that MakeDirectAPI replaces (the legalizers refuse
# buffer parameters, so they run after it).
_PACKED_TAIL = ("tirx.MakePackedAPI", "tirx.FP8StorageLegalize", "tirx.BF16StorageLegalize")


@dataclass(frozen=True)
class KernelSignature:
    """A kernel's parameters as the direct entry point takes them: (dtype, shape) each."""

    params: tuple[tuple[str, tuple[int, ...]], ...]


def kernel_signatures(kernels: tvm.IRModule) -> dict[str, KernelSignature]:
    """Kernel symbol -> its parameters, read from the PrimFuncs before lowering."""
    found = {}
    for gv, func in kernels.functions.items():
        name = str(func.attrs.get("global_symbol", gv.name_hint)) if func.attrs is not None else gv.name_hint
        params = []
        for p in func.params:
            _require_static_buffer(name, p)
            params.append((str(p.ty.dtype), tuple(int(d) for d in p.ty.shape)))
        found[name] = KernelSignature(tuple(params))
    return found


def lower_direct(mod: tvm.IRModule, pipeline: tvm.transform.Pass) -> tvm.IRModule:
    """`pipeline` (TVM's default TIR pipeline for the bound target) with direct entry points."""
    ctx = tvm.transform.PassContext.current()  # keep the caller's options (tirx.disable_assert, ...)
    disabled = [*ctx.disabled_pass, *_PACKED_TAIL]
    with tvm.transform.PassContext(
        opt_level=ctx.opt_level, config=dict(ctx.config), required_pass=list(ctx.required_pass), disabled_pass=disabled
    ):
        mod = pipeline(mod)
    mod = MakeDirectAPI()(mod)
    return tvm.ir.transform.Sequential([tirx.transform.FP8StorageLegalize(), tirx.transform.BF16StorageLegalize()])(mod)


@tvm.transform.module_pass(opt_level=0, name="tvm_patch.MakeDirectAPI")
class MakeDirectAPI:
    """Every exported PrimFunc becomes `int32_t name(T* data, ...)`: 0, or -1 with the error
    set (a workspace request that did not fit)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        out = {}
        for gv, func in mod.functions.items():
            exported = func.attrs is not None and "global_symbol" in func.attrs
            out[gv] = _direct(func) if exported and int(func.attrs.get("calling_conv", 0)) == 0 else func
        return tvm.IRModule(out, attrs=mod.attrs)


def _direct(func: tirx.PrimFunc) -> tirx.PrimFunc:
    name = str(func.attrs["global_symbol"])
    target = func.attrs["target"]
    i32 = lambda v: tirx.IntImm("int32", v)  # noqa: E731
    body = tirx.SeqStmt([func.body, tirx.Return(i32(0))])
    body = tirx.AttrStmt("default", "device_type", i32(target.get_target_device_type()), body)
    body = tirx.AttrStmt("default", "device_id", i32(0), body)
    pointers = []
    for p in reversed(func.params):
        _require_static_buffer(name, p)
        pointer = tvm.ir.Var(p.name, buffer_data_pointer_type(p))
        pointers.insert(0, pointer)
        body = tirx.AttrStmt(pointer, "storage_alignment", i32(ALIGNMENT), body)  # LLVM: align 16
        body = tirx.SeqStmt([tirx.DeclBuffer(p, data=pointer), body])
    attrs = {k: v for k, v in func.attrs.items() if k != "tirx.is_entry_func"}  # no __tvm_ffi_main__
    attrs["target"] = target.host or target
    return tirx.PrimFunc(pointers, body, tvm.ir.PrimType("int32")).with_attrs(attrs)


def _require_static_buffer(kernel: str, param: tvm.ir.Var) -> None:
    if not is_buffer_var(param):
        raise UnsupportedOperator(
            f"kernel {kernel}: parameter {param.name} is a scalar; direct kernel calls pass tensors only "
            "(compile with --kernel-calls packed)"
        )
    if not all(isinstance(d, tvm.tirx.IntImm) for d in param.ty.shape):
        raise UnsupportedOperator(
            f"kernel {kernel}: parameter {param.name} has a symbolic shape {list(param.ty.shape)}; "
            "direct kernel calls need static shapes (compile with --kernel-calls packed)"
        )
