"""Tiny ONNX models for the tests that probe one behaviour each (hostile names, external
data, refusals). Each builder writes the file and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 13)]


def conv(
    path: Path,
    input_names: tuple[str, ...] = ("x",),
    cout: int = 4,
    cin: int = 3,
    size: int = 8,
    bias: bool = True,
    weight: np.ndarray | None = None,
) -> Path:
    """Conv(3x3, pad 1) of the sum of the inputs (one input: of that input), with a bias."""
    xs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, cin, size, size]) for n in input_names]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, size, size])
    w = weight if weight is not None else np.random.default_rng(0).standard_normal((cout, cin, 3, 3)).astype("float32")
    inits = [numpy_helper.from_array(w, "W")]
    nodes, x = [], input_names[0]
    for k, other in enumerate(input_names[1:]):
        nodes.append(helper.make_node("Add", [x, other], [f"sum{k}"], name=f"add{k}"))
        x = f"sum{k}"
    ins = [x, "W"]
    if bias:
        inits.append(numpy_helper.from_array(np.linspace(-1, 1, cout).astype("float32"), "B"))
        ins.append("B")
    nodes.append(helper.make_node("Conv", ins, ["y"], pads=[1, 1, 1, 1], name="conv"))
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", xs, [y], inits), opset_imports=OPSET), path)
    return Path(path)


def topk(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 3])
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [1, 3])
    k = numpy_helper.from_array(np.array([3], dtype=np.int64), "k")
    graph = helper.make_graph([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk")], "g", [x], [v, i], [k])
    onnx.save(helper.make_model(graph, opset_imports=OPSET), path)
    return Path(path)


def with_external_weight(path: Path, location: str, data_file: Path | None = None) -> Path:
    """A conv model whose weight W lives in an external file named `location` (written to
    `data_file`, default: beside the model)."""
    model = onnx.load(conv(path))
    w = next(t for t in model.graph.initializer if t.name == "W")
    raw = numpy_helper.to_array(w).tobytes()
    (data_file or Path(path).parent / location).write_bytes(raw)
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return Path(path)


def reference(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), inputs, strict=True)})


def chain(path: Path, layers: int = 3, channels: int = 4, size: int = 8) -> Path:
    """`layers` 3x3 convs (pad 1) with ReLU between them."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, size, size])
    nodes, inits, cur = [], [], "x"
    for k in range(layers):
        inits.append(
            numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype("float32"), f"W{k}")
        )
        out = "y" if k == layers - 1 else f"c{k}"
        nodes.append(helper.make_node("Conv", [cur, f"W{k}"], [out if k == layers - 1 else f"p{k}"], pads=[1, 1, 1, 1]))
        if k < layers - 1:
            nodes.append(helper.make_node("Relu", [f"p{k}"], [out]))
        cur = out
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=OPSET), path)
    return Path(path)
