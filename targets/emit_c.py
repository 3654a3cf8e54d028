"""The C/AOT emitter: a fixed call sequence over one static arena (the microTVM AOT replacement).

For a lowered graph it writes:

- `tvmgen_<name>.h`: `int32_t tvmgen_<name>_run(const void* const* inputs, void* const* outputs)`
  and the input/output slot accessors;
- `tvmgen_<name>.c`: the arena `tvmp_arena` (the graph's only SRAM for tensors), one
  `const DLTensor` per tensor with its planned arena offset, and the call sequence;
- `tvmgen_<name>_weights.c`: every weight as a `const` array (stays in flash);
- `tvmp_model.h`: the few names the runtime's harness (`tvmp_main.c`) builds against.

Kernels come from the C backend or an LLVM object. Each call sets the runtime's workspace
region to the kernel's planned slot, then calls the kernel:

- direct (the default): `rc = k((int8_t*)(tvmp_arena + 0), (int8_t*)tvmgen_m_w0, ...)`, the
  typed data pointers in the kernel's parameter order (targets/direct_api.py). The count,
  dtype and shape of every argument are checked here, once, against the kernel's
  parameters (`KernelSignature`): a mismatch is refused, nothing is checked on the board;
- packed (`--kernel-calls packed`, a debug build): one `const DLTensor` per tensor, and each
  call passes DLTensor pointers in a TVMFFIAny array to TVM's `__tvm_ffi_<kernel>`, which
  checks them all again at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from tvm_patch_core.arena import ArenaPlan
from tvm_patch_core.errors import UnsupportedOperator
from tvm_patch_core.graph import Call, Graph, Tensor, TensorKind, Workspace
from tvm_patch_core.names import c_comment, is_identifier, shown
from tvm_patch_core.options import KernelCalls

from .direct_api import KernelSignature
from .emit_entry import run_default, run_streamed, stream_geometry

# The C type of a direct kernel's data pointer, as TVM's C codegen declares it.
_C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "uint64": "uint64_t",
    "float32": "float",
    "float64": "double",
}


@dataclass(frozen=True)
class EmittedModel:
    name: str
    files: tuple[Path, ...]
    header: Path


def _check_identifiers(graph: Graph, name: str) -> None:
    bad = [n for n in (name, *graph.tensors, *(c.kernel for c in graph.calls)) if not is_identifier(n)]
    if bad:
        raise UnsupportedOperator(f"internal error: {shown(bad[0])} is not a C identifier; no C was written")


def _check_signatures(graph: Graph, signatures: Mapping[str, KernelSignature]) -> None:
    """What TVM's packed API checks on every call, checked once: each call passes as many
    tensors as its kernel has parameters, each of the parameter's dtype and shape."""
    for i, call in enumerate(graph.calls):
        where = f"internal error: call {i} ({call.kernel})"
        if call.kernel not in signatures:
            raise UnsupportedOperator(f"{where}: no signature for the kernel; no C was written")
        params = signatures[call.kernel].params
        args = call.inputs + call.outputs
        if len(args) != len(params):
            raise UnsupportedOperator(
                f"{where}: passes {len(args)} tensors, the kernel takes {len(params)}; no C was written"
            )
        for k, (arg, (dtype, shape)) in enumerate(zip(args, params, strict=True)):
            t = graph.tensors[arg]
            if (t.dtype, tuple(t.shape)) != (dtype, shape):
                raise UnsupportedOperator(
                    f"{where}: argument {k} is {t.name} {t.dtype}{list(t.shape)}, the kernel takes "
                    f"{dtype}{list(shape)}; no C was written"
                )
            if dtype not in _C_TYPES:
                raise UnsupportedOperator(f"{where}: argument {k} is {dtype}, which direct calls do not pass")


def _dtype_init(dtype: str) -> str:
    t = tvm.DataType(dtype)
    code = {0: "kDLInt", 1: "kDLUInt", 2: "kDLFloat", 4: "kDLBfloat"}[int(t.type_code)]
    return f"{{{code}, {t.bits}, {t.lanes}}}"


def _c_words(data: np.ndarray) -> tuple[str, str, int]:
    """Weight bytes as 32-bit words (exact bits, little-endian like both targets)."""
    raw = np.ascontiguousarray(data).tobytes()
    raw += b"\0" * (-len(raw) % 4)
    words = np.frombuffer(raw, dtype="<u4")
    lines = []
    for i in range(0, len(words), 8):
        lines.append("  " + ", ".join(f"0x{w:08x}u" for w in words[i : i + 8]) + ",")
    return "uint32_t", "\n".join(lines), len(words)


def emit_model(
    graph: Graph,
    plan: ArenaPlan,
    workspace: dict[int, int],
    name: str,
    out_dir: Path,
    labels: tuple[Sequence[str], Sequence[str]] = ((), ()),
    calls: KernelCalls = KernelCalls.DIRECT,
    signatures: Mapping[str, KernelSignature] | None = None,
) -> EmittedModel:
    """Write the model's C files into out_dir; `workspace[i]` is kernel i's scratch bytes.
    Direct calls need every kernel's `signatures` (targets/kernels.py: Kernels.signatures).

    Every identifier written is `name` (already an identifier), a tensor id (in0, t3, w2: by
    kind and index) or a kernel symbol; `_check_identifiers` refuses anything else. The
    model's own input/output names (`labels`) appear only in comments, through c_comment."""
    _check_identifiers(graph, name)
    if calls is KernelCalls.DIRECT:
        _check_signatures(graph, signatures or {})
    out_dir.mkdir(parents=True, exist_ok=True)
    header = out_dir / f"tvmgen_{name}.h"
    header.write_text(_header(graph, name, *labels))
    weights = out_dir / f"tvmgen_{name}_weights.c"
    weights.write_text(_weights(graph, name))
    source = out_dir / f"tvmgen_{name}.c"
    source.write_text(_source(graph, plan, workspace, name, calls, signatures or {}))
    glue = out_dir / "tvmp_model.h"
    glue.write_text(_glue(graph, name))
    return EmittedModel(name, (source, weights), header)


def _header(graph: Graph, name: str, input_labels: Sequence[str], output_labels: Sequence[str]) -> str:
    up = name.upper()
    lines = [
        f"/* Generated by tvm-patch: model {name}. */",
        f"#ifndef TVMGEN_{up}_H_",
        f"#define TVMGEN_{up}_H_",
        "#include <stdint.h>",
        "",
        f"#define TVMGEN_{up}_NUM_INPUTS {len(graph.inputs)}",
        f"#define TVMGEN_{up}_NUM_OUTPUTS {len(graph.outputs)}",
    ]
    for kind, names, labels in (("INPUT", graph.inputs, input_labels), ("OUTPUT", graph.outputs, output_labels)):
        for i, t in enumerate(names):
            ten = graph.tensors[t]
            label = c_comment(labels[i]) if i < len(labels) else t
            lines.append(
                f"#define TVMGEN_{up}_{kind}{i}_BYTES {ten.nbytes} /* {label}: {ten.dtype}{list(ten.shape)} */"
            )
    geometry = stream_geometry(graph)
    if geometry is None:
        lines += [
            "",
            "/* Runs the model. inputs[i]/outputs[i] may be the arena slots below (no copy) or any",
            "   buffers of the sizes above (copied in and out). Returns 0, or the failing kernel's",
            "   error code (message: tvmp_last_error()). */",
        ]
    else:
        lines[4:4] = ['#include "tvmp_runtime.h" /* tvmp_input_provider */']
        lines += [
            "",
            f"/* Input 0 is streamed: the patch stage reads it window by window ({geometry.layout}, "
            f"{geometry.height}x{geometry.width}, {geometry.channels} channels),",
            "   so the arena holds none of it. */",
            f"#define TVMGEN_{up}_INPUT0_STREAMED 1",
            f"#define TVMGEN_{up}_INPUT0_NCHW {int(geometry.layout == 'NCHW')}",
            f"#define TVMGEN_{up}_INPUT0_HEIGHT {geometry.height}",
            f"#define TVMGEN_{up}_INPUT0_WIDTH {geometry.width}",
            f"#define TVMGEN_{up}_INPUT0_CHANNELS {geometry.channels}",
            f"#define TVMGEN_{up}_INPUT0_ELEMENT_BYTES {geometry.element_bytes}",
            "",
            "/* Runs the model, asking `provider` (tvmp_runtime.h) for each patch's input window.",
            "   Returns 0, or the failing kernel's error code (message: tvmp_last_error()). */",
            f"int32_t tvmgen_{name}_run_streamed(tvmp_input_provider provider, void* ctx, void* const* outputs);",
            "",
            "/* The same with the whole input in memory (RAM or flash): inputs[0] is read window by",
            "   window, never copied into the arena; tvmgen_input(0) is NULL. outputs[i] may be the",
            "   arena slots below (no copy) or any buffers of the sizes above (copied out). */",
        ]
    lines += [
        f"int32_t tvmgen_{name}_run(const void* const* inputs, void* const* outputs);",
        f"void* tvmgen_{name}_input(int32_t i);",
        f"void* tvmgen_{name}_output(int32_t i);",
        "",
        f"#endif /* TVMGEN_{up}_H_ */",
        "",
    ]
    return "\n".join(lines)


def _glue(graph: Graph, name: str) -> str:
    ins = ", ".join(str(graph.tensors[t].nbytes) for t in graph.inputs)
    outs = ", ".join(str(graph.tensors[t].nbytes) for t in graph.outputs)
    return f"""/* Generated by tvm-patch: what the runtime harness (tvmp_main.c) builds against. */
#ifndef TVMP_MODEL_H_
#define TVMP_MODEL_H_
#include <stdint.h>
#define TVMP_MODEL_NAME "{name}"
#define TVMP_NUM_INPUTS {len(graph.inputs)}
#define TVMP_NUM_OUTPUTS {len(graph.outputs)}
static const uint32_t tvmp_input_bytes[TVMP_NUM_INPUTS] = {{{ins}}};
static const uint32_t tvmp_output_bytes[TVMP_NUM_OUTPUTS] = {{{outs}}};
int32_t tvmp_model_run(const void* const* inputs, void* const* outputs);
void* tvmp_model_input(int32_t i);
void* tvmp_model_output(int32_t i);{_stream_glue(graph)}
#endif /* TVMP_MODEL_H_ */
"""


def _stream_glue(graph: Graph) -> str:
    """The streamed input's geometry, for the harness's file provider (tvmp_main.c)."""
    g = stream_geometry(graph)
    if g is None:
        return ""
    return f"""
#include "tvmp_runtime.h"
#define TVMP_INPUT_STREAMED 1
#define TVMP_STREAM_NCHW {int(g.layout == "NCHW")}
#define TVMP_STREAM_HEIGHT {g.height}
#define TVMP_STREAM_WIDTH {g.width}
#define TVMP_STREAM_CHANNELS {g.channels}
#define TVMP_STREAM_ELEMENT_BYTES {g.element_bytes}
int32_t tvmp_model_run_streamed(tvmp_input_provider provider, void* ctx, void* const* outputs);"""


def _weights(graph: Graph, name: str) -> str:
    out = [f"/* Generated by tvm-patch: constant weights of model {name} (flash). */", "#include <stdint.h>", ""]
    for t in graph.tensors.values():
        if t.kind is not TensorKind.WEIGHT:
            continue
        ctype, body, n = _c_words(t.data)
        out.append(f"/* {t.name}: {t.dtype}{list(t.shape)}, {t.nbytes} bytes */")
        out.append(f"const {ctype} tvmgen_{name}_{t.name}[{n}] __attribute__((aligned(16))) = {{")
        out.append(body)
        out.append("};")
    out.append("")
    return "\n".join(out)


def _source(
    graph: Graph,
    plan: ArenaPlan,
    workspace: dict[int, int],
    name: str,
    calls: KernelCalls,
    signatures: Mapping[str, KernelSignature],
) -> str:
    direct = calls is KernelCalls.DIRECT
    ffi = [] if direct else ['#include "dlpack/dlpack.h"', '#include "tvm/ffi/c_api.h"']
    out = [
        f"/* Generated by tvm-patch: model {name}, {len(graph.calls)} kernel calls ({calls.value}),",
        f"   arena {plan.size} bytes (liveness lower bound {plan.lower_bound}, {plan.algorithm}). */",
        "#include <stdint.h>",
        "#include <string.h>",
        *ffi,
        '#include "tvmp_runtime.h"',
        f'#include "tvmgen_{name}.h"',
        '#include "tvmp_model.h"',
        "",
        f"#define TVMP_ARENA_BYTES {plan.size}",
        "uint8_t tvmp_arena[TVMP_ARENA_BYTES] __attribute__((aligned(16)));",
        "",
    ]
    out += _direct_decls(graph, plan, name, signatures) if direct else _packed_decls(graph, plan, name)
    steps = []
    for i, call in enumerate(graph.calls):
        ws = workspace.get(i, 0)
        ws_off = plan.offset(Workspace(i)) if ws else 0
        steps += _direct_call(i, call, ws_off, ws) if direct else _packed_call(i, call, ws_off, ws)
    geometry = stream_geometry(graph)
    out += (
        run_default(graph, plan, name, steps) if geometry is None else run_streamed(graph, plan, name, steps, geometry)
    )
    return "\n".join(out)


def _weight_externs(graph: Graph, name: str) -> list[str]:
    return [
        f"extern const uint32_t tvmgen_{name}_{t.name}[{(t.nbytes + 3) // 4}];"
        for t in graph.tensors.values()
        if t.kind is TensorKind.WEIGHT
    ]


def _placement(t: Tensor, plan: ArenaPlan, name: str) -> tuple[str, str]:
    """(where the data is as a C expression, the same in a comment)."""
    if t.kind is TensorKind.WEIGHT:
        return f"tvmgen_{name}_{t.name}", "flash"
    if t.kind is TensorKind.STREAMED:
        return "0", "streamed: the stage reads it window by window"
    return f"tvmp_arena + {plan.offset(t.name)}", f"arena[{plan.offset(t.name)}..+{t.nbytes}]"


def _direct_decls(graph: Graph, plan: ArenaPlan, name: str, signatures: Mapping[str, KernelSignature]) -> list[str]:
    """The kernels' prototypes, the weights, and one constant typed pointer per tensor."""
    out = ["/* The kernels: TVM's compute bodies, typed data pointers in parameter order. */"]
    for k in sorted({c.kernel for c in graph.calls}):
        params = ", ".join(f"{_C_TYPES[dtype]}*" for dtype, _ in signatures[k].params)
        out.append(f"int32_t {k}({params});")
    out += ["", *_weight_externs(graph, name), ""]
    for t in graph.tensors.values():
        data, where = _placement(t, plan, name)
        ctype = _C_TYPES.get(t.dtype)
        if ctype is None:  # a tensor no call passes (the signature check covers the rest)
            continue
        out.append(f"static {ctype}* const t_{t.name} = ({ctype}*)({data}); /* {t.dtype}{list(t.shape)} {where} */")
    return out


def _packed_decls(graph: Graph, plan: ArenaPlan, name: str) -> list[str]:
    """The packed kernels, the weights, and one constant DLTensor per tensor."""
    out = ["typedef int32_t (*tvmp_kernel_fn)(void* self, void* args, int32_t num_args, void* result);"]
    kernels = sorted({c.kernel for c in graph.calls})
    out += [f"int32_t __tvm_ffi_{k}(void* self, void* args, int32_t num_args, void* result);" for k in kernels]
    out += ["", *_weight_externs(graph, name), ""]
    for t in graph.tensors.values():
        shape = ", ".join(str(d) for d in t.shape) or "1"
        data, where = _placement(t, plan, name)
        data = f"(void*){data}" if t.kind is TensorKind.WEIGHT else data
        out.append(f"static const int64_t shape_{t.name}[] = {{{shape}}};")
        out.append(
            f"static const DLTensor t_{t.name} = {{ {data}, {{kDLCPU, 0}}, {len(t.shape)}, "
            f"{_dtype_init(t.dtype)}, (int64_t*)shape_{t.name}, NULL, 0 }}; /* {t.dtype}{list(t.shape)} {where} */"
        )
    max_args = max((len(c.inputs) + len(c.outputs) for c in graph.calls), default=1)
    return [
        *out,
        "",
        "static int32_t call_kernel(tvmp_kernel_fn fn, const DLTensor* const* tensors, int32_t n,",
        "                           uint32_t ws_offset, uint32_t ws_bytes) {",
        f"  TVMFFIAny args[{max_args}]; /* the most arguments any call passes */",
        "  TVMFFIAny result;",
        "  for (int32_t i = 0; i < n; ++i) {",
        "    memset(&args[i], 0, sizeof(args[i]));",
        "    args[i].type_index = kTVMFFIDLTensorPtr;",
        "    args[i].v_ptr = (void*)tensors[i];",
        "  }",
        "  memset(&result, 0, sizeof(result));",
        "  result.type_index = kTVMFFINone;",
        "  tvmp_workspace_set(ws_bytes ? tvmp_arena + ws_offset : NULL, ws_bytes);",
        "  return fn(NULL, args, n, &result);",
        "}",
    ]


def _direct_call(i: int, call: Call, ws_off: int, ws: int) -> list[str]:
    region = f"tvmp_arena + {ws_off}, {ws}u" if ws else "NULL, 0u"
    return [
        f"  /* {i}: {call.kernel}({', '.join(call.inputs)}) -> {', '.join(call.outputs)} */",
        f"  tvmp_workspace_set({region});",
        f"  rc = {call.kernel}({', '.join(f't_{a}' for a in call.inputs + call.outputs)});",
        "  if (rc != 0) return rc;",
    ]


def _packed_call(i: int, call: Call, ws_off: int, ws: int) -> list[str]:
    args = ", ".join(f"&t_{a}" for a in call.inputs + call.outputs)
    n = len(call.inputs) + len(call.outputs)
    return [
        f"  {{ /* {i}: {call.kernel}({', '.join(call.inputs)}) -> {', '.join(call.outputs)} */",
        f"    static const DLTensor* const a[] = {{{args}}};",
        f"    rc = call_kernel(__tvm_ffi_{call.kernel}, a, {n}, {ws_off}u, {ws}u);",
        "    if (rc != 0) return rc;",
        "  }",
    ]
