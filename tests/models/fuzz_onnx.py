"""Differential fuzzer, the ONNX models of the cases (onnx.helper only) and their inputs.

:func:`build_model` is the fp32 model of a case, with He-style weights from the case's seed;
:func:`case_model` is what the case compiles (that model, or its int8 QDQ form from
``zoo.quantize_int8``); :func:`case_input` is the case's seeded input and :func:`output_scale`
the output scale of an int8 QDQ model (for the 1 LSB comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .fuzz_cases import Case, InvalidCase, _conv_groups, _out_shape


@dataclass
class _Builder:
    rng: np.random.Generator
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)

    def const(self, name: str, array) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def act(self, x: str, act: str, name: str) -> tuple[str, float, float]:
        """The activation node; returns (tensor, mean, var) estimates for the next layer's scale."""
        if not act:
            return x, 0.0, 1.0
        if act == "relu":
            return self.node("Relu", [x], name), 0.4, 0.34
        kind, *bounds = act.split(":")
        lo = hi = ""
        if act == "relu6":
            lo, hi = self.const(f"{name}.min", 0.0), self.const(f"{name}.max", 6.0)
        elif kind == "clip":
            lo, hi = (
                self.const(f"{name}.min", float(bounds[0])),
                self.const(f"{name}.max", float(bounds[1])),
            )
        elif kind == "clipmin":
            lo = self.const(f"{name}.min", float(bounds[0]))
        elif kind == "clipmax":
            hi = self.const(f"{name}.max", float(bounds[0]))
        else:
            raise InvalidCase(f"unknown activation {act!r}")
        inputs = [x, lo] if not hi else [x, lo, hi]
        return self.node("Clip", inputs, name), 0.2, 0.4


def build_model(case: Case) -> onnx.ModelProto:
    """The fp32 ONNX model of `case` (weights from the seed); InvalidCase if it does not fit."""
    b = _Builder(np.random.default_rng(case.seed))
    tensors = [("input", (case.in_channels, case.height, case.width))]
    mean, var = 0.0, 1.0
    for i, spec in enumerate(case.layers, start=1):
        x, shape = tensors[-1]
        out = _out_shape(spec, shape)
        if out is None:
            raise InvalidCase(f"layer {i} ({spec.describe()}) does not fit its input {list(shape)}")
        name = f"l{i}_{spec.op}"
        pad_attrs = {"auto_pad": spec.auto_pad} if spec.auto_pad else {"pads": list(spec.pads)}
        if spec.op == "conv":
            groups, out_c = _conv_groups(spec, shape[0])
            fan_in = shape[0] // groups * spec.kernel[0] * spec.kernel[1]
            wgt = b.rng.standard_normal((out_c, fan_in)).astype(np.float32)
            wgt /= np.linalg.norm(wgt, axis=1, keepdims=True)  # He-style: unit-variance outputs
            wgt *= np.float32(1.0 / math.sqrt(max(var + mean * mean, 1e-3)))
            inputs = [
                x,
                b.const(
                    f"{name}.weight",
                    wgt.reshape(out_c, fan_in // math.prod(spec.kernel), *spec.kernel),
                ),
            ]
            if spec.bias:
                beta = 0.1 * b.rng.standard_normal(out_c).astype(np.float32)
                inputs.append(b.const(f"{name}.bias", beta - np.float32(mean) * wgt.sum(axis=1)))
            y = b.node(
                "Conv",
                inputs,
                name,
                kernel_shape=list(spec.kernel),
                strides=list(spec.stride),
                dilations=list(spec.dilation),
                group=groups,
                **pad_attrs,
            )
            mean, var = 0.0, 1.0
        elif spec.op == "gap":
            y = b.node("GlobalAveragePool", [x], name)
            var = var / max(shape[1] * shape[2], 1) + 0.1
        else:
            attrs = {"kernel_shape": list(spec.kernel), "strides": list(spec.stride), **pad_attrs}
            if spec.op == "avgpool":
                attrs["count_include_pad"] = spec.count_include_pad
                y = b.node("AveragePool", [x], name, **attrs)
                var = max(var / 2, 0.1)
            else:
                y = b.node("MaxPool", [x], name, **attrs)
                mean, var = mean + 0.5 * math.sqrt(var), max(0.7 * var, 0.1)
        if spec.act:
            y, mean, var = b.act(y, spec.act, f"{name}_act")
        if spec.residual:
            if spec.residual > len(tensors) or tensors[-spec.residual][1] != out:
                raise InvalidCase(f"layer {i}: no tensor {spec.residual} back has the shape {list(out)}")
            skip = tensors[-spec.residual][0]
            y = b.node("Add", [skip, y] if spec.residual_first else [y, skip], f"{name}_add")
            var += 1.0
            if spec.act_after_add:
                y, mean, var = b.act(y, spec.act_after_add, f"{name}_add_act")
        tensors.append((y, out))
    if len(tensors) < 2:
        raise InvalidCase("no layers")
    last = b.nodes[-1]
    last.output[0] = "output"
    shape = [1, *tensors[-1][1]]
    graph = helper.make_graph(
        b.nodes,
        f"fuzz_{case.seed}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, case.in_channels, case.height, case.width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=b.inits,
        doc_string=case.describe(),
    )
    model = helper.make_model_gen_version(
        graph, producer_name="tests.models.fuzz_chains", opset_imports=[helper.make_opsetid("", 13)]
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def case_model(case: Case) -> onnx.ModelProto:
    """The model the case compiles: fp32, or int8 QDQ from onnxruntime's static quantization."""
    model = build_model(case)
    if case.int8:
        from tests.models import zoo

        model = zoo.quantize_int8(model, samples=2, seed=case.seed)
    return model


def case_input(case: Case) -> np.ndarray:
    rng = np.random.default_rng(case.seed + 1_000_003)
    return rng.standard_normal((1, case.in_channels, case.height, case.width)).astype(np.float32)


def output_scale(model: onnx.ModelProto) -> float | None:
    """The scale of the DequantizeLinear an int8 QDQ model's output comes from, through the ops
    onnxruntime's quantizer leaves in float after it (MaxPool, Relu keep the grid); None if the
    output is not quantized at all (a chain of pools only)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    writer = {out: node for node in model.graph.node for out in node.output}
    name = model.graph.output[0].name
    while name in writer:
        node = writer[name]
        if node.op_type == "DequantizeLinear":
            return float(inits[node.input[1]])
        if node.op_type not in ("MaxPool", "Relu"):
            return None
        name = node.input[0]
    return None
