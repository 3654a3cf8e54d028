"""The TFLite Micro oracle (tests/reference/tflm.py) must itself be right before it judges the
int8 kernels: it agrees with TFLite's reference kernels byte for byte, stays within the known
few LSB of TFLite's optimized kernels, repeats itself, and refuses inputs it would misread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import mlperf_model
from tests.reference.litert import litert_outputs, lsb_difference
from tests.reference.tflm import (
    TflmError,
    TflmInputError,
    model_io,
    random_inputs,
    tflm_arena_size,
    tflm_outputs,
    tflm_outputs_many,
)

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
TEST_MODELS = [
    "mobilenet_v2_035_96_int8",
    "mobilenet_v2_050_64_int8",
    "mobilenet_v3_style_96_int8",
    "concat_mean_pad_64_int8",
    "op_coverage_32_int8",
]
MLPERF_INT8 = ["vww_96_int8", "kws_ref_model", "pretrainedResnet_quant"]
SEEDS = [0, 1, 2, 3, 4]  # issue 10's bit-exact rule: at least 5 seeded random inputs
SMALL = MODELS / "op_coverage_32_int8.tflite"  # 10 KB, runs in a blink

# Largest |TFLM - ai-edge-litert default kernels| on SEEDS (`bench/tflm_vs_litert.py --seeds 5`,
# litert 2.3.0): the optimized kernels round differently, and random-weight networks carry a
# one-LSB difference further than trained ones. The bound is that figure plus a fifth and 4 LSB
# of headroom for another litert build; past it the oracle is fed or read wrongly.
LITERT_DEFAULT_LSB = {
    "vww_96_int8": 4,  # measured 0 (DESIGN.md: up to 24 on other inputs; these saturate)
    "kws_ref_model": 14,  # measured 8
    "pretrainedResnet_quant": 30,  # measured 22
    "mobilenet_v2_035_96_int8": 60,  # measured 47
    "mobilenet_v2_050_64_int8": 24,  # measured 16
    "mobilenet_v3_style_96_int8": 12,  # measured 6
    "concat_mean_pad_64_int8": 6,  # measured 1
    "op_coverage_32_int8": 6,  # measured 1
}

# The int8 ops issue 10 asks the integer lowering to cover, by TFLite builtin name.
ISSUE_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "MAX_POOL_2D",
    "AVERAGE_POOL_2D", "MEAN", "PAD", "RESHAPE", "CONCATENATION", "TRANSPOSE", "SOFTMAX",
    "LOGISTIC", "TANH", "HARD_SWISH",
}  # fmt: skip


def _model(name: str) -> Path:
    if name in MLPERF_INT8:
        return mlperf_model(f"{name}.tflite")
    return MODELS / f"{name}.tflite"


def _ops(path: Path) -> set[str]:
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    ops = set()
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        ops.add(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return ops


@pytest.mark.parametrize("name", TEST_MODELS)
def test_test_model_is_int8_in_and_out(name):
    """A real flatbuffer (not an LFS pointer or a float model) with int8 input and output."""
    inputs, outputs = model_io(_model(name))
    assert [s.dtype for s in inputs + outputs] == [np.dtype(np.int8)] * 2, (
        f"{name}: {[s.describe() for s in inputs + outputs]}"
    )


def test_test_models_cover_the_issue_ops():
    """Together the test models hold every int8 op the integer lowering must implement."""
    covered = set().union(*(_ops(_model(n)) for n in TEST_MODELS))
    assert ISSUE_OPS <= covered, f"no test model has {sorted(ISSUE_OPS - covered)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_INT8 + TEST_MODELS)
def test_oracle_agrees_with_tflite(name):
    """Byte for byte with TFLite's reference kernels (the same arithmetic), and within the
    known few LSB of its optimized kernels, on seeded random int8 inputs."""
    path = _model(name)
    sets = [random_inputs(path, seed) for seed in SEEDS]
    for seed, x, got in zip(SEEDS, sets, tflm_outputs_many(path, sets), strict=False):
        ref = litert_outputs(path, x, reference_kernels=True)
        assert lsb_difference(got, ref) == 0, (
            f"{name} seed {seed}: TFLM differs from TFLite's reference kernels by {lsb_difference(got, ref)} LSB"
        )
        lsb = lsb_difference(got, litert_outputs(path, x))
        assert lsb <= LITERT_DEFAULT_LSB[name], (
            f"{name} seed {seed}: {lsb} LSB from TFLite's default kernels, known bound {LITERT_DEFAULT_LSB[name]}"
        )


def test_deterministic_and_input_dependent():
    """Two runs of the same inputs give the same bytes; other inputs give other outputs (an
    oracle that ignored its inputs would pass the first check alone)."""
    a, b = random_inputs(SMALL, 0), random_inputs(SMALL, 1)
    first, again, other = tflm_outputs(SMALL, a), tflm_outputs(SMALL, a), tflm_outputs(SMALL, b)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=False)), "TFLM is not deterministic"
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=False)), "outputs ignore the input"
    _, out_specs = model_io(SMALL)
    assert [(o.dtype, o.shape) for o in first] == [(s.dtype, s.shape) for s in out_specs]


def test_many_sets_in_one_child_equal_single_runs():
    """tflm_outputs_many resets the interpreter between sets: same bytes as one call each."""
    sets = [random_inputs(SMALL, seed) for seed in SEEDS]
    many = tflm_outputs_many(SMALL, sets)
    for x, got in zip(sets, many, strict=False):
        assert all(np.array_equal(g, w) for g, w in zip(got, tflm_outputs(SMALL, x), strict=False))


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda x: x.astype(np.float32), "dtype float32, the model wants int8 [1, 32, 32, 3]"),
        (lambda x: x.astype(np.int64), "dtype int64"),  # rng.integers without .astype
        (lambda x: x.astype(np.uint8), "dtype uint8"),
        (lambda x: x.transpose(0, 3, 1, 2), "shape [1, 3, 32, 32], the model wants"),  # NCHW
        (lambda x: x[0], "shape [32, 32, 3]"),  # no batch dimension
    ],
)
def test_refuses_wrong_input(bad, words):
    """Inputs are never cast or reshaped: the message names the model, input and what it wants."""
    (x,) = random_inputs(SMALL, 0)
    with pytest.raises(TflmInputError, match=r"op_coverage_32_int8.tflite input 0") as err:
        tflm_outputs(SMALL, [bad(x)])
    assert words in str(err.value)


def test_refuses_wrong_input_count():
    (x,) = random_inputs(SMALL, 0)
    with pytest.raises(TflmInputError, match=r"has 1 input\(s\) .*got 2 array"):
        tflm_outputs(SMALL, [x, x])
    with pytest.raises(TflmInputError, match="must be a list"):
        tflm_outputs(SMALL, x)


def test_small_arena_raises_in_the_parent():
    """An arena TFLM cannot allocate in fails in the child; the test process lives on."""
    with pytest.raises(TflmError, match=r"(?s)arena 1,024 B.*arena is too small"):
        tflm_outputs(SMALL, random_inputs(SMALL, 0), arena_size=1024)


def test_arena_is_probed_once_and_cached():
    from tests.reference import tflm

    size = tflm_arena_size(SMALL)
    hits = tflm._probe.cache_info().hits
    assert tflm_arena_size(SMALL) == size
    assert tflm._probe.cache_info().hits == hits + 1
    assert size & (size - 1) == 0 and size >= tflm.FIRST_ARENA_MIN, f"arena {size:,} B"


def test_missing_model():
    with pytest.raises(FileNotFoundError, match="no such model"):
        tflm_arena_size(MODELS / "no_such_model.tflite")


def _first_opcode_set_to(src: Path, code: int, dst: Path) -> Path:
    """A copy of `src` whose first operator code is `code` (both schema fields, in place)."""
    import tflite

    data = bytearray(src.read_bytes())
    tab = tflite.Model.GetRootAsModel(bytes(data), 0).OperatorCodes(0)._tab
    deprecated, builtin = tab.Pos + tab.Offset(4), tab.Pos + tab.Offset(10)  # fields 0 and 3
    data[deprecated] = code
    data[builtin : builtin + 4] = code.to_bytes(4, "little")
    dst.write_bytes(bytes(data))
    return dst


def test_other_failures_are_not_retried_as_arena(tmp_path):
    """A model TFLM cannot prepare (CONV_2D's code turned into BATCH_MATMUL's, 126) fails on
    the first probe with TFLM's own words, instead of doubling the arena up to 1 GiB."""
    from tests.reference import tflm

    bad = _first_opcode_set_to(SMALL, 126, tmp_path / "bad_op.tflite")
    with pytest.raises(TflmError, match=r"(?s)BATCH_MATMUL .*failed to prepare") as err:
        tflm_arena_size(bad)
    first = tflm._first_guess(bad)
    assert f"(arena {first:,} B)" in str(err.value), f"not the first try: {err.value}"
