"""ONNX -> Relax with TVM's importer, after the checks a hostile or careless file needs:
external data only from the model's folder, a valid graph, finite weights, static shapes,
known operators."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import tvm

from tvm_patch_core.capture import native_stderr
from tvm_patch_core.errors import DynamicShapeError, ModelLoadError, UnsupportedOperator
from tvm_patch_core.names import shown

from .model_checks import check_input_shapes, dims_problem, refuse_nonfinite, wrap_frontend_error


def import_onnx(
    path: Path, data: bytes, input_shapes: dict[str, tuple[int, ...]], allow_nonfinite: bool
) -> tuple[tvm.IRModule, tuple[list[str], list[str]]]:
    from tvm.relax.frontend.onnx import from_onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as err:
        raise ModelLoadError(f"{path.name}: not an ONNX or TFLite model ({type(err).__name__})") from None
    if not model.graph.node:
        raise ModelLoadError(f"{path.name}: not an ONNX or TFLite model (empty graph)")
    _load_external_data(path, model)
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        detail = shown(str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__, quote=False)
        raise ModelLoadError(f"{path.name}: not a valid ONNX model: {detail}") from None
    if not allow_nonfinite:
        _check_finite_onnx(path, model)
    initializers = {i.name for i in model.graph.initializer}
    graph_inputs = [inp for inp in model.graph.input if inp.name not in initializers]
    declared = {}
    for inp in graph_inputs:
        dims = inp.type.tensor_type.shape.dim
        declared[inp.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
    check_input_shapes(
        path, {n: (d if dims_problem(d) != "dynamic" else None) for n, d in declared.items()}, input_shapes
    )
    shape_dict: dict[str, list[int]] = {}
    dtype_dict: dict[str, str] = {}
    for inp in graph_inputs:
        if inp.name in input_shapes:
            shape_dict[inp.name] = list(input_shapes[inp.name])
        else:
            dims = declared[inp.name]
            problem = dims_problem(dims)
            if problem == "dynamic":
                shown_dims = [d if d is not None else "?" for d in dims]
                raise DynamicShapeError(
                    f"{path.name}: input {shown(inp.name)} has a dynamic shape {shown_dims}; "
                    f"give a static one with --input-shapes NAME:[d0,d1,...]"
                )
            if problem is not None:
                raise ModelLoadError(
                    f"{path.name}: input {shown(inp.name)} declares shape {dims} with {problem}; every dimension "
                    "must be at least 1 (give one with --input-shapes NAME:[d0,d1,...])"
                )
            shape_dict[inp.name] = dims
        elem = inp.type.tensor_type.elem_type
        dtype_dict[inp.name] = onnx.helper.tensor_dtype_to_np_dtype(elem).name
    unsupported = _unsupported_onnx_ops(model)
    if unsupported:
        op, node = unsupported
        raise UnsupportedOperator(
            f"{path.name}: operator {shown(op)} (layer {shown(node)}) is not supported by the ONNX importer"
        )
    try:
        with native_stderr(), warnings.catch_warnings():  # TVM's C++ and Python warnings: not for the user
            warnings.simplefilter("ignore")
            mod = from_onnx(model, shape_dict=shape_dict, dtype_dict=dtype_dict)
    except Exception as err:
        raise wrap_frontend_error(path, err) from None
    return mod, ([inp.name for inp in graph_inputs], [o.name for o in model.graph.output])


def _load_external_data(path: Path, model: onnx.ModelProto) -> None:
    """Inline every external tensor's bytes, read from a file inside the model's folder only.

    ONNX would resolve `location` against the current directory, and a hostile file can name
    any path (absolute, `..`, a symlink out): all of those are refused."""
    from onnx import external_data_helper, helper

    folder = path.resolve().parent
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        where = f"{path.name}: tensor {shown(tensor.name)} keeps its data in {shown(location)}"
        if not location or Path(location).is_absolute():
            raise ModelLoadError(f"{where}, which is not a file name inside the model's folder; refused")
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise ModelLoadError(f"{where}, outside the model's folder {folder}; refused")
        if not target.is_file():
            raise ModelLoadError(f"{where}, which does not exist in {folder}")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise ModelLoadError(f"{where} at a non-numeric offset or length") from None
        size = target.stat().st_size
        elem = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        expected = int(np.prod(tensor.dims, dtype=np.int64)) * elem
        if length is None:
            length = expected
        if offset < 0 or length != expected or offset + length > size:
            raise ModelLoadError(
                f"{where} at offset {offset}, length {length}: the tensor needs {expected} bytes and the file has "
                f"{size}; the external data does not match the model"
            )
        with open(target, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
        del tensor.external_data[:]
        tensor.data_location = 0  # onnx.TensorProto.DEFAULT


def _check_finite_onnx(path: Path, model: onnx.ModelProto) -> None:
    from onnx import numpy_helper

    tensors = [(t.name, t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors += [(node.output[0], a.t) for a in node.attribute if a.name == "value"]
    for name, t in tensors:
        array = numpy_helper.to_array(t)
        if array.dtype.kind == "f":
            refuse_nonfinite(path, name, array)


def _unsupported_onnx_ops(model: onnx.ModelProto) -> tuple[str, str] | None:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = _get_convert_map()
    for node in model.graph.node:
        if node.op_type not in known:
            return node.op_type, node.name or node.output[0]
    return None
