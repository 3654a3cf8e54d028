"""In place inside the patch stage (tvm_patch_core.stage_inplace): the shifts, against a
brute-force walk of the loops written out here, and the arena's shifted pairs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from tvm_patch_core.arena import Buffer, plan_arena
from tvm_patch_core.stage_inplace import Footprint, Geometry, min_shift, shift_for, shifts
from tvm_patch_core.windows import Window


def _walk(layout, out, src, fp):
    """Every element in loop order: (first byte written, first and last byte read)."""
    (kh, sh, dh, ph), (kw, sw, dw, pw) = fp.rows, fp.cols
    w = out.window
    loops = {"y": range(w.y0, w.y1), "x": range(w.x0, w.x1), "f": range(out.channels)}
    order = "yxf" if layout == "NHWC" else "fyx"
    rows = []
    for values in itertools.product(*(loops[a] for a in order)):
        v = dict(zip(order, values, strict=True))
        y, x, f = v["y"], v["x"], v["f"]
        if layout == "NHWC":
            wr = (((y - w.y0) * out.width + (x - w.x0)) * out.channels + f) * out.itemsize
        else:
            wr = ((f * out.height + (y - w.y0)) * out.width + (x - w.x0)) * out.itemsize
        reads = []
        for r, c in itertools.product(range(kh), range(kw)):
            iy, ix = y * sh + r * dh - ph, x * sw + c * dw - pw
            if not (src.window.y0 <= iy < src.window.y1 and src.window.x0 <= ix < src.window.x1):
                continue  # padding: guarded, never read
            for ch in [f] if fp.same_channel else range(src.channels):
                yy, xx = iy - src.window.y0, ix - src.window.x0
                if layout == "NHWC":
                    reads.append(((yy * src.width + xx) * src.channels + ch) * src.itemsize)
                else:
                    reads.append(((ch * src.height + yy) * src.width + xx) * src.itemsize)
        rows.append((wr, min(reads, default=10**9), max(reads, default=-(10**9)) + src.itemsize - 1))
    return np.array(rows, dtype=np.int64)


def _brute(layout, out, src, fp, sizes):
    walk = _walk(layout, out, src, fp)
    return shifts(walk[:, 0], out.itemsize, walk[:, 1], walk[:, 2], sizes)


def _case(rng: random.Random, layout: str):
    k, s, p = rng.choice([(1, 1, 0), (3, 1, 1), (3, 2, 0), (3, 2, 1), (5, 1, 2)])
    same = rng.random() < 0.5
    oh, ow = rng.randint(2, 5), rng.randint(2, 5)
    full_h = full_w = 12
    y0, x0 = rng.randint(0, 3), rng.randint(0, 3)
    out_win = Window(y0, y0 + oh, x0, x0 + ow)
    iy0, ix0 = max(0, y0 * s - p), max(0, x0 * s - p)
    iy1 = min(full_h * s, (y0 + oh - 1) * s - p + k)
    ix1 = min(full_w * s, (x0 + ow - 1) * s - p + k)
    cout = rng.randint(1, 6)
    cin = cout if same else rng.randint(1, 6)
    out = Geometry(out_win, oh + rng.randint(0, 1), ow + rng.randint(0, 1), cout, 1)
    src_win = Window(iy0, iy1, ix0, ix1)
    src = Geometry(src_win, src_win.height + rng.randint(0, 1), src_win.width, cin, 1)
    fp = Footprint((k, s, 1, p), (k, s, 1, p), same)
    sizes = (out.height * out.width * cout, src.height * src.width * cin)
    return out, src, fp, sizes


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_sampled_channels_give_the_shifts_of_every_element(layout):
    rng = random.Random(7)
    for _ in range(150):
        out, src, fp, sizes = _case(rng, layout)
        assert shift_for(layout, out, src, fp, sizes) == _brute(layout, out, src, fp, sizes), (out, src, fp)


def test_min_shift_keeps_every_write_below_what_is_still_read():
    write = np.array([0, 1, 2, 3])  # four one-byte elements, each reading the byte above the last write
    read = np.array([1, 2, 3, 4])
    assert min_shift(write, 1, read) == 0
    assert min_shift(write, 1, np.array([0, 1, 2, 3])) == 1  # its own byte: must land one below
    assert min_shift(write, 1, np.array([4, 0, 5, 6])) == 2  # element 1 still reads byte 0


def test_a_depthwise_layer_needs_about_one_output_row():
    win = Window(0, 8, 0, 8)
    out = Geometry(win, 8, 8, 4, 1)
    src = Geometry(win, 8, 8, 4, 1)
    forward, reverse = shift_for("NHWC", out, src, Footprint((3, 1, 1, 1), (3, 1, 1, 1), True), (256, 256))
    assert 0 < forward <= 9 * 4 + 16  # a row and a pixel of the output, aligned
    assert -(9 * 4 + 16) <= reverse < 0  # backwards: that far above


def test_a_shifted_pair_shares_bytes_at_its_distance():
    a = Buffer("a", 100, 0, 1)
    b = Buffer("b", 300, 1, 2, inplace_of="a", inplace_shift=200)  # larger, 208 B below a
    plan = plan_arena([a, b])
    plan.check_no_overlap()
    assert plan.offset("a") - plan.offset("b") == 208
    assert plan.size == max(208 + 112, 304)
    back = Buffer("b", 64, 1, 2, inplace_of="a", inplace_shift=-48)  # above a's start
    plan = plan_arena([a, back])
    assert plan.offset("b") - plan.offset("a") == 48 and plan.size == 112
