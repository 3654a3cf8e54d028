"""The ONNX graph builder behind tests/models/zoo.py, with its He-style random weights.

:class:`GraphBuilder` appends named nodes (Conv with bias, ReLU6 as ``Clip(x, 0, 6)``, Add, and
a GlobalAveragePool -> Flatten -> Gemm classifier) and their float32 initializers, then checks and
returns the finished model. :class:`Tensor` is an activation of the graph being built: its name,
NCHW shape (N=1) and estimated value statistics.

The weights are drawn from the builder's ``numpy.random.Generator``. They are "He-style": normal
filter directions, each filter scaled like a folded batch norm would scale it (from the input
tensor's estimated mean and variance), so that every pre-activation has roughly zero mean and
unit variance for an N(0, 1) model input. Node names must be unique; a repeated one is a bug in
the zoo and raises AssertionError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["GraphBuilder", "Tensor"]

# Moments of ReLU(z) for z ~ N(0, 1) (the clip at 6 is a > 6-sigma event and is ignored).
_RELU_MEAN = 1.0 / math.sqrt(2.0 * math.pi)
_RELU_VAR = 0.5 - _RELU_MEAN**2
_BIAS_STD = 0.1  # std of the folded batch-norm shift (beta) of every conv


@dataclass
class Tensor:
    """An activation tensor of the graph being built: name, NCHW shape (N=1), value statistics.

    ``mean`` and ``var`` estimate the mean and variance of its elements for an N(0, 1) model
    input; they set the scale of the weights of the next conv, as a folded batch norm would.
    """

    name: str
    channels: int
    height: int
    width: int
    mean: float = 0.0
    var: float = 1.0

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, self.channels, self.height, self.width)


@dataclass
class GraphBuilder:
    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    relu6_bounds: tuple[str, str] | None = None

    def _name(self, name: str) -> str:
        if name in self.names:
            raise AssertionError(f"duplicate node name {name!r}")  # a bug in tests.models.zoo
        self.names.add(name)
        return name

    def _initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def conv(
        self,
        x: Tensor,
        name: str,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        pad: int | None = None,
        dilation: int = 1,
        groups: int = 1,
    ) -> Tensor:
        """Conv with bias; weights scaled so the output is ~N(beta_c, 1) per channel."""
        name = self._name(name)
        if pad is None:
            pad = dilation * (kernel // 2)
        cin_per_group = x.channels // groups
        fan_in = cin_per_group * kernel * kernel
        # He-style: normal directions, each filter's norm set so that its output has unit
        # variance given the input's variance (a folded batch norm's scale) ...
        w = self.rng.standard_normal((out_channels, fan_in), dtype=np.float32)
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        w *= np.float32(1.0 / math.sqrt(max(x.var, 1e-6)))
        # ... and the bias removes the input's mean (a folded batch norm's shift) and adds beta.
        beta = self.rng.standard_normal(out_channels, dtype=np.float32) * np.float32(_BIAS_STD)
        bias = beta - np.float32(x.mean) * w.sum(axis=1)
        w_name = self._initializer(f"{name}.weight", w.reshape(out_channels, cin_per_group, kernel, kernel))
        b_name = self._initializer(f"{name}.bias", bias)
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x.name, w_name, b_name],
                [name],
                name=name,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
                dilations=[dilation, dilation],
                group=groups,
            )
        )
        span = dilation * (kernel - 1) + 1
        return Tensor(
            name,
            out_channels,
            (x.height + 2 * pad - span) // stride + 1,
            (x.width + 2 * pad - span) // stride + 1,
            mean=0.0,
            var=1.0 + _BIAS_STD**2,
        )

    def relu6(self, x: Tensor, name: str) -> Tensor:
        name = self._name(name)
        if self.relu6_bounds is None:
            self.relu6_bounds = (
                self._initializer("relu6_min", np.array(0.0, np.float32)),
                self._initializer("relu6_max", np.array(6.0, np.float32)),
            )
        lo, hi = self.relu6_bounds
        self.nodes.append(helper.make_node("Clip", [x.name, lo, hi], [name], name=name))
        return Tensor(name, x.channels, x.height, x.width, mean=_RELU_MEAN, var=_RELU_VAR)

    def add(self, a: Tensor, b: Tensor, name: str) -> Tensor:
        name = self._name(name)
        self.nodes.append(helper.make_node("Add", [a.name, b.name], [name], name=name))
        return Tensor(name, a.channels, a.height, a.width, a.mean + b.mean, a.var + b.var)

    def classifier(self, x: Tensor, num_classes: int) -> str:
        """GlobalAveragePool -> Flatten -> Gemm; returns the output name ("output")."""
        pool = self._name("pool")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x.name], [pool], name=pool))
        flat = self._name("flatten")
        self.nodes.append(helper.make_node("Flatten", [pool], [flat], name=flat, axis=1))
        fc = self._name("classifier")
        w = self.rng.standard_normal((num_classes, x.channels), dtype=np.float32)
        w *= np.float32(1.0 / math.sqrt(x.channels))
        b = self.rng.standard_normal(num_classes, dtype=np.float32) * np.float32(_BIAS_STD)
        w_name = self._initializer(f"{fc}.weight", w)
        b_name = self._initializer(f"{fc}.bias", b)
        self.nodes.append(helper.make_node("Gemm", [flat, w_name, b_name], ["output"], name=fc, transB=1))
        return "output"

    def model(
        self,
        graph_name: str,
        x: Tensor,
        output: str,
        output_shape: Sequence[int],
        opset: int,
        doc: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [helper.make_tensor_value_info(x.name, TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))],
            initializer=self.initializers,
            doc_string=doc,
        )
        # The lowest IR version that the opset needs, so older runtimes can load the model too.
        model = helper.make_model_gen_version(
            graph,
            producer_name="tests.models.zoo",
            opset_imports=[helper.make_opsetid("", opset)],
        )
        model.doc_string = doc
        onnx.checker.check_model(model, full_check=True)
        return model
