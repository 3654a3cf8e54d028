"""Import ONNX (NCHW) and TFLite (NHWC) models into a Relax IRModule with constants folded.

The int8 TFLite models import as quantize/dequantize around float ops (that is what TVM's
frontend produces); the grouping pass later cuts the graph at the int8 tensors so that only
int8 activations are ever stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tvm
from tvm import relax

from .errors import DynamicShapeError, ModelLoadError, UnsupportedOperator
from .passes.group_kernels import shape_bytes


@dataclass(frozen=True)
class TensorSpec:
    name: str
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


def parse_input_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """`name:[1,3,224,224] other:[1,10]` (tvmc's syntax) -> {name: shape}."""
    if not text:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for m in re.finditer(r"([^\s:\[\]]+):\[([0-9,\s]*)\]", text):
        shapes[m.group(1)] = tuple(int(d) for d in m.group(2).split(",") if d.strip())
    if not shapes:
        raise ModelLoadError(f"--input-shapes {text!r}: expected name:[d0,d1,...] (e.g. input:[1,3,224,224])")
    return shapes


def load_model(
    path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None
) -> ImportedModel:
    """Read an .onnx or .tflite file and return its Relax module, constants folded."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    data = path.read_bytes()
    if data[4:8] == b"TFL3":
        mod = _import_tflite(path, data, input_shapes or {})
        fmt = "tflite"
    else:
        mod = _import_onnx(path, data, input_shapes or {})
        fmt = "onnx"
    mod = relax.transform.FoldConstant()(_te_minmax_to_ops(mod))
    main = mod["main"]
    inputs = tuple(_spec(p.name, p.ty, path) for p in main.params)
    out_ty = main.ret_ty
    outs = out_ty.fields if isinstance(out_ty, relax.TupleType) else [out_ty]
    outputs = tuple(_spec(f"output{i}", t, path) for i, t in enumerate(outs))
    return ImportedModel(c_identifier(path.stem), path, fmt, mod, inputs, outputs)


def _spec(name: str, ty, path: Path) -> TensorSpec:
    shape = getattr(ty, "shape", None)
    dims = []
    for d in shape.values if shape is not None and hasattr(shape, "values") else []:
        if not isinstance(d, tvm.tirx.IntImm):
            raise DynamicShapeError(
                f"{path.name}: tensor {name!r} has a dynamic shape {shape}; "
                "give a static one with --input-shapes name:[d0,d1,...]"
            )
        dims.append(int(d))
    if shape is None or not hasattr(shape, "values"):
        raise DynamicShapeError(f"{path.name}: tensor {name!r} has no static shape ({ty})")
    return TensorSpec(name, tuple(dims), str(ty.dtype))


def _wrap_frontend_error(path: Path, err: Exception) -> Exception:
    msg = str(err).strip().splitlines()
    text = " ".join(line.strip() for line in msg if line.strip())[:400]
    unsupported = re.search(r"not supported|unsupported", text, re.IGNORECASE)
    if isinstance(err, (NotImplementedError, tvm.error.OpNotImplemented)) or unsupported:
        return UnsupportedOperator(f"{path.name}: {text}")
    return ModelLoadError(f"{path.name}: the importer failed: {text}")


def _import_onnx(path: Path, data: bytes, input_shapes: dict[str, tuple[int, ...]]) -> tvm.IRModule:
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:  # noqa: BLE001 - onnx raises many unrelated types for bad files
        raise ModelLoadError(f"{path.name}: not an ONNX or TFLite model ({type(err).__name__})") from None
    if not model.graph.node:
        raise ModelLoadError(f"{path.name}: not an ONNX or TFLite model (empty graph)")
    initializers = {i.name for i in model.graph.initializer}
    shape_dict: dict[str, list[int]] = {}
    dtype_dict: dict[str, str] = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        if inp.name in input_shapes:
            shape_dict[inp.name] = list(input_shapes[inp.name])
        else:
            dims = inp.type.tensor_type.shape.dim
            if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
                shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                raise DynamicShapeError(
                    f"{path.name}: input {inp.name!r} has a dynamic shape {shown}; "
                    f"give a static one with --input-shapes {inp.name}:[...]"
                )
            shape_dict[inp.name] = [d.dim_value for d in dims]
        elem = inp.type.tensor_type.elem_type
        dtype_dict[inp.name] = onnx.helper.tensor_dtype_to_np_dtype(elem).name
    unsupported = _unsupported_onnx_ops(model)
    if unsupported:
        op, node = unsupported
        raise UnsupportedOperator(
            f"{path.name}: operator {op} (layer {node!r}) is not supported by the ONNX importer"
        )
    try:
        return from_onnx(model, shape_dict=shape_dict, dtype_dict=dtype_dict)
    except Exception as err:  # noqa: BLE001 - re-raised as a specific error
        raise _wrap_frontend_error(path, err) from None


def _unsupported_onnx_ops(model) -> tuple[str, str] | None:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = _get_convert_map()
    for node in model.graph.node:
        if node.op_type not in known:
            return node.op_type, node.name or node.output[0]
    return None


def _import_tflite(path: Path, data: bytes, input_shapes: dict[str, tuple[int, ...]]) -> tvm.IRModule:
    import tflite
    from tvm.relax.frontend.tflite import from_tflite

    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        graph.OperatorsLength()
    except Exception as err:  # noqa: BLE001 - flatbuffers raises assorted errors on garbage
        raise ModelLoadError(f"{path.name}: corrupt TFLite flatbuffer ({type(err).__name__})") from None
    try:
        return from_tflite(model, shape_dict=dict(input_shapes) or None)
    except tvm.error.OpNotImplemented as err:
        raise UnsupportedOperator(_name_tflite_layer(path, model, graph, str(err))) from None
    except Exception as err:  # noqa: BLE001 - re-raised as a specific error
        raise _wrap_frontend_error(path, err) from None


def _name_tflite_layer(path: Path, model, graph, message: str) -> str:
    """Point at the first layer that uses an operator the frontend named as unsupported."""
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if name != "?" and re.search(rf"\b{name}\b", message):
            out = graph.Tensors(op.Outputs(0)).Name().decode()
            return f"{path.name}: operator {name} (layer {i}, output {out!r}) is not supported"
    return f"{path.name}: " + " ".join(message.split())[:300]


_KERNEL_LAYOUT = {"NCHW": "OIHW", "NHWC": "OHWI"}


def convert_layout(mod: tvm.IRModule, layout: str | None) -> tvm.IRModule:
    """Rewrite conv2d to `layout` (tvmc's --desired-layout); None keeps the model's."""
    if layout is None:
        return mod
    if layout not in _KERNEL_LAYOUT:
        raise ModelLoadError(f"--desired-layout {layout!r}: choose NCHW or NHWC")
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
    ]
    if not hits or len(blocks) != 1:
        return mod
    bb = relax.BlockBuilder(tvm.IRModule({gv: f for gv, f in mod.functions.items() if gv.name_hint != "main"}))
    vmap: dict = {}

    def sub(e):
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
