"""Import ONNX (NCHW) and TFLite (NHWC) models into a Relax IRModule with constants folded.

The int8 TFLite models import as quantize/dequantize around float ops (that is what TVM's
frontend produces); the grouping pass later cuts the graph at the int8 tensors so that only
int8 activations are ever stored.

Every string in a model file is hostile: input names, tensor names and external-data paths
never become identifiers or paths here. `main`'s parameters are renamed `input0..` and every
other variable gets a sanitized unique name; the model's own names travel only as labels
(`TensorSpec.name`) for reports and escaped comments. ONNX external data is read only from
files inside the model's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tvm
import tvm_ffi
from tvm import relax

from tvm_patch_core.errors import DynamicShapeError, ModelLoadError
from tvm_patch_core.graph import shape_bytes
from tvm_patch_core.names import sanitize, shown

from .int8 import lower_int8
from .onnx_import import import_onnx
from .tflite_import import import_tflite


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the model's own name (a label for people, never an identifier)
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return shape_bytes(self.shape, self.dtype)


@dataclass(frozen=True)
class ImportedModel:
    name: str  # a C identifier derived from the file name
    path: Path
    format: str  # "onnx" | "tflite"
    mod: tvm.IRModule
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def c_identifier(stem: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z_]", "_", stem).lower()
    return name if name and not name[0].isdigit() else f"m_{name}"


def load_model(
    path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None, *, allow_nonfinite: bool = False
) -> ImportedModel:
    """Read an .onnx or .tflite file and return its Relax module, constants folded."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    data = path.read_bytes()
    if data[4:8] == b"TFL3":
        mod, labels = import_tflite(path, data, input_shapes or {}, allow_nonfinite)
        fmt = "tflite"
    else:
        mod, labels = import_onnx(path, data, input_shapes or {}, allow_nonfinite)
        fmt = "onnx"
    in_labels, out_labels = labels
    mod = safe_names(normalize(mod))
    main = mod["main"]
    inputs = tuple(_spec(label, p.ty, path) for label, p in zip(in_labels, main.params, strict=True))
    out_ty = main.ret_ty
    outs = out_ty.fields if isinstance(out_ty, relax.TupleType) else [out_ty]
    if len(out_labels) != len(outs):
        out_labels = [f"output{i}" for i in range(len(outs))]
    outputs = tuple(_spec(label, t, path) for label, t in zip(out_labels, outs, strict=False))
    return ImportedModel(c_identifier(path.stem), path, fmt, mod, inputs, outputs)


def normalize(mod: tvm.IRModule) -> tvm.IRModule:
    """What every later step expects of a frontend's module: ONNX Clip's TE min/max kernels
    back as Relax ops, int8 ops as integer ops (before folding: weights stay int8), weight-only
    subgraphs folded to constants."""
    return relax.transform.FoldConstant()(lower_int8(_te_minmax_to_ops(mod)))


def safe_names(mod: tvm.IRModule) -> tvm.IRModule:
    """`main` with its parameters named input0.. and every other variable a sanitized,
    unique identifier, so no model string reaches a name later passes or the C emitter use."""
    func = mod["main"]
    taken: set[str] = set()
    renamed: dict = {}
    params = {p: f"input{i}" for i, p in enumerate(func.params)}
    taken.update(params.values())

    def rename(var: relax.Var) -> relax.Var:
        if var not in renamed:
            name = params.get(var) or _unique(sanitize(var.name, "v"), taken)
            kind = relax.DataflowVar if isinstance(var, relax.DataflowVar) else relax.Var
            renamed[var] = kind(name, var.ty)
        return renamed[var]

    out = tvm.IRModule({gv: f for gv, f in mod.functions.items()}, attrs=mod.attrs)
    out["main"] = tvm_ffi.structural_map(func, [(relax.Var, rename)])
    return out


def _unique(name: str, taken: set[str]) -> str:
    base, n = name, 1
    while name in taken or re.fullmatch(r"input[0-9]+", name):
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _spec(name: str, ty: relax.TensorType, path: Path) -> TensorSpec:
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        raise DynamicShapeError(f"{path.name}: tensor {shown(name)} has no static shape ({ty})")
    dims = []
    for d in shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            raise DynamicShapeError(
                f"{path.name}: tensor {shown(name)} has a dynamic shape {shape}; "
                "give a static one with --input-shapes name:[d0,d1,...]"
            )
        dims.append(int(d))
    return TensorSpec(name, tuple(dims), str(ty.dtype))


_KERNEL_LAYOUT = {"NCHW": "OIHW", "NHWC": "OHWI"}


def convert_layout(mod: tvm.IRModule, layout: str | None) -> tvm.IRModule:
    """Rewrite conv2d to `layout` (tvmc's --desired-layout); None keeps the model's."""
    if layout is None:
        return mod
    desired = {"relax.nn.conv2d": [layout, _KERNEL_LAYOUT[layout]]}
    mod = relax.transform.ConvertLayout(desired)(mod)
    return relax.transform.FoldConstant()(mod)


_TE_MINMAX = re.compile(r"^(maximum|minimum)\d*$")


def _te_minmax_to_ops(mod: tvm.IRModule) -> tvm.IRModule:
    """ONNX Clip imports as call_tir to TE `maximum`/`minimum` PrimFuncs fixed to one shape;
    turn them back into R.maximum / R.minimum so later passes may re-shape them (patches)."""
    func = mod["main"]
    blocks = func.body.blocks
    hits = [
        b for blk in blocks for b in blk.bindings
        if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.call_tir"
        and _TE_MINMAX.match(b.value.args[0].name_hint) and len(b.value.args[1].fields) == 2
    ]  # fmt: skip
    if not hits or len(blocks) != 1:
        return mod
    bb = relax.BlockBuilder(tvm.IRModule({gv: f for gv, f in mod.functions.items() if gv.name_hint != "main"}))
    vmap: dict = {}

    def sub(e: relax.Expr) -> relax.Expr:
        if isinstance(e, relax.Tuple):
            return relax.Tuple([sub(f) for f in e.fields])
        return vmap.get(e, e)

    with bb.function("main", list(func.params), attrs=dict(func.attrs) if func.attrs else None):
        with bb.dataflow():
            for b in blocks[0].bindings:
                v = b.value
                if any(b.same_as(h) for h in hits):
                    x, bound = (sub(f) for f in v.args[1].fields)
                    op = relax.op.maximum if v.args[0].name_hint.startswith("max") else relax.op.minimum
                    new = op(x, bound)
                elif isinstance(v, relax.Call):
                    new = relax.Call(v.op, [sub(a) for a in v.args], v.attrs, v.ty_args)
                else:
                    new = sub(v)
                vmap[b.var] = bb.emit(new, name_hint=b.var.name)
            out = bb.emit_output(sub(func.body.body))
        bb.emit_func_output(out)
    return relax.transform.DeadCodeElimination()(bb.get())
