"""The fuzzer's generator covers what issue 8 item 10 lists, and its oracle can fail.

Pure Python (plus onnx and onnxruntime): no compile. tests/host/test_fuzz.py runs the cases.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.models.fuzz_chains import Case, LayerSpec, _out_shape, build_model, case_input, random_case
from tests.models.fuzz_run import Failure, compare, is_real_reason

COVERAGE_SEEDS = range(300)  # bench/fuzz.py's default run; the features below all occur in it


def _features(case: Case) -> set[str]:
    found = {"int8" if case.int8 else "fp32"}
    shape = (case.in_channels, case.height, case.width)
    for i, spec in enumerate(case.layers):
        out = _out_shape(spec, shape)
        found.add(spec.op)
        if spec.op == "conv":
            found |= {f"kernel {k}" for k in spec.kernel} | {f"stride {s}" for s in spec.stride}
            found |= {f"dilation {d}" for d in spec.dilation}
            found.add("bias" if spec.bias else "no bias")
            found.add({-1: "depthwise", 1: "groups 1"}.get(spec.groups, "grouped"))
            if spec.groups == -1 and spec.out_channels > 1:
                found.add("depthwise multiplier")
            if out[0] == 1:
                found.add("one output channel")
        if spec.op in ("maxpool", "avgpool") and any(spec.pads):
            found.add(f"{spec.op} padded")
        if spec.op == "avgpool":
            found.add(f"count_include_pad {spec.count_include_pad}")
        if spec.auto_pad:
            found.add(spec.auto_pad)
        elif any(spec.pads):
            symmetric = spec.pads[:2] == spec.pads[2:]
            found.add("symmetric pads" if symmetric else "asymmetric pads")
        for act in (spec.act, spec.act_after_add):
            if act:
                found.add(act.split(":")[0])
        if spec.residual:
            found.add("residual")
            if spec.residual == i + 1:  # the chain's tensors so far: the input and i outputs
                found.add("residual of the model input")
            if spec.act_after_add:
                found.add("activation after add")
        shape = out
    return found


def test_generator_covers_issue_8_item_10():
    found: set[str] = set()
    for seed in COVERAGE_SEEDS:
        found |= _features(random_case(seed))
    want = {f"kernel {k}" for k in range(1, 8)} | {
        "stride 1",
        "stride 2",
        "dilation 1",
        "dilation 2",
    }
    want |= {"symmetric pads", "asymmetric pads", "SAME_UPPER", "SAME_LOWER", "VALID"}
    want |= {
        "depthwise",
        "depthwise multiplier",
        "grouped",
        "one output channel",
        "bias",
        "no bias",
    }
    want |= {
        "relu",
        "relu6",
        "clip",
        "clipmin",
        "clipmax",
        "residual",
        "residual of the model input",
        "activation after add",
        "maxpool",
        "avgpool",
        "maxpool padded",
        "avgpool padded",
        "count_include_pad 0",
        "count_include_pad 1",
        "gap",
        "fp32",
        "int8",
    }
    assert want <= found, f"never generated: {sorted(want - found)}"


def test_random_case_is_deterministic():
    assert random_case(17) == random_case(17)
    assert build_model(random_case(17)).SerializeToString() == build_model(random_case(17)).SerializeToString()


@pytest.mark.parametrize("seed", range(0, 300, 10))
def test_generated_models_run_in_onnxruntime(seed):
    """Every model is valid ONNX (the checker runs in build_model) that onnxruntime runs with
    the output shape the generator computed."""
    case = random_case(seed)
    session = ort.InferenceSession(build_model(case).SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": case_input(case)})[0]
    shape = (case.in_channels, case.height, case.width)
    for spec in case.layers:
        shape = _out_shape(spec, shape)
    assert out.shape == (1, *shape)
    assert np.all(np.isfinite(out)) and float(np.abs(out).max()) > 0


def test_compare_flags_two_lsb_and_fp32_error():
    want = np.zeros(8, np.float32)
    got = want.copy()
    got[3] = 0.02  # 2 LSB at scale 0.01
    with pytest.raises(Failure, match="2 LSB off at 1 of 8"):
        compare(got, want, "x", lsb=0.01)
    assert "1 LSB" in compare(want + 0.01, want, "x", lsb=0.01)
    with pytest.raises(Failure, match="normalised max error"):
        compare(np.ones(4, np.float32) * 1.001, np.ones(4, np.float32), "x", rel=1e-4)
    with pytest.raises(Failure, match="not identical"):
        compare(got, want, "x", exact=True)


def test_a_refusal_needs_a_reason():
    assert not is_real_reason(None)
    assert not is_real_reason("  ")
    assert not is_real_reason("None")
    assert not is_real_reason("no patch stage possible: None")
    assert is_real_reason("--split 3: layer 0 (lv) is quantize, which a patch stage cannot hold")


def test_an_invalid_layer_list_is_refused_by_the_builder():
    """Shrinking removes layers; a residual then may have no partner of its shape."""
    case = Case(0, False, 3, 8, 8, (LayerSpec("conv", 4, (3, 3), pads=(1, 1, 1, 1), residual=1),))
    with pytest.raises(ValueError, match="has the shape"):
        build_model(case)


def test_int8_cases_draw_no_average_pools_with_order_dependent_ties():
    """Those pools make onnxruntime and a correct build differ by several LSB (seed 457)."""
    from tests.models.fuzz_chains import _order_dependent_ties

    assert _order_dependent_ties((2, 2), (0, 0, 0, 0), 0)  # a sum of 4 divided by 4
    assert not _order_dependent_ties((1, 2), (0, 0, 0, 0), 0)  # two values: order-free
    assert _order_dependent_ties((3, 3), (1, 1, 0, 0), 0)  # the corner window holds 4
    assert not _order_dependent_ties((3, 3), (1, 1, 0, 0), 1)  # always divided by 9
    seen = {True: 0, False: 0}
    for seed in COVERAGE_SEEDS:
        case = random_case(seed)
        for spec in case.layers:
            if spec.op == "avgpool" and _order_dependent_ties(spec.kernel, spec.pads, spec.count_include_pad):
                seen[case.int8] += 1
    assert seen[True] == 0 and seen[False] > 0
