"""Window, receptive-field, tile and halo-MAC arithmetic of tvm_patch_core.windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvm_patch_core.errors import NoPatchStage
from tvm_patch_core.layers import Layer
from tvm_patch_core.options import CompileOptions
from tvm_patch_core.patch_planner import choose_plan, stage_refusal
from tvm_patch_core.windows import (
    UnsupportedStageLayer,
    Window,
    in_hw,
    input_window,
    memory_profile,
    out_hw,
    patch_macs,
    peak_layer,
    receptive_field,
    spatial_axes,
    stage_windows,
    tiles,
)

VWW_LAYERS = Path(__file__).resolve().parents[1] / "data" / "layers" / "vww_96_int8.json"


def conv(
    index: int,
    name: str,
    inputs: tuple[str, ...],
    hw_in: int,
    hw_out: int,
    k: int = 3,
    s: int = 1,
    pad: tuple[int, int, int, int] = (1, 1, 1, 1),
    c: int = 4,
    layout: str = "NHWC",
) -> Layer:
    """A square conv layer with c channels in and out; extra inputs are fused residuals."""

    def shape(hw: int) -> tuple[int, ...]:
        return (1, hw, hw, c) if layout == "NHWC" else (1, c, hw, hw)

    shapes = (shape(hw_in), *tuple(shape(hw_out) for _ in inputs[1:]))
    return Layer(
        index=index,
        name=name,
        inputs=inputs,
        op="nn.conv2d",
        input_shapes=shapes,
        output_shape=shape(hw_out),
        dtype="float32",
        kernel=(k, k),
        strides=(s, s),
        padding=pad,
        dilation=(1, 1),
        layout=layout,
        macs=hw_out * hw_out * c * c * k * k,
        activation_bytes=4 * c * (hw_in * hw_in + hw_out * hw_out),
    )


def test_axes_follow_layout():
    nhwc = conv(0, "a", ("x",), 8, 8)
    nchw = conv(0, "a", ("x",), 8, 4, s=2, layout="NCHW")
    assert spatial_axes(nhwc) == (1, 2) and spatial_axes(nchw) == (2, 3)
    assert out_hw(nchw) == (4, 4) and in_hw(nchw) == (8, 8)


def test_3x3_s1_p1_window_and_border_clipping():
    layer = conv(0, "a", ("x",), 8, 8)
    # interior: out rows [2,4) read [2-1, (4-1)+1+1) = [1,5)
    assert input_window(layer, Window(2, 4, 2, 4)) == Window(1, 5, 1, 5)
    # top-left border: [-1, 3) clips to [0, 3); bottom-right: [5, 9) clips to [5, 8)
    assert input_window(layer, Window(0, 2, 6, 8)) == Window(0, 3, 5, 8)


def test_3x3_s2_tflite_asymmetric_padding():
    """TFLite SAME with stride 2 pads only bottom/right: (0, 0, 1, 1)."""
    layer = conv(0, "a", ("x",), 96, 48, s=2, pad=(0, 0, 1, 1))
    # out [0,24): in [0, 23*2 + 3) = [0, 49); out [24,48): [48, 97) clipped to 96
    assert input_window(layer, Window(0, 24, 24, 48)) == Window(0, 49, 48, 96)
    # out [10,12): in [20, 11*2 + 3) = [20, 25)
    assert input_window(layer, Window(10, 12, 10, 11)) == Window(20, 25, 20, 23)


def test_outputs_that_read_only_padding_need_an_empty_window():
    """A pad wider than the kernel's span: some output rows and columns are padding (and bias)
    only. Their window is empty, at the border it would have read (fuzzer seed 34: the
    planner raised "negative extent" on a 1x1 conv padded (2, 3, 2, 1))."""
    layer = conv(0, "a", ("x",), 8, 12, k=1, pad=(2, 2, 2, 2))
    assert input_window(layer, Window(0, 2, 0, 12)) == Window(0, 0, 0, 8)  # rows -2, -1
    assert input_window(layer, Window(11, 12, 11, 12)) == Window(8, 8, 8, 8)  # row, column 9
    assert input_window(layer, Window(1, 3, 9, 11)) == Window(0, 1, 7, 8)  # one real row, column


def test_chain_halo_grows_by_two_per_3x3_layer():
    layers = [conv(0, "a", ("x",), 16, 16), conv(1, "b", ("a",), 16, 16)]
    wins = stage_windows(layers, [0, 1], Window(4, 8, 4, 8))
    assert wins[1] == (Window(3, 9, 3, 9), Window(4, 8, 4, 8))
    assert wins[0] == (Window(2, 10, 2, 10), Window(3, 9, 3, 9))


def test_residual_needs_union_of_readers():
    """a feeds both the 3x3 conv b and the residual add fused into c."""
    layers = [
        conv(0, "a", ("x",), 8, 8, k=1, pad=(0, 0, 0, 0)),
        conv(1, "b", ("a",), 8, 8),
        conv(2, "c", ("b", "a"), 8, 8, k=1, pad=(0, 0, 0, 0)),
    ]
    wins = stage_windows(layers, [0, 1, 2], Window(2, 4, 0, 2))
    assert wins[2] == (Window(2, 4, 0, 2), Window(2, 4, 0, 2))
    assert wins[1] == (Window(1, 5, 0, 3), Window(2, 4, 0, 2))
    # c reads a at [2,4)x[0,2), b reads a at [1,5)x[0,3): the bounding box
    assert wins[0][1] == Window(1, 5, 0, 3)
    assert Window(0, 2, 5, 6).union(Window(4, 5, 0, 1)) == Window(0, 5, 0, 6)


def test_stage_rejects_leaks_and_unwindowed_ops():
    layers = [conv(0, "a", ("x",), 8, 8), conv(1, "b", ("a",), 8, 8), conv(2, "c", ("a",), 8, 8)]
    with pytest.raises(UnsupportedStageLayer, match="reads"):
        stage_windows(layers, [0, 1], Window(0, 8, 0, 8))
    with pytest.raises(ValueError, match="consecutive"):
        stage_windows(layers, [0, 2], Window(0, 8, 0, 8))


def test_receptive_field_of_mobilenet_head():
    """3x3 s2, 3x3 depthwise s1, 1x1: rf 3 -> 3 + 2*2 = 7 -> 7, stride 2 throughout."""
    layers = [
        conv(0, "a", ("x",), 32, 16, s=2, pad=(0, 0, 1, 1)),
        conv(1, "b", ("a",), 16, 16),
        conv(2, "c", ("b",), 16, 16, k=1, pad=(0, 0, 0, 0)),
    ]
    assert receptive_field(layers, [0, 1, 2]) == [(3, 3, 2, 2), (7, 7, 2, 2), (7, 7, 2, 2)]


def test_tiles():
    assert tiles(48, 2) == [(0, 24), (24, 48)]
    assert tiles(10, 3) == [(0, 4), (4, 7), (7, 10)]  # 10 = 4 + 3 + 3, larger first
    assert tiles(5, 5) == [(i, i + 1) for i in range(5)]
    with pytest.raises(ValueError, match="3 pixels into 4 tiles"):
        tiles(3, 4)


def test_patch_macs_one_patch_has_no_extra():
    layers = [conv(0, "a", ("x",), 16, 8, s=2, pad=(0, 0, 1, 1)), conv(1, "b", ("a",), 8, 8)]
    cost = patch_macs(layers, [0, 1], (1, 1))
    assert cost.patched_macs == cost.per_layer_macs == layers[0].macs + layers[1].macs
    assert cost.extra_macs == 0 and cost.extra_fraction == 0.0
    assert cost.max_out_window == ((8, 8), (8, 8))


def test_patch_macs_explicit_tiles_must_cover():
    layers = [conv(0, "a", ("x",), 8, 8)]
    with pytest.raises(ValueError, match="cover"):
        patch_macs(layers, [0], tiles_h=[(0, 3), (4, 8)], tiles_w=[(0, 8)])


def test_memory_profile_and_peak():
    layers = [conv(0, "a", ("x",), 16, 8, s=2), conv(1, "b", ("a",), 8, 8)]
    assert memory_profile(layers) == [4 * 4 * (256 + 64), 4 * 4 * 128]
    assert peak_layer(layers) is layers[0]


@pytest.fixture(scope="module")
def vww_layers() -> list[Layer]:
    """MLPerf Tiny VWW int8's layer graph, as tvm_patch.layer_graph reads it (a data file, so
    this tier needs no TVM; tests/host/test_layer_graph.py checks the file against the model)."""
    return load_layers(VWW_LAYERS)


def load_layers(path: Path) -> list[Layer]:
    def tuples(v):
        return tuple(tuples(x) for x in v) if isinstance(v, list) else v

    return [Layer(**{k: tuples(v) for k, v in d.items()}) for d in json.loads(path.read_text())]


def _brute_force_macs(layers: list[Layer], stage: list[int], grid: tuple[int, int]) -> int:
    """Recount a linear NHWC conv chain pixel by pixel: the set of output pixels each
    layer must produce for each tile, from the kernel footprint of every needed pixel."""
    last = layers[stage[-1]]
    h, w = last.output_shape[1], last.output_shape[2]
    total = 0
    for y0, y1 in tiles(h, grid[0]):
        for x0, x1 in tiles(w, grid[1]):
            need = {(y, x) for y in range(y0, y1) for x in range(x0, x1)}
            for i in reversed(stage):
                layer = layers[i]
                oh, ow = layer.output_shape[1], layer.output_shape[2]
                total += layer.macs // (oh * ow) * len(need)
                ih, iw = layer.input_shapes[0][1], layer.input_shapes[0][2]
                (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.strides, layer.padding[:2]
                need = {
                    (y * sh - ph + dy, x * sw - pw + dx)
                    for y, x in need
                    for dy in range(kh)
                    for dx in range(kw)
                    if 0 <= y * sh - ph + dy < ih and 0 <= x * sw - pw + dx < iw
                }
    return total


def test_vww_first_four_layers_2x2_matches_brute_force(vww_layers):
    stage = [0, 1, 2, 3]
    assert all(len(vww_layers[i].inputs) == 1 for i in stage), "brute force assumes a chain"
    cost = patch_macs(vww_layers, stage, (2, 2))
    assert cost.per_layer_macs == sum(vww_layers[i].macs for i in stage)
    assert cost.extra_macs > 0
    assert cost.patched_macs == _brute_force_macs(vww_layers, stage, (2, 2))
    assert patch_macs(vww_layers, stage, (1, 1)).extra_macs == 0


def test_op_without_window_rule_ends_the_stage():
    dense = Layer(1, "d", ("a",), "matmul", ((1, 8, 8, 4),), (1, 8, 8, 4), "float32", macs=1)
    layers = [conv(0, "a", ("x",), 8, 8), dense]
    with pytest.raises(UnsupportedStageLayer, match="matmul"):
        stage_windows(layers, [0, 1], Window(0, 4, 0, 4))


def test_planner_says_why_no_automatic_stage_exists():
    """The automatic search leaves at least one layer after the stage, so a two-layer model has
    no candidate; the refusal said "no patch stage possible: None" (fuzzer seed 38)."""

    layers = [conv(0, "a", ("x",), 8, 8), conv(1, "b", ("a",), 8, 8)]
    with pytest.raises(NoPatchStage, match=r"has 2 layers; .*\(--split 2 puts both"):
        choose_plan(None, layers, CompileOptions(schedule="patch"))
    tail = [  # 8,192 activation bytes in layer 0, then 272 and 32: under 1/16 of the peak
        conv(0, "a", ("x",), 8, 8, c=16),
        conv(1, "b", ("a",), 8, 2, k=1, s=4, pad=(0, 0, 0, 0), c=1),
        conv(2, "c", ("b",), 2, 2, c=1),
    ]
    with pytest.raises(NoPatchStage, match=r"only layer 0 \(a\) holds 1/16 or more"):
        choose_plan(None, tail, CompileOptions(schedule="patch"))


def test_planner_ends_the_stage_before_a_one_pixel_map():
    """PatchTIR finds a map's H and W loops in its nest; TVM drops loops of extent 1, so a map
    one pixel high or wide cannot be tiled. The planner refused nothing and PatchTIR refused
    the whole stage (fuzzer seed 27: a 3x1 map); now the stage ends before such a layer."""

    layers = [conv(0, "a", ("x",), 8, 8), conv(1, "b", ("a",), 8, 1, k=8, pad=(0, 0, 0, 0))]
    assert stage_refusal(layers, 1) is None
    assert "layer 1 (b) output is 1x1 pixels" in stage_refusal(layers, 2)
