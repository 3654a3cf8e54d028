"""TFLite -> Relax with TVM's importer, after checking the flatbuffer, the declared input
shapes and the float weights."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tflite
import tvm

from tvm_patch_core.capture import native_stderr
from tvm_patch_core.errors import ModelLoadError, UnsupportedOperator
from tvm_patch_core.names import shown

from .model_checks import check_input_shapes, dims_problem, refuse_nonfinite, wrap_frontend_error


def import_tflite(
    path: Path, data: bytes, input_shapes: dict[str, tuple[int, ...]], allow_nonfinite: bool
) -> tuple[tvm.IRModule, tuple[list[str], list[str]]]:
    from tvm.relax.frontend.tflite import from_tflite

    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        graph.OperatorsLength()
        ins = [graph.Tensors(graph.Inputs(i)) for i in range(graph.InputsLength())]
        outs = [graph.Tensors(graph.Outputs(i)) for i in range(graph.OutputsLength())]
        in_names = [t.Name().decode("utf-8", "replace") for t in ins]
        out_names = [t.Name().decode("utf-8", "replace") for t in outs]
        declared = {
            n: [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else [] for n, t in zip(in_names, ins, strict=True)
        }
    except Exception as err:
        raise ModelLoadError(f"{path.name}: corrupt TFLite flatbuffer ({type(err).__name__})") from None
    check_input_shapes(path, declared, input_shapes)
    for name, dims in declared.items():
        problem = dims_problem(dims)
        if problem is not None and name not in input_shapes:
            raise ModelLoadError(
                f"{path.name}: input {shown(name)} declares shape {dims} with {problem}; every dimension must be "
                "at least 1 (give one with --input-shapes NAME:[d0,d1,...])"
            )
    if not allow_nonfinite:
        _check_finite_tflite(path, model, graph)
    try:
        with native_stderr(), warnings.catch_warnings(), quantized_byte_moves():
            warnings.simplefilter("ignore")
            mod = from_tflite(model, shape_dict=dict(input_shapes) or None)
    except tvm.error.OpNotImplemented as err:
        raise UnsupportedOperator(_name_tflite_layer(path, model, graph, str(err))) from None
    except Exception as err:
        raise wrap_frontend_error(path, err) from None
    return mod, (in_names, out_names)


_TFLITE_FLOATS = {0: np.float32, 1: np.float16, 10: np.float64}  # tflite.TensorType codes


def _check_finite_tflite(path: Path, model: tflite.Model, graph: tflite.SubGraph) -> None:
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = _TFLITE_FLOATS.get(t.Type())
        if dtype is None or t.Buffer() >= model.BuffersLength():
            continue
        buf = model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            continue
        raw = buf.DataAsNumpy()
        if len(raw) % np.dtype(dtype).itemsize == 0:
            refuse_nonfinite(path, t.Name().decode("utf-8", "replace"), np.frombuffer(raw.tobytes(), dtype=dtype))


def _name_tflite_layer(path: Path, model: tflite.Model, graph: tflite.SubGraph, message: str) -> str:
    """Point at the first layer that uses an operator the frontend named as unsupported."""

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if name != "?" and re.search(rf"\b{name}\b", message):
            out = graph.Tensors(op.Outputs(0)).Name().decode("utf-8", "replace")
            return f"{path.name}: operator {name} (layer {i}, output {shown(out)}) is not supported"
    return f"{path.name}: " + shown(" ".join(message.split())[:300], quote=False)


# TVM's TFLite frontend refuses quantized ops outside its list, including these, although their
# converters only move int8 values (PAD/PADV2 pad with the input's zero point or the given
# quantized constant; TRANSPOSE is a permute_dims of the int8 tensor).
BYTE_MOVES = frozenset({"PAD", "PADV2", "TRANSPOSE"})


@contextmanager
def quantized_byte_moves() -> Iterator[None]:
    """Let the TFLite frontend import quantized PAD / PADV2 / TRANSPOSE while in this block."""
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    known = OperatorConverter._SUPPORTED_QUANTIZED_OPS
    OperatorConverter._SUPPORTED_QUANTIZED_OPS = known | BYTE_MOVES
    try:
        yield
    finally:
        OperatorConverter._SUPPORTED_QUANTIZED_OPS = known
