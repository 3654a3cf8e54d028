"""The in-place decision (tvm_patch_core.inplace_rules): which input a residual kernel overwrites."""

from __future__ import annotations

import pytest

from tvm_patch_core.graph import Call, Graph, Tensor, TensorKind
from tvm_patch_core.inplace_rules import choose_inplace
from tvm_patch_core.layers import Layer

SHAPE = (1, 4, 5, 5)


def _residual_program(skip_first: bool) -> tuple[Graph, list[Layer]]:
    """t0 = conv(in0); t1 = conv(t0); t2 = conv(t1) + t0 (the add's operands in either order):
    the second kernel reads both t0 (the skip) and t1 (the conv's data), same shapes."""
    act = TensorKind.ACTIVATION
    tensors = {
        "in0": Tensor("in0", SHAPE, "int8", TensorKind.INPUT),
        **{f"t{i}": Tensor(f"t{i}", SHAPE, "int8", act) for i in range(3)},
        **{f"w{i}": Tensor(f"w{i}", (4, 4, 3, 3), "int8", TensorKind.WEIGHT) for i in range(3)},
    }
    third = ("t0", "t1") if skip_first else ("t1", "t0")
    calls = (
        Call("k0", ("in0", "w0"), ("t0",)),
        Call("k1", ("t0", "w1"), ("t1",)),
        Call("k2", (*third, "w2"), ("t2",)),
    )

    def conv(i: int, inputs: tuple[str, ...]) -> Layer:
        return Layer(
            i,
            f"l{i}",
            inputs,
            "nn.conv2d",
            (SHAPE,) * len(inputs),
            SHAPE,
            "int8",
            kernel=(3, 3),
            layout="NCHW",
            data_input=f"l{i - 1}" if i else "x",
        )

    names = {"t0": "l0", "t1": "l1"}
    layers = [conv(0, ("x",)), conv(1, ("l0",)), conv(2, tuple(names[t] for t in third))]
    return Graph(tensors, calls, ("in0",), ("t2",)), layers


@pytest.mark.parametrize("skip_first", [False, True])
def test_residual_output_overwrites_the_skip_not_the_convs_data(skip_first):
    """The fuzzer's seed 28: add(skip, conv) put the output over the conv's input, which the
    conv window still reads (30 LSB off). The skip is whichever input is not the data."""
    graph, layers = _residual_program(skip_first)
    choice = choose_inplace(graph, layers)
    assert choice.residual == ("k2",)
    assert choice.inplace == {"t2": "t0"}


def test_residual_without_a_known_data_input_stays_out_of_place():
    graph, layers = _residual_program(True)
    layers[2] = Layer(**{**layers[2].as_dict(), "data_input": ""})
    assert choose_inplace(graph, layers).inplace == {}
