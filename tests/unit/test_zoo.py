"""Model zoo: MobileNetV2 structure and MACs, onnxruntime outputs, determinism, conv chains."""

from __future__ import annotations

from collections import Counter
from dataclasses import FrozenInstanceError

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, shape_inference

from tests.models import zoo
from tests.models.zoo import ConvSpec, conv_chain, mobilenet_v2

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def mnv2_full() -> onnx.ModelProto:
    return mobilenet_v2()


def _run(model: onnx.ModelProto, extra_outputs: bool = False, seed: int = 1) -> dict:
    """Run ``model`` on an N(0, 1) input; with ``extra_outputs`` also return every Clip/Add."""
    if extra_outputs:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        for node in model.graph.node:
            if node.op_type in ("Clip", "Add") and node.output[0] != "output":
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"input": x}), strict=False)) | {"input": x}


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.input, *g.value_info, *g.output]}


def _macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of the Conv and Gemm nodes, from the inferred shapes."""
    shapes = _shapes(model)
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            _, cin_per_group, kh, kw = weights[node.input[1]]
            total += int(np.prod(shapes[node.output[0]])) * cin_per_group * kh * kw
        elif node.op_type == "Gemm":
            n, k = weights[node.input[1]]
            total += n * k
    return total


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


# --- MobileNetV2 structure -------------------------------------------------------------------


def test_mobilenet_v2_node_counts(mnv2_full: onnx.ModelProto) -> None:
    ops = _ops(mnv2_full)
    assert ops == {
        "Conv": 52,  # 1 stem + 16 expand + 17 depthwise + 17 project + 1 last
        "Clip": 35,  # stem + expand + depthwise + last
        "Add": 10,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    }
    convs = [n for n in mnv2_full.graph.node if n.op_type == "Conv"]
    groups = {n.name: onnx.helper.get_node_attr_value(n, "group") for n in convs}
    assert sum(g > 1 for g in groups.values()) == 17
    assert [n.name for n in convs if n.name.endswith("_expand")][:2] == [
        "block2_expand",
        "block3_expand",
    ]
    assert "block1_expand" not in groups  # t = 1
    assert {n.name for n in mnv2_full.graph.node if n.op_type == "Add"} == {
        f"block{i}_add" for i in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)
    }


def test_mobilenet_v2_names_unique_and_readable(mnv2_full: onnx.ModelProto) -> None:
    names = [n.name for n in mnv2_full.graph.node]
    assert all(names) and len(set(names)) == len(names)
    assert {
        "stem_conv",
        "stem_relu6",
        "block3_expand",
        "block3_dw",
        "block3_dw_relu6",
        "block3_project",
        "last_conv",
        "classifier",
    } <= set(names)


def test_mobilenet_v2_io_and_shapes(mnv2_full: onnx.ModelProto) -> None:
    g = mnv2_full.graph
    assert [i.name for i in g.input] == ["input"]
    assert [o.name for o in g.output] == ["output"]
    shapes = _shapes(mnv2_full)
    assert shapes["input"] == [1, 3, 224, 224]
    assert shapes["stem_conv"] == [1, 32, 112, 112]
    assert shapes["block17_project"] == [1, 320, 7, 7]
    assert shapes["last_conv"] == [1, 1280, 7, 7]
    assert shapes["output"] == [1, 1000]
    for t in g.initializer:
        assert t.data_type == onnx.TensorProto.FLOAT
    relu6 = [n for n in g.node if n.op_type == "Clip"]
    lo, hi = relu6[0].input[1:]
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    assert float(consts[lo]) == 0.0 and float(consts[hi]) == 6.0


def test_mobilenet_v2_macs_match_published(mnv2_full: onnx.ModelProto) -> None:
    macs = _macs(mnv2_full)
    assert abs(macs - 300e6) / 300e6 < 0.02, macs


def test_mobilenet_v2_param_count(mnv2_full: onnx.ModelProto) -> None:
    params = sum(int(np.prod(t.dims)) for t in mnv2_full.graph.initializer) - 2  # minus Clip bounds
    # torchvision: 3,504,872 parameters; folding removes the 17,056 batch-norm scales (the
    # batch-norm shifts become the conv biases).
    assert params == 3_504_872 - 17_056


@pytest.mark.parametrize(
    ("width", "stem", "last"),
    [(0.35, 16, 1280), (0.5, 16, 1280), (0.75, 24, 1280), (1.0, 32, 1280), (1.4, 48, 1792)],
)
def test_mobilenet_v2_width_rounding(width: float, stem: int, last: int) -> None:
    shapes = _shapes(mobilenet_v2(width=width, resolution=32, num_classes=10))
    assert shapes["stem_conv"][1] == stem
    assert shapes["last_conv"][1] == last
    for name, shape in shapes.items():
        if name != "output" and name != "input":
            assert shape[1] % 8 == 0, (name, shape)


def test_mobilenet_v2_blocks_truncates() -> None:
    m = mobilenet_v2(blocks=3, resolution=64, num_classes=10)
    ops = _ops(m)
    assert ops["Conv"] == 1 + 2 + 3 + 3  # stem, expand of blocks 2-3, dw and project of 1-3
    assert ops["Add"] == 1  # block3
    names = {n.name for n in m.graph.node}
    assert "block3_add" in names and "block4_dw" not in names and "last_conv" not in names
    shapes = _shapes(m)
    assert shapes["block3_add"] == [1, 24, 16, 16]
    assert shapes["output"] == [1, 10]
    assert _ops(mobilenet_v2(blocks=0, resolution=32))["Conv"] == 1


# --- onnxruntime -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "out_shape"),
    [
        ({"width": 0.35, "resolution": 96}, (1, 1000)),
        ({"blocks": 3, "resolution": 64, "num_classes": 10}, (1, 10)),
        ({"width": 0.5, "resolution": 75, "num_classes": 7}, (1, 7)),
    ],
)
def test_mobilenet_v2_runs_with_healthy_activations(kwargs: dict, out_shape: tuple) -> None:
    outputs = _run(mobilenet_v2(**kwargs), extra_outputs=True)
    out = outputs["output"]
    assert out.shape == out_shape
    assert np.isfinite(out).all()
    assert 1e-2 < out.std() < 1e2
    for name, value in outputs.items():
        assert np.isfinite(value).all(), name
        if name.endswith("relu6"):
            # ReLU6 of a ~N(beta, 1) pre-activation: about half zeros, hardly any sixes.
            assert 0.3 < (value == 0).mean() < 0.7, name
            assert (value >= 6).mean() < 0.01, name
        elif name.endswith("_add"):
            assert 0.5 < value.std() < 4, name


def test_mobilenet_v2_semantics_match_numpy() -> None:
    """Tiny model: recompute stem conv (stride 2, pad 1) + ReLU6 in numpy from initializers."""
    m = mobilenet_v2(blocks=0, resolution=9, num_classes=4)
    outputs = _run(m, extra_outputs=True)
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    x = np.pad(outputs["input"][0], ((0, 0), (1, 1), (1, 1)))
    wt, bias = w["stem_conv.weight"], w["stem_conv.bias"]
    ref = np.zeros((wt.shape[0], 5, 5), np.float32)
    for i in range(5):
        for j in range(5):
            patch = x[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            ref[:, i, j] = np.tensordot(wt, patch, axes=3) + bias
    np.testing.assert_allclose(outputs["stem_relu6"][0], np.clip(ref, 0, 6), atol=1e-5)
    pooled = outputs["stem_relu6"].mean(axis=(2, 3))
    logits = pooled @ w["classifier.weight"].T + w["classifier.bias"]
    np.testing.assert_allclose(outputs["output"], logits, atol=1e-5)


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    a = mobilenet_v2(width=0.35, resolution=96, seed=3).SerializeToString()
    assert a == mobilenet_v2(width=0.35, resolution=96, seed=3).SerializeToString()
    assert a != mobilenet_v2(width=0.35, resolution=96, seed=4).SerializeToString()
    specs = [ConvSpec(8, stride=2), ConvSpec(8, groups=8, residual=True)]
    c = conv_chain(specs, 3, 16, seed=5).SerializeToString()
    assert c == conv_chain(specs, 3, 16, seed=5).SerializeToString()
    assert c != conv_chain(specs, 3, 16, seed=6).SerializeToString()


def test_opset_and_save(tmp_path) -> None:
    m = mobilenet_v2(blocks=2, resolution=32, num_classes=5, opset=17)
    assert {o.domain: o.version for o in m.opset_import}[""] == 17
    path = zoo.save(m, tmp_path / "sub" / "m.onnx")
    assert path.is_file()
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == m.SerializeToString()
    assert _run(loaded)["output"].shape == (1, 5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"width": -1.0},
        {"resolution": 0},
        {"num_classes": 0},
        {"blocks": -1},
        {"blocks": 18},
        {"opset": 10},
        {"seed": -1},
    ],
)
def test_mobilenet_v2_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        mobilenet_v2(**kwargs)


def test_mobilenet_v2_type_errors() -> None:
    with pytest.raises(TypeError):
        mobilenet_v2(width="1.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mobilenet_v2(resolution=96.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        conv_chain([(8, 3)], 3, 8)  # type: ignore[list-item]


# --- conv_chain ------------------------------------------------------------------------------


def test_conv_chain_residual_stride_groups_runs() -> None:
    specs = [
        ConvSpec(16, kernel=3, stride=2),  # 8x 20x12 -> 16x 10x6
        ConvSpec(16, kernel=3, groups=16, residual=True),  # depthwise + skip
        ConvSpec(32, kernel=1, relu6=False),
        ConvSpec(32, kernel=3, groups=4, dilation=2, residual=True),  # grouped, dilated
        ConvSpec(32, kernel=5, stride=2, padding=0, relu6=False),  # 10x6 -> 3x1
    ]
    m = conv_chain(specs, in_channels=8, resolution=(20, 12), seed=7)
    assert _ops(m) == {"Conv": 5, "Clip": 3, "Add": 2}
    names = [n.name for n in m.graph.node]
    assert names == [
        "layer1_conv", "layer1_relu6", "layer2_conv", "layer2_relu6", "layer2_add",
        "layer3_conv", "layer4_conv", "layer4_relu6", "layer4_add", "layer5_conv",
    ]  # fmt: skip
    assert _shapes(m)["output"] == [1, 32, 3, 1]
    out = _run(m)["output"]
    assert out.shape == (1, 32, 3, 1)
    assert np.isfinite(out).all() and 1e-2 < out.std() < 1e2


def test_conv_chain_single_linear_layer_matches_numpy() -> None:
    m = conv_chain([ConvSpec(6, kernel=1, relu6=False, residual=False)], 4, (5, 3), seed=2)
    outputs = _run(m)
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    ref = np.einsum("oi,nihw->nohw", w["layer1_conv.weight"][:, :, 0, 0], outputs["input"])
    ref += w["layer1_conv.bias"][None, :, None, None]
    np.testing.assert_allclose(outputs["output"], ref, atol=1e-5)


def test_conv_chain_output_can_be_residual_add() -> None:
    m = conv_chain([ConvSpec(4, residual=True)], 4, 8)
    assert m.graph.node[-1].op_type == "Add" and m.graph.node[-1].output[0] == "output"
    assert _run(m)["output"].shape == (1, 4, 8, 8)


def test_conv_spec_defaults_and_frozen() -> None:
    spec = ConvSpec(8)
    assert (spec.kernel, spec.stride, spec.padding, spec.dilation, spec.groups) == (
        3,
        1,
        None,
        1,
        1,
    )
    assert spec.relu6 and not spec.residual
    assert spec.pad == 1 and ConvSpec(8, kernel=5, dilation=2).pad == 4
    assert ConvSpec(8, padding=0).pad == 0
    assert spec.output_size(10) == 10 and ConvSpec(8, stride=2).output_size(10) == 5
    with pytest.raises(FrozenInstanceError):
        spec.kernel = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_channels": 0},
        {"out_channels": 8, "kernel": 0},
        {"out_channels": 8, "stride": 0},
        {"out_channels": 8, "padding": -1},
        {"out_channels": 8, "dilation": 0},
        {"out_channels": 8, "groups": 0},
        {"out_channels": 8, "groups": 3},  # 8 not divisible by 3
    ],
)
def test_conv_spec_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ConvSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_channels": 8.0},
        {"out_channels": True},
        {"out_channels": "8"},
        {"out_channels": 8, "padding": 1.5},
        {"out_channels": 8, "relu6": 1},
        {"out_channels": 8, "residual": None},
    ],
)
def test_conv_spec_type_errors(kwargs: dict) -> None:
    with pytest.raises(TypeError):
        ConvSpec(**kwargs)


def test_numpy_ints_accepted() -> None:
    spec = ConvSpec(np.int64(8), kernel=np.int32(1), groups=np.int64(2))
    assert type(spec.out_channels) is int and type(spec.kernel) is int
    m = conv_chain([spec], np.int64(4), (np.int64(9), 7))
    assert _run(m)["output"].shape == (1, 8, 9, 7)
    assert _shapes(mobilenet_v2(resolution=np.int64(32), blocks=np.int64(1)))["output"][1] == 1000


@pytest.mark.parametrize(
    ("layers", "in_channels", "resolution", "match"),
    [
        ([ConvSpec(8, residual=True)], 4, 8, "residual"),  # channels differ
        ([ConvSpec(4, stride=2, residual=True)], 4, 8, "residual"),  # spatial differs
        ([ConvSpec(4, padding=0, residual=True)], 4, 8, "residual"),  # 8 -> 6
        ([ConvSpec(6, groups=3)], 4, 8, "divisible"),  # 4 input channels, 3 groups
        ([ConvSpec(4, kernel=7, padding=0)], 4, 5, "empty"),
        ([], 4, 8, "at least one"),
        ([ConvSpec(4)], 0, 8, "in_channels"),
        ([ConvSpec(4)], 4, (8, 0), "width"),
        ([ConvSpec(4)], 4, 8, None),  # valid: no error
    ],
)
def test_conv_chain_validation(layers, in_channels, resolution, match) -> None:
    if match is None:
        conv_chain(layers, in_channels, resolution)
        return
    with pytest.raises(ValueError, match=match):
        conv_chain(layers, in_channels, resolution)
