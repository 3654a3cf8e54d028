"""InplaceDepthwise: the rescheduled depthwise kernel gives the same output when its output
buffer *is* its input buffer (the arena gives both one slot).

Before: conv loops n, h, w, c with the epilogue under c, writing the output directly.
After: c outermost; the whole channel goes to a one-channel temporary, then is copied out.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te
from tvm_patch.passes.inline_kernels import schedule_kernel
from tvm_patch.passes.inplace_depthwise import NotInplaceable, inplace_depthwise


def depthwise(stride: int = 1) -> tvm.tirx.PrimFunc:
    x = te.placeholder((1, 10, 10, 6), name="x")
    w = te.placeholder((3, 3, 6), name="w")
    pad = te.compute((1, 12, 12, 6), lambda n, h, ww, c: tvm.tirx.if_then_else(
        tvm.tirx.all(h >= 1, h < 11, ww >= 1, ww < 11), x[n, h - 1, ww - 1, c], 0.0), name="pad")
    rh, rw = te.reduce_axis((0, 3)), te.reduce_axis((0, 3))
    size = (10 - 1) // stride + 1
    conv = te.compute((1, size, size, 6), lambda n, h, ww, c: te.sum(
        pad[n, h * stride + rh, ww * stride + rw, c] * w[rh, rw, c], axis=[rh, rw]), name="conv")
    out = te.compute(conv.shape, lambda *i: tvm.te.max(conv(*i), 0.0), name="relu")
    return schedule_kernel(te.create_prim_func([x, w, out]).with_attr("global_symbol", "dw"))


def test_channel_loop_outermost_and_one_channel_temporary():
    after = inplace_depthwise(depthwise(), "NHWC")
    text = after.script()
    assert "relu_global" in text  # the one-channel temporary the channel is computed into
    assert not bool(after.attrs["tirx.noalias"])
    mod = tvm.IRModule({"dw": after})
    src = tvm.tirx.build(mod, tvm.target.Target({"kind": "c"})).inspect_source()
    # compacted to one channel: 10 x 10 floats (small enough for the stack here)
    assert "relu_global_ptr[100];" in src


def test_same_result_with_output_over_input():
    func = inplace_depthwise(depthwise(), "NHWC")
    lib = tvm.tirx.build(tvm.IRModule({"dw": func}), "llvm")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 10, 10, 6)).astype("float32")
    w = rng.standard_normal((3, 3, 6)).astype("float32")
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            want += pad[:, dy : dy + 10, dx : dx + 10, :] * w[dy, dx]
    want = np.maximum(want, 0)
    buf = tvm.runtime.tensor(x)
    lib["dw"](buf, tvm.runtime.tensor(w), buf)  # output written over the input
    np.testing.assert_allclose(buf.numpy(), want, rtol=1e-5, atol=1e-5)


def test_not_a_conv_is_refused():
    x = te.placeholder((4, 4), name="x")
    y = te.compute((4, 4), lambda i, j: x[i, j] + 1.0, name="y")
    with pytest.raises(NotInplaceable):
        inplace_depthwise(te.create_prim_func([x, y]), "NHWC")
