"""GroupKernels: where a model is cut into kernels decides which tensors are stored.

Each case names why it matters. The plan is checked as groups of binding names (the
readable form of the pass's decision), and the first case also structurally, Before/Expected.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R
from tvm_patch.passes.group_kernels import GroupKernels, plan_groups


def groups_by_name(mod: tvm.IRModule, stages=()) -> list[list[str]]:
    func = mod["main"]
    bindings = list(func.body.blocks[0].bindings)
    outputs = {func.body.body} if isinstance(func.body.body, relax.Var) else set(func.body.body.fields)
    return [[bindings[i].var.name for i in g.members] for g in plan_groups(bindings, outputs, stages)]


@I.ir_module
class QuantizedChain:
    """Two int8 conv layers as TVM's TFLite frontend writes them."""

    @R.function
    def main(
        x: R.Tensor((1, 8, 8, 4), "int8"),
        w1: R.Tensor((3, 3, 4, 4), "float32"),
        w2: R.Tensor((1, 1, 4, 4), "float32"),
    ) -> R.Tensor((1, 8, 8, 4), "int8"):
        with R.dataflow():
            d0 = R.dequantize(x, R.const(0.5, "float32"), R.const(0, "int32"), axis=0)
            c1 = R.nn.conv2d(d0, w1, padding=[1, 1, 1, 1], data_layout="NHWC", kernel_layout="HWIO")
            q1 = R.quantize(c1, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="int8", axis=0)
            k1 = R.clip(q1, -128, 127)
            d1 = R.dequantize(k1, R.const(0.5, "float32"), R.const(0, "int32"), axis=0)
            c2 = R.nn.conv2d(d1, w2, data_layout="NHWC", kernel_layout="HWIO")
            q2 = R.quantize(c2, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="int8", axis=0)
            R.output(q2)
        return q2


def test_int8_chain_is_cut_at_the_int8_tensor():
    """FuseOps would hand c2's kernel the float32 d1 (4x the bytes); we cut after the clip."""
    assert groups_by_name(QuantizedChain) == [["d0", "c1", "q1", "k1"], ["d1", "c2", "q2"]]


def test_int8_chain_structure():
    """Before/Expected: main calls two Primitive kernels and passes only int8 between them."""
    after = GroupKernels()(QuantizedChain)
    main = after["main"]
    calls = [b for b in main.body.blocks[0].bindings if isinstance(b.value, relax.Call)]
    assert [str(c.var.ty.dtype) for c in calls] == ["int8", "int8"]
    for c in calls:
        assert int(after[c.value.op].attrs["Primitive"]) == 1
    tvm.ir.assert_structural_equal(after["main"].params, QuantizedChain["main"].params)


@I.ir_module
class Residual:
    """A residual block whose shortcut conv is written after the add's first input."""

    @R.function
    def main(
        x: R.Tensor((1, 4, 8, 8), "float32"),
        w1: R.Tensor((4, 4, 3, 3), "float32"),
        w2: R.Tensor((4, 4, 1, 1), "float32"),
    ) -> R.Tensor((1, 4, 8, 8), "float32"):
        with R.dataflow():
            a = R.nn.conv2d(x, w1, padding=[1, 1, 1, 1])
            r = R.nn.relu(a)
            b = R.nn.conv2d(r, w1, padding=[1, 1, 1, 1])
            s = R.nn.conv2d(x, w2)
            y = R.add(b, s)
            z = R.nn.relu(y)
            R.output(z)
        return z


def test_residual_add_joins_one_branch_and_runs_after_the_other():
    groups = groups_by_name(Residual)
    assert ["a", "r"] in groups
    add_group = next(g for g in groups if "y" in g)
    assert add_group[-1] == "z"
    # The shortcut conv must run before the kernel that adds it.
    assert groups.index(next(g for g in groups if "s" in g)) < groups.index(add_group)


def test_residual_module_still_computes_the_same():
    import numpy as np

    rng = np.random.default_rng(0)
    args = [rng.standard_normal([int(d) for d in p.ty.shape.values]).astype("float32") for p in Residual["main"].params]
    outs = []
    for mod in (Residual, GroupKernels()(Residual)):
        ex = tvm.compile(mod, target="llvm")
        vm = relax.VirtualMachine(ex, tvm.cpu())
        outs.append(vm["main"](*[tvm.runtime.tensor(a) for a in args]).numpy())
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


def test_forced_stage_is_one_kernel():
    """The patch pass asks for several anchors in one kernel."""
    groups = groups_by_name(Residual, stages=[["a", "r", "b"]])
    assert ["a", "r", "b"] in groups
