"""Each int8 op, lowered by load_model, computes what TFLite Micro computes, byte for byte.

One-op int8 TFLite models (tests/tflite_ops.py) go through the whole import and integer
lowering and run in TVM's Relax VM (LLVM on the host); the oracle is TFLite Micro. Scales and
zero points are chosen to exercise the roundings (ties, saturation, both shift directions);
the models (tests/data/models, MLPerf) then check the ops in context on host and QEMU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax

from tests import tflite_ops as ops
from tests.tflite_ops import Q, run_tflm

RNG = np.random.default_rng(21)
ALL = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def check(model: bytes, inputs: list[np.ndarray], tmp_path: Path) -> None:
    from tvm_patch.frontend import load_model

    want = run_tflm(model, inputs, tmp_path)[0]
    path = tmp_path / "op.tflite"
    path.write_bytes(model)
    mod = load_model(path).mod
    floats = [
        b.var.name
        for b in mod["main"].body.blocks[0].bindings
        if str(getattr(b.var.ty, "dtype", "")).startswith("float")
    ]
    assert not floats, f"not lowered to integers: {floats}"
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    got = vm["main"](*[tvm.runtime.tensor(x) for x in inputs]).numpy()
    np.testing.assert_array_equal(got, want)


def rand(shape) -> np.ndarray:
    return RNG.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize(
    "op,qx,qy",
    [
        ("LOGISTIC", (0.0083, 40), (1 / 256, -128)),
        ("TANH", (0.007, -14), (1 / 128, 0)),
        ("HARD_SWISH", (0.0508, 7), (0.0254, -113)),
        ("RELU", (0.05, 3), (0.03, -100)),
        ("RELU6", (0.05, -20), (0.05, -20)),
    ],
)
def test_elementwise_activations(tmp_path, op, qx, qy):
    check(ops.unary(op, (1, 256), Q(*qx), Q(*qy)), [ALL], tmp_path)


def test_softmax(tmp_path):
    x = rand((8, 10))
    check(ops.unary("SOFTMAX", x.shape, Q(0.1447, 14), Q(1 / 256, -128)), [x], tmp_path)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_binary_with_broadcast(tmp_path, op):
    a, b = rand((1, 6, 6, 8)), rand((1, 1, 1, 8))
    model = ops.binary(
        op,
        a.shape,
        b.shape,
        Q(0.039, -128),
        Q(0.104, 4),
        Q(0.051, -128),
        "relu" if op == "ADD" else "none",
    )
    check(model, [a, b], tmp_path)


@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_relu6_stride_2(tmp_path, depthwise):
    c = 8
    w = RNG.integers(-127, 128, (1, 3, 3, c) if depthwise else (16, 3, 3, c)).astype(np.int8)
    cout = c if depthwise else 16
    scales = RNG.uniform(0.002, 0.02, cout).astype(np.float32)
    bias = RNG.integers(-3000, 3000, cout).astype(np.int32)
    x = rand((1, 9, 9, c))
    model = ops.conv2d(
        x.shape,
        w,
        scales,
        bias,
        Q(0.0315, -5),
        Q(0.2, -60),
        stride=(2, 2),
        activation="relu6",
        depthwise=depthwise,
    )
    check(model, [x], tmp_path)


def test_grouped_conv(tmp_path):
    """CONV_2D whose filter sees 2 of the 8 input channels: 4 groups."""
    w = RNG.integers(-127, 128, (16, 3, 3, 2)).astype(np.int8)
    scales = RNG.uniform(0.002, 0.02, 16).astype(np.float32)
    x = rand((1, 8, 8, 8))
    check(ops.conv2d(x.shape, w, scales, None, Q(0.0315, -5), Q(0.1, 3)), [x], tmp_path)


@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected(tmp_path, per_channel):
    x = rand((2, 64))
    w = RNG.integers(-127, 128, (12, 64)).astype(np.int8)
    scales = RNG.uniform(0.005, 0.01, 12).astype(np.float32) if per_channel else np.float32(0.00838)
    bias = RNG.integers(-2000, 2000, 12).astype(np.int32)
    check(ops.fully_connected(x.shape, w, scales, bias, Q(0.0802, -128), Q(0.1447, 14)), [x], tmp_path)


@pytest.mark.parametrize(
    "op,size,stride,padding",
    [
        ("AVERAGE_POOL_2D", (3, 3), (1, 1), "SAME"),
        ("AVERAGE_POOL_2D", (8, 8), (8, 8), "VALID"),
        ("MAX_POOL_2D", (2, 2), (2, 2), "VALID"),
    ],
)
def test_pools(tmp_path, op, size, stride, padding):
    x = rand((1, 8, 8, 4))
    check(ops.pool2d(op, x.shape, Q(0.05, -3), size, stride, padding), [x], tmp_path)


def test_mean(tmp_path):
    x = rand((1, 17, 9, 32))
    check(ops.mean(x.shape, Q(0.0254, -7), Q(0.0036, -128), (1, 2)), [x], tmp_path)
