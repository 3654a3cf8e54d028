"""In place inside the patch stage: a layer writes its patch window over the window it reads.

A stage layer computes its output window element by element in loop order (NHWC: rows,
columns, channels; NCHW: channels, rows, columns), each element from a footprint of its
source map it has just read. If the output region starts `shift` bytes below the source's
region in the pool, the writes trail the reads: element t's bytes land below every byte that
element t or any later one still reads, as soon as

    shift >= max over t of (last byte element t writes - suffix_min(first byte read at or after t) + 1)

(offsets from each region's start; `min_shift`). That holds for any stride, kernel and
padding, for depthwise layers (channel f reads channel f: the shift is about one output row)
and ordinary convolutions (every channel read: the shift is the output's growth over the
input plus one pixel), so the two regions need max(source, shift + output) bytes instead of
source + output. The read bounds are per axis (rows, columns, channels), clipped to the
window: padding is never read.

The planner (stage.scratch_pool) finds the candidates from the layers' geometry
(`candidates`): the source is an input of the layer that nothing later in the stage reads,
of the output's dtype, and the layer is a convolution or pooling over it (the skip operand
of a fused residual add counts, read at the output pixel). `choose_pairs` keeps the pairs
that make the pool smaller (a kept pair fixes the two regions' distance: chains slide
down, so not every pair pays). PatchTIR receives the kept pairs and checks each shift
against the loops it really builds (passes/patch_tir.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .arena import ALIGNMENT, Buffer, plan_arena
from .graph import Graph, dtype_bytes
from .layers import Layer
from .windows import ELEMENTWISE_OPS, WINDOWED_OPS, Window, _axis_params, stage_layout


@dataclass(frozen=True)
class InplacePair:
    out: int  # stage position of the layer whose output region goes in place
    source: int  # stage position of the layer that wrote the source map; -1: the streamed input
    shift: int  # bytes (aligned) the output region starts below the source region (< 0: above)
    reverse: bool = False  # the layer's loops over rows, columns and channels run backwards


@dataclass(frozen=True)
class Footprint:
    """How output element (y, x, f) reads the source: rows y * s + r * d - p for r < k (and
    columns likewise), channel f (`same_channel`) or every channel."""

    rows: tuple[int, int, int, int]  # k, s, d, p
    cols: tuple[int, int, int, int]
    same_channel: bool


@dataclass(frozen=True)
class Geometry:
    """One map region of one patch: its window (map coordinates) and the pitch it is laid out with."""

    window: Window
    height: int  # rows the region holds (the largest window's, or this window's when streamed)
    width: int
    channels: int
    itemsize: int


def min_shift(write_start: np.ndarray, itemsize: int, read_first: np.ndarray) -> int:
    """The least shift (bytes) for which no write, in loop order, lands on a byte the same or a
    later element reads (module docstring); arrays in loop order, offsets from each region's start."""
    if write_start.size == 0:
        return 0
    later = np.minimum.accumulate(read_first[::-1])[::-1]  # first byte read at or after t
    return max(0, int(np.max(write_start + itemsize - later)))


def shifts(
    write_start: np.ndarray, itemsize: int, read_first: np.ndarray, read_last: np.ndarray, sizes: tuple[int, int]
) -> tuple[int, int]:
    """(forward, reverse): how far below its source the output region may start when the
    loops run forward (at least this far, rounded up to the alignment) or all backwards (at
    most this far, rounded down): backwards is forwards seen from the regions' ends, so the
    writes trail the reads upwards. `sizes`: (output, source) region bytes; arrays as min_shift's,
    read_last the last byte each element reads."""
    out_bytes, src_bytes = sizes
    forward = min_shift(write_start, itemsize, read_first)
    mirrored = min_shift((out_bytes - write_start - itemsize)[::-1], itemsize, (src_bytes - 1 - read_last)[::-1])
    reverse = out_bytes - src_bytes - mirrored  # output end = source end + mirrored
    return -(-forward // ALIGNMENT) * ALIGNMENT, (reverse // ALIGNMENT) * ALIGNMENT


def shift_for(layout: str, out: Geometry, src: Geometry, fp: Footprint, sizes: tuple[int, int]) -> tuple[int, int]:
    """`shifts` for one patch, the layer's loops taken in `layout` order.

    It samples four channels, exactly: with every pixel's (NHWC) or plane's (NCHW) channel
    index f, write and read offsets are linear in f and the reads non-decreasing, so each term
    of min_shift is the larger of two functions linear in f (own reads, or the next element's),
    whose maximum lies at f = 0, C-2 or C-1; the next element of f = 0 and of C-2 is channel 1
    and C-1, both kept, and dropping the channels between changes no suffix minimum. PatchTIR
    recomputes the shifts over every channel from its loops (passes/patch_inplace.py)."""
    w = out.window
    y = np.arange(w.y0, w.y1)
    x = np.arange(w.x0, w.x1)
    # channels 0, 1, C-2 and C-1 only: writes and reads are linear in the channel, so the
    # maximum of min_shift's terms over channels is at an end of each run (docstring of `sampled`)
    f = np.array(sorted({c for c in (0, 1, out.channels - 2, out.channels - 1) if 0 <= c < out.channels}))
    (kh, sh, dh, ph), (kw, sw, dw, pw) = fp.rows, fp.cols
    row = np.maximum(0, y * sh - ph) - src.window.y0  # first source row each output row reads
    col = np.maximum(0, x * sw - pw) - src.window.x0
    row_end = np.minimum(src.window.y1 - 1, y * sh - ph + (kh - 1) * dh) - src.window.y0  # and the last
    col_end = np.minimum(src.window.x1 - 1, x * sw - pw + (kw - 1) * dw) - src.window.x0
    ch = f if fp.same_channel else np.zeros_like(f)
    ch_end = f if fp.same_channel else np.full_like(f, src.channels - 1)
    order = (0, 1, 2) if layout == "NHWC" else (2, 0, 1)  # the loops' order over (rows, columns, channels)

    def grid(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
        axes = [a, b, c]
        mesh = np.meshgrid(*(axes[i] for i in order), indexing="ij")
        return [mesh[order.index(i)].ravel() for i in range(3)]  # in loop order

    def lay(geo: Geometry, yy: np.ndarray, xx: np.ndarray, ff: np.ndarray) -> np.ndarray:
        if layout == "NHWC":
            return ((yy * geo.width + xx) * geo.channels + ff) * geo.itemsize
        return ((ff * geo.height + yy) * geo.width + xx) * geo.itemsize

    write = lay(out, *grid(y - w.y0, x - w.x0, f))
    first = lay(src, *grid(row, col, ch))
    last = lay(src, *grid(row_end, col_end, ch_end)) + src.itemsize - 1
    return shifts(write, out.itemsize, first, last, sizes)


def footprint(layer: Layer, source: str) -> Footprint | None:
    """How `layer` reads `source`, if its loops can write over it: a convolution or pooling
    over its data input, or the skip operand of a fused residual add (read at the output
    pixel); None for anything else."""
    cin = next((s[layer.channel_axis] for n, s in zip(layer.inputs, layer.input_shapes, strict=True) if n == source))
    cout = layer.output_shape[layer.channel_axis]
    data = layer.data_input or layer.inputs[0]
    if source != data:
        if layer.op == "nn.conv2d" and cin == cout:  # the residual operand, added per element
            return Footprint((1, 1, 1, 0), (1, 1, 1, 0), True)
        return None
    if layer.op == "nn.conv2d":
        rows, cols = _axis_params(layer)
        if layer.is_depthwise:
            return Footprint(rows, cols, True)
        return Footprint(rows, cols, False) if layer.groups == 1 else None
    if layer.op in WINDOWED_OPS or layer.op in ELEMENTWISE_OPS:
        rows, cols = _axis_params(layer)
        return Footprint(rows, cols, True) if cin == cout and len(layer.inputs) == 1 else None
    return None


def candidates(
    graph: Graph,
    layers: list[Layer],
    stage: tuple[int, ...],
    streamed: bool,
) -> dict[int, tuple[int, str, Footprint]]:
    """stage position -> (source position or -1, source tensor id, footprint): for each stage
    layer but the last, the one source its output may overwrite (the largest, if two). Layer
    k is call stage[k] of `graph`; a source no layer writes is the (streamed) model input."""
    members = [layers[i] for i in stage]
    pos = {layer.name: k for k, layer in enumerate(members)}
    produced = {layer.name for layer in layers}
    layout = stage_layout(layers, list(stage))
    last_reader: dict[str, int] = {}
    for k, layer in enumerate(members):
        for n in layer.inputs:
            last_reader[n] = k
    found: dict[int, tuple[int, str, Footprint]] = {}
    for k, layer in enumerate(members[:-1]):
        if len(layer.output_shape) != 4 or layer.output_shape[0] != 1:
            continue
        best = None
        for n in dict.fromkeys(layer.inputs):
            src_pos = pos.get(n, -1 if streamed and n not in produced else None)
            if src_pos is None or last_reader[n] != k or src_pos == len(members) - 1:
                continue
            src = graph.tensors[graph.inputs[0] if src_pos < 0 else graph.calls[stage[src_pos]].outputs[0]]
            if src.dtype != graph.tensors[graph.calls[stage[k]].outputs[0]].dtype:
                continue
            fp = footprint(layer, n)
            if fp is not None and not fp.same_channel and layout == "NCHW":
                fp = None  # every output plane reads every input plane: nothing to overwrite early
            if fp is not None and (best is None or src.nbytes > best[1].nbytes):
                best = (src_pos, src, fp)
        if best is not None:
            found[k] = (best[0], best[1].name, best[2])
    return found


def pair_shifts(
    graph: Graph,
    layers: list[Layer],
    stage: tuple[int, ...],
    windows: Sequence[dict[int, tuple[Window, Window]]],
    found: dict[int, tuple[int, str, Footprint]],
    layout: str,
) -> dict[int, tuple[int, int]]:
    """stage position -> (forward, reverse) shifts its pair allows over every patch (windows:
    per patch, layer index -> (first input window, output window), as stage.plan_windows)."""
    members = [layers[i] for i in stage]
    ch_axis = 3 if layout == "NHWC" else 1

    def largest(i: int) -> tuple[int, int]:
        return max(win[i][1].height for win in windows), max(win[i][1].width for win in windows)

    found_shifts: dict[int, tuple[int, int]] = {}
    for k, (src_pos, name, fp) in found.items():
        layer, src = members[k], graph.tensors[name]
        itemsize = dtype_bytes(graph.tensors[graph.calls[stage[k]].outputs[0]].dtype)
        out_hw_max = largest(layer.index)
        cout, cin = layer.output_shape[ch_axis], src.shape[ch_axis]
        if src_pos < 0:
            src_hw = (
                max(win[members[0].index][0].height for win in windows),
                max(win[members[0].index][0].width for win in windows),
            )
        else:
            src_hw = largest(members[src_pos].index)
        sizes = (out_hw_max[0] * out_hw_max[1] * cout * itemsize, src_hw[0] * src_hw[1] * cin * dtype_bytes(src.dtype))
        forward, reverse = 0, sizes[0]
        for win in windows:
            out = Geometry(win[layer.index][1], *out_hw_max, cout, itemsize)
            if src_pos < 0:
                sw = win[members[0].index][0]
                sgeo = Geometry(sw, sw.height, sw.width, cin, dtype_bytes(src.dtype))
            else:
                sgeo = Geometry(win[members[src_pos].index][1], *src_hw, cin, itemsize)
            f, r = shift_for(layout, out, sgeo, fp, sizes)
            forward, reverse = max(forward, f), min(reverse, r)
        found_shifts[k] = (forward, reverse)
    return found_shifts


def choose_pairs(
    regions: list[Buffer], keys: dict[int, str], offers: dict[int, tuple[int, tuple[int, int]]]
) -> list[InplacePair]:
    """The pairs to keep: `regions` are the pool's buffers (keys[position] names a position's
    region, keys[-1] the streamed input's), `offers` position -> (source position, (forward,
    reverse) shifts). Greedy, deterministic: from each start (every pair forward, every pair
    backwards, none), each pair in turn takes whichever of off / forward / backwards makes the
    pool smallest; the smallest pool wins (then fewer pairs, then the earlier start)."""
    order = sorted(offers)

    def pairs(choice: dict[int, int]) -> list[InplacePair]:  # position -> 0 forward, 1 backwards
        return [InplacePair(k, offers[k][0], offers[k][1][d], d == 1) for k, d in sorted(choice.items())]

    sizes: dict[tuple, int] = {}

    def size(choice: dict[int, int]) -> int:
        key = tuple(sorted(choice.items()))
        if key not in sizes:
            sizes[key] = pool_size(regions, keys, pairs(choice))
        return sizes[key]

    results = []
    for n, start in enumerate(({k: 0 for k in order}, {k: 1 for k in order}, {})):
        choice = dict(start)
        best = size(choice)
        for k in order:
            for option in (None, 0, 1):
                trial = {j: d for j, d in choice.items() if j != k} | ({} if option is None else {k: option})
                trial_size = size(trial)
                if trial_size < best:
                    choice, best = trial, trial_size
        results.append((best, len(choice), n, choice))
    return pairs(min(results, key=lambda r: r[:3])[3])


def pool_size(regions: list[Buffer], keys: dict[int, str], pairs: list[InplacePair]) -> int:
    """The pool's bytes with these pairs (arena.plan_arena, each output `shift` below its source)."""
    paired = {keys[p.out]: (keys[p.source], p.shift) for p in pairs}
    laid = [Buffer(b.key, b.size, b.first, b.last, *paired[b.key]) if b.key in paired else b for b in regions]
    return plan_arena(laid, alignment=ALIGNMENT).size
