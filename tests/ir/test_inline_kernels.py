"""InlineKernels: a fused conv kernel's full-size temporaries must disappear.

Before: pad -> conv -> bias -> relu, each stage into its own buffer, lowered as
TVMBackendAllocWorkspace calls. After: no workspace at all (pad inlined into the conv,
bias+relu computed under the conv's innermost spatial loop).
"""

from __future__ import annotations

import tvm
from tvm import te
from tvm_patch.passes.inline_kernels import InlineKernels
from tvm_patch.targets.workspace import kernel_workspaces


def conv_bias_relu() -> tvm.IRModule:
    x = te.placeholder((1, 16, 16, 8), name="x")
    w = te.placeholder((3, 3, 8, 16), name="w")
    b = te.placeholder((16,), name="b")
    pad = te.compute(
        (1, 18, 18, 8),
        lambda n, h, ww, c: tvm.tirx.if_then_else(
            tvm.tirx.all(h >= 1, h < 17, ww >= 1, ww < 17), x[n, h - 1, ww - 1, c], 0.0
        ),
        name="pad",
    )
    rh, rw, rc = te.reduce_axis((0, 3)), te.reduce_axis((0, 3)), te.reduce_axis((0, 8))
    conv = te.compute(
        (1, 16, 16, 16),
        lambda n, h, ww, o: te.sum(pad[n, h + rh, ww + rw, rc] * w[rh, rw, rc, o], axis=[rh, rw, rc]),
        name="conv",
    )
    bias = te.compute(conv.shape, lambda n, h, ww, o: conv[n, h, ww, o] + b[o], name="bias")
    relu = te.compute(conv.shape, lambda *i: tvm.te.max(bias(*i), 0.0), name="relu")
    func = te.create_prim_func([x, w, b, relu]).with_attr("global_symbol", "k")
    return tvm.IRModule({"k": func})


def workspace_of(mod: tvm.IRModule) -> int:
    src = tvm.tirx.build(mod, tvm.target.Target({"kind": "c"})).inspect_source()
    return kernel_workspaces(src)["k"]


def test_before_has_feature_map_sized_workspace():
    # pad 18*18*8 floats (10,368 B) + conv 16*16*16 floats (16,384 B); TVM's StorageRewrite
    # lets the bias stage reuse the conv buffer, so 26,752 B in all.
    assert workspace_of(conv_bias_relu()) == 10_368 + 16_384


def test_after_has_no_workspace():
    assert workspace_of(InlineKernels()(conv_bias_relu())) == 0


def test_after_computes_the_same():
    import numpy as np

    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("float32") for s in [(1, 16, 16, 8), (3, 3, 8, 16), (16,)]]
    outs = []
    for mod in (conv_bias_relu(), InlineKernels()(conv_bias_relu())):
        f = tvm.tirx.build(mod, "llvm")
        y = tvm.runtime.tensor(np.zeros((1, 16, 16, 16), "float32"))
        f["k"](*[tvm.runtime.tensor(a) for a in args], y)
        outs.append(y.numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def maxpool_1x1_relu() -> tvm.IRModule:
    """A 1x1 MaxPool (reduction loops of extent 1) followed by ReLU, as FuseTIR fuses them."""
    x = te.placeholder((1, 3, 6, 5), name="x")
    rh, rw = te.reduce_axis((0, 1)), te.reduce_axis((0, 1))
    pool = te.compute(
        x.shape, lambda n, c, h, w: te.max(x[n, c, h + rh, w + rw], axis=[rh, rw]), name="pool"
    )
    relu = te.compute(x.shape, lambda *i: tvm.te.max(pool(*i), 0.0), name="relu")
    return tvm.IRModule({"k": te.create_prim_func([x, relu]).with_attr("global_symbol", "k")})


def test_unit_window_max_reduction_keeps_its_c_scope(tmp_path):
    """TVM's C codegen names each max/min operand once per C scope, so with the unit loops
    gone the fused ReLU read the accumulator from before the update: ReLU(-FLT_MAX) = 0 for
    every pixel (fuzzer seed 7; `python bench/fuzz.py --shrink 7`). The C kernel must compute
    ReLU(x)."""
    import numpy as np

    lib = tvm.tirx.build(InlineKernels()(maxpool_1x1_relu()), tvm.target.Target({"kind": "c"}))
    lib.export_library(str(tmp_path / "k.so"))  # the host C compiler builds TVM's C source
    k = tvm.runtime.load_module(str(tmp_path / "k.so"))["k"]
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 5)).astype("float32")
    y = tvm.runtime.tensor(np.zeros_like(x))
    k(tvm.runtime.tensor(x), y)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))
