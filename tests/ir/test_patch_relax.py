"""PatchStage (Relax) and the registered pipeline: `tvm.compile(mod, target, relax_pipeline="patch")`.

Before: a conv chain as the ONNX frontend imports it. After: its first K kernels replaced
by per-patch slices of the input, re-padded convs, and a concat of the patch outputs; the
function computed must not change.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm_patch.passes.patch_relax import PatchStage

import tvm_patch  # noqa: F401  (registers the "patch" pipeline)
from tvm_patch import zoo
from tvm_patch.frontend import load_model


def chain(tmp_path):
    specs = [zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8, groups=8), zoo.ConvSpec(12, kernel=1), zoo.ConvSpec(12, residual=True)]
    return load_model(zoo.save(zoo.conv_chain(specs, 3, 20), tmp_path / "chain.onnx")).mod


def ops(mod: tvm.IRModule) -> list[str]:
    return [getattr(b.value.op, "name", "call") for blk in mod["main"].body.blocks for b in blk.bindings
            if isinstance(b.value, relax.Call)]


def test_stage_becomes_slices_and_a_concat(tmp_path):
    after = PatchStage(split=3, patches=(2, 2))(chain(tmp_path))
    names = ops(after)
    assert names.count("relax.strided_slice") >= 4  # each patch reads its window of the input
    assert names.count("relax.concat") == 3  # two rows, then the rows
    assert names.count("relax.nn.conv2d") == 3 * 4  # three layers, four patches


def test_registered_pipeline_computes_the_same(tmp_path):
    mod = chain(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 3, 20, 20)).astype("float32")
    outs = []
    for pipeline in ("default", "patch"):
        ex = tvm.compile(mod, target="llvm", relax_pipeline=pipeline)
        outs.append(relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
