"""Patch arithmetic over the layer graph: windows, receptive fields, tiles and halo MACs.

Pure Python over `Layer` lists (tvm_patch_core.layers).

Window arithmetic (per spatial axis, half-open windows in a tensor's own pixels).
For a layer with kernel k, stride s, dilation d and padding-before p, the input rows
an output window [out0, out1) reads are

    in0 = out0 * s - p
    in1 = (out1 - 1) * s - p + (k - 1) * d + 1

clipped to [0, H_in): rows outside the input are padding, which border patches
produce themselves, so clipping loses nothing. Elementwise layers (and 1x1 stride-1
convolutions, k = s = 1, p = 0) map a window through unchanged. Pooling uses its own
kernel, stride and padding.

A layer's first activation input is the one its anchor op (conv/pool) reads; any
further inputs are a fused residual add, read at the output window unchanged.
Walking a stage backwards from its last layer, a tensor read by several layers of
the stage must provide the bounding box (union) of what they need. Halos are
recomputed per patch; `patch_macs` counts that work exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UnsupportedStageLayer
from .layers import Layer

WINDOWED_OPS = frozenset({"nn.conv2d", "nn.max_pool2d", "nn.avg_pool2d"})
ELEMENTWISE_OPS = frozenset(
    {"add", "subtract", "multiply", "divide", "maximum", "minimum", "clip", "nn.relu", "nn.relu6"}
)


@dataclass(frozen=True)
class Window:
    """Half-open region [y0, y1) x [x0, x1) in a tensor's own pixel coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int

    def __post_init__(self) -> None:
        if self.y1 < self.y0 or self.x1 < self.x0:
            raise ValueError(f"window {self} has negative extent")

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def area(self) -> int:
        return self.height * self.width

    def union(self, other: Window) -> Window:
        """Bounding box of both windows."""
        return Window(
            min(self.y0, other.y0), max(self.y1, other.y1),
            min(self.x0, other.x0), max(self.x1, other.x1),
        )  # fmt: skip


def spatial_axes(layer: Layer, layout: str = "") -> tuple[int, int]:
    """(h_axis, w_axis) of a rank-4 activation; `layout` is used when the layer has none."""
    lay = layer.layout or layout
    if lay not in ("NHWC", "NCHW"):
        raise UnsupportedStageLayer(f"layer {layer.index} ({layer.op}) has layout {lay!r}; need NHWC or NCHW")
    return lay.index("H"), lay.index("W")


def _hw(layer: Layer, shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    if len(shape) != 4:
        raise UnsupportedStageLayer(
            f"layer {layer.index} ({layer.op}) has a rank-{len(shape)} tensor {shape}; need rank 4"
        )
    h, w = spatial_axes(layer, layout)
    return shape[h], shape[w]


def out_hw(layer: Layer, layout: str = "") -> tuple[int, int]:
    """Output (height, width)."""
    return _hw(layer, layer.output_shape, layout)


def in_hw(layer: Layer, layout: str = "", which: int = 0) -> tuple[int, int]:
    """(height, width) of activation input `which` (0: the one the anchor op reads)."""
    return _hw(layer, layer.input_shapes[which], layout)


def _axis_params(layer: Layer) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(k, s, d, pad_before) for the h and w axes."""
    if layer.op in WINDOWED_OPS:
        k = layer.kernel or (1, 1)
        s = layer.strides or (1, 1)
        d = layer.dilation or (1, 1)
        p = layer.padding or (0, 0, 0, 0)
        return (k[0], s[0], d[0], p[0]), (k[1], s[1], d[1], p[1])
    if layer.op in ELEMENTWISE_OPS:
        return (1, 1, 1, 0), (1, 1, 1, 0)
    raise UnsupportedStageLayer(f"layer {layer.index} op {layer.op!r} has no window rule; it must end the patch stage")


def _axis_window(o0: int, o1: int, k: int, s: int, d: int, p: int, size: int) -> tuple[int, int]:
    """Input rows [i0, i1) that output rows [o0, o1) read, clipped to the map. Output rows
    that read only padding (a pad wider than the kernel's span) need none: an empty window."""
    i0 = min(max(0, o0 * s - p), size)
    i1 = min(size, (o1 - 1) * s - p + (k - 1) * d + 1)
    return i0, max(i0, i1)


def input_window(layer: Layer, out: Window, layout: str = "") -> Window:
    """Region of the layer's first activation input that output window `out` needs."""
    (kh, sh, dh, ph), (kw, sw, dw, pw) = _axis_params(layer)
    h_in, w_in = in_hw(layer, layout)
    if layer.op in ELEMENTWISE_OPS and (h_in, w_in) != out_hw(layer, layout):
        raise UnsupportedStageLayer(
            f"layer {layer.index} ({layer.op}) broadcasts {(h_in, w_in)} to "
            f"{out_hw(layer, layout)}; need equal spatial shapes"
        )
    y0, y1 = _axis_window(out.y0, out.y1, kh, sh, dh, ph, h_in)
    x0, x1 = _axis_window(out.x0, out.x1, kw, sw, dw, pw, w_in)
    return Window(y0, y1, x0, x1)


def input_windows(layer: Layer, out: Window, layout: str = "") -> tuple[Window, ...]:
    """One window per activation input: the anchor's input, then residuals at `out`."""
    rest = []
    for i in range(1, len(layer.inputs)):
        if in_hw(layer, layout, i) != out_hw(layer, layout):
            raise UnsupportedStageLayer(
                f"layer {layer.index} ({layer.op}) input {layer.inputs[i]} has spatial shape "
                f"{in_hw(layer, layout, i)}, output {out_hw(layer, layout)}; cannot fuse as residual"
            )
        rest.append(out)
    return (input_window(layer, out, layout), *rest)


def _stage_layers(layers: Sequence[Layer], stage: Sequence[int]) -> list[Layer]:
    idx = list(stage)
    if not idx or idx != list(range(idx[0], idx[0] + len(idx))):
        raise ValueError(f"stage {idx} is not a non-empty run of consecutive layer indices")
    by_index = {layer.index: layer for layer in layers}
    missing = [i for i in idx if i not in by_index]
    if missing:
        raise ValueError(f"stage layers {missing} are not in the layer list")
    return [by_index[i] for i in idx]


def stage_layout(layers: Sequence[Layer], stage: Sequence[int]) -> str:
    """The one layout the stage's conv/pool layers share."""
    found = {layer.layout for layer in _stage_layers(layers, stage) if layer.layout}
    if len(found) != 1:
        raise UnsupportedStageLayer(f"stage {list(stage)} has layouts {sorted(found)}; need one")
    return found.pop()


def stage_windows(layers: Sequence[Layer], stage: Sequence[int], out: Window) -> dict[int, tuple[Window, Window]]:
    """layer index -> (first-input window, output window) for output window `out` of the
    stage's last layer. Tensors read by several stage layers provide the union."""
    members = _stage_layers(layers, stage)
    layout = stage_layout(layers, stage)
    last = members[-1]
    inside = {layer.name for layer in members}
    in_stage = {layer.index for layer in members}
    for layer in layers:
        if layer.index in in_stage:
            continue
        leaked = [n for n in layer.inputs if n in inside and n != last.name]
        if leaked:
            raise UnsupportedStageLayer(
                f"layer {layer.index} outside stage {list(stage)} reads {leaked}; "
                "only the stage's last output may leave it"
            )
    need: dict[str, Window] = {last.name: out}
    result: dict[int, tuple[Window, Window]] = {}
    for layer in reversed(members):
        if layer.name not in need:
            raise UnsupportedStageLayer(
                f"layer {layer.index} output {layer.name} is not read inside stage {list(stage)}"
            )
        o = need[layer.name]
        wins = input_windows(layer, o, layout)
        result[layer.index] = (wins[0], o)
        for name, w in zip(layer.inputs, wins, strict=True):
            need[name] = need[name].union(w) if name in need else w
    return dict(sorted(result.items()))


def receptive_field(layers: Sequence[Layer], stage: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """(rf_h, rf_w, cumulative_stride_h, cumulative_stride_w) per stage layer: how many
    stage-input pixels one output pixel depends on, borders ignored."""
    rf: dict[str, tuple[int, int, int, int]] = {}
    out: list[tuple[int, int, int, int]] = []
    for layer in _stage_layers(layers, stage):
        (kh, sh, dh, _), (kw, sw, dw, _) = _axis_params(layer)
        srcs = [rf.get(name, (1, 1, 1, 1)) for name in layer.inputs]
        rh, rw, jh, jw = srcs[0]
        cur = (rh + (kh - 1) * dh * jh, rw + (kw - 1) * dw * jw, jh * sh, jw * sw)
        for r in srcs[1:]:  # residual: same stride, the wider field wins
            cur = (max(cur[0], r[0]), max(cur[1], r[1]), cur[2], cur[3])
        rf[layer.name] = cur
        out.append(cur)
    return out


def tiles(size: int, n: int) -> list[tuple[int, int]]:
    """Split [0, size) into n contiguous half-open tiles, sizes within 1, larger first."""
    if n < 1 or n > size:
        raise ValueError(f"cannot split {size} pixels into {n} tiles; need 1 <= n <= {size}")
    q, r = divmod(size, n)
    bounds, start = [], 0
    for i in range(n):
        end = start + q + (1 if i < r else 0)
        bounds.append((start, end))
        start = end
    return bounds


@dataclass(frozen=True)
class PatchCost:
    stage: tuple[int, ...]
    per_layer_macs: int  # the stage run layer by layer, once
    patched_macs: int  # the stage run patch by patch, halos recomputed
    extra_macs: int
    extra_fraction: float  # extra_macs / per_layer_macs
    layer_patched_macs: tuple[int, ...]  # per stage layer, summed over patches
    max_in_window: tuple[tuple[int, int], ...]  # per stage layer: (max height, max width)
    max_out_window: tuple[tuple[int, int], ...]


def _check_tiling(bounds: Sequence[tuple[int, int]], size: int, axis: str) -> None:
    ok = bool(bounds) and bounds[0][0] == 0 and bounds[-1][1] == size
    ok = ok and all(a < b for a, b in bounds)
    ok = ok and all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))
    if not ok:
        raise ValueError(f"{axis} tiles {list(bounds)} do not cover [0, {size}) contiguously")


def patch_macs(
    layers: Sequence[Layer],
    stage: Sequence[int],
    grid: tuple[int, int] = (1, 1),
    tiles_h: Sequence[tuple[int, int]] | None = None,
    tiles_w: Sequence[tuple[int, int]] | None = None,
) -> PatchCost:
    """Exact MACs of running the stage patch by patch over a grid on its last output.

    Conv MACs per output pixel are uniform, so a layer computing window W costs
    layer.macs * W.area / (H_out * W_out). Explicit tiles_h/tiles_w override `grid`.
    """
    members = _stage_layers(layers, stage)
    layout = stage_layout(layers, stage)
    h, w = out_hw(members[-1], layout)
    tiles_h = list(tiles_h) if tiles_h is not None else tiles(h, grid[0])
    tiles_w = list(tiles_w) if tiles_w is not None else tiles(w, grid[1])
    _check_tiling(tiles_h, h, "height")
    _check_tiling(tiles_w, w, "width")
    per_pixel = []
    for layer in members:
        area = out_hw(layer, layout)[0] * out_hw(layer, layout)[1]
        if layer.macs % area:
            raise ValueError(
                f"layer {layer.index} ({layer.op}) has {layer.macs} MACs over {area} output "
                "pixels: not uniform per pixel"
            )
        per_pixel.append(layer.macs // area)
    n = len(members)
    totals = [0] * n
    max_in = [(0, 0)] * n
    max_out = [(0, 0)] * n
    for y0, y1 in tiles_h:
        for x0, x1 in tiles_w:
            wins = stage_windows(layers, stage, Window(y0, y1, x0, x1))
            for i, layer in enumerate(members):
                wi, wo = wins[layer.index]
                totals[i] += per_pixel[i] * wo.area
                max_in[i] = (max(max_in[i][0], wi.height), max(max_in[i][1], wi.width))
                max_out[i] = (max(max_out[i][0], wo.height), max(max_out[i][1], wo.width))
    base = sum(layer.macs for layer in members)
    patched = sum(totals)
    return PatchCost(
        stage=tuple(stage),
        per_layer_macs=base,
        patched_macs=patched,
        extra_macs=patched - base,
        extra_fraction=(patched - base) / base if base else 0.0,
        layer_patched_macs=tuple(totals),
        max_in_window=tuple(max_in),
        max_out_window=tuple(max_out),
    )


def memory_profile(layers: Sequence[Layer]) -> list[int]:
    """Bytes of activation inputs + output per layer (the MCUNetV2 Figure 1 curve)."""
    return [layer.activation_bytes for layer in layers]


def peak_layer(layers: Sequence[Layer]) -> Layer:
    """The first layer with the most activation bytes."""
    if not layers:
        raise ValueError("peak_layer of an empty layer list")
    return max(layers, key=lambda layer: layer.activation_bytes)
