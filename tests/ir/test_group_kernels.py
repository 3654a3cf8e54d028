"""GroupKernels: where a model is cut into kernels decides which tensors are stored.

Each case names why it matters. QuantizedChain is checked structurally (Before/Expected); the
others as groups of binding names, the readable form of the pass's decision, and by running.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from tvm_patch.passes.group_kernels import GroupKernels, plan_groups


def groups_by_name(mod: tvm.IRModule) -> list[list[str]]:
    func = mod["main"]
    bindings = list(func.body.blocks[0].bindings)
    outputs = {func.body.body} if isinstance(func.body.body, relax.Var) else set(func.body.body.fields)
    return [[bindings[i].var.name for i in g.members] for g in plan_groups(bindings, outputs)]


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


@I.ir_module
class QuantizedChainGrouped:
    """Two Primitive kernels; main passes only int8 between them (k1, not the float d1)."""

    @R.function
    def kernel0_k1(p0: R.Tensor((1, 8, 8, 4), dtype="int8"), p1: R.Tensor((3, 3, 4, 4), dtype="float32")) -> R.Tensor(
        (1, 8, 8, 4), dtype="int8"
    ):
        R.func_attr({"Primitive": 1})
        with R.dataflow():
            d0 = R.dequantize(p0, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="float32", axis=0)
            c1 = R.nn.conv2d(d0, p1, padding=[1, 1, 1, 1], data_layout="NHWC", kernel_layout="HWIO")
            q1 = R.quantize(c1, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="int8", axis=0)
            k1 = R.clip(q1, -128, 127)
            gv = k1
            R.output(gv)
        return gv

    @R.function
    def kernel1_q2(p0: R.Tensor((1, 8, 8, 4), dtype="int8"), p1: R.Tensor((1, 1, 4, 4), dtype="float32")) -> R.Tensor(
        (1, 8, 8, 4), dtype="int8"
    ):
        R.func_attr({"Primitive": 1})
        with R.dataflow():
            d1 = R.dequantize(p0, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="float32", axis=0)
            c2 = R.nn.conv2d(d1, p1, data_layout="NHWC", kernel_layout="HWIO")
            q2 = R.quantize(c2, R.const(0.5, "float32"), R.const(0, "int32"), out_dtype="int8", axis=0)
            gv = q2
            R.output(gv)
        return gv

    @R.function
    def main(
        x: R.Tensor((1, 8, 8, 4), dtype="int8"),
        w1: R.Tensor((3, 3, 4, 4), dtype="float32"),
        w2: R.Tensor((1, 1, 4, 4), dtype="float32"),
    ) -> R.Tensor((1, 8, 8, 4), dtype="int8"):
        cls = QuantizedChainGrouped
        with R.dataflow():
            k1 = cls.kernel0_k1(x, w1)
            q2 = cls.kernel1_q2(k1, w2)
            gv = q2
            R.output(gv)
        return gv


def test_int8_chain_structure():
    tvm.ir.assert_structural_equal(GroupKernels()(QuantizedChain), QuantizedChainGrouped)


@I.ir_module
class NoDataflow:
    """Not the frontends' single-dataflow-block form (a user's own module): left as it is."""

    @R.function
    def main(x: R.Tensor((1, 4, 8, 8), "float32"), w: R.Tensor((4, 4, 3, 3), "float32")) -> R.Tensor(
        (1, 4, 8, 8), "float32"
    ):
        a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
        b = R.nn.relu(a)
        return b


def test_a_module_that_is_not_one_dataflow_block_is_left_as_it_is():
    tvm.ir.assert_structural_equal(GroupKernels()(NoDataflow), NoDataflow)


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
