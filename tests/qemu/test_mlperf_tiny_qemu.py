"""The MLPerf Tiny models run on Cortex-M in QEMU and compute what the references compute.

Pass/fail comes from the firmware's sentinel line (the runner raises without it); int8
outputs equal TFLite Micro's reference kernels byte for byte (tests/reference/tflm.py), fp32
outputs TVM's own Relax VM run within 1e-4 normalised.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import MLPERF_MODELS, assert_matches, mlperf_model, model_inputs
from tests.reference.tflm import tflm_outputs
from tvm_patch.run import run_compiled

MODELS = MLPERF_MODELS


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_cortex_m4_matches_relax_vm(name, compiled, relax_vm):
    model = mlperf_model(name)
    result = compiled(model, target="cortex-m4")
    inputs = model_inputs(result.report)
    run = run_compiled(result.out_dir, device="qemu", inputs=inputs)
    assert run.report.instructions > 0
    dtype = result.report.outputs[0].dtype
    if np.dtype(dtype).kind == "f":
        assert_matches(run.outputs[0], relax_vm(model, inputs)[0], dtype, f"{name} on mps2-an386 vs Relax VM")
    else:
        np.testing.assert_array_equal(run.outputs[0], tflm_outputs(model, inputs)[0], err_msg=f"{name} vs TFLM")


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m33"])
def test_other_boards_run_vww_int8(target, compiled):
    model = mlperf_model("vww_96_int8.tflite")
    result = compiled(model, target=target)
    inputs = model_inputs(result.report, seed=1)
    run = run_compiled(result.out_dir, device="qemu", inputs=inputs)
    np.testing.assert_array_equal(run.outputs[0], tflm_outputs(model, inputs)[0], err_msg=f"vww_96_int8 on {target}")


@pytest.mark.qemu
@pytest.mark.slow
def test_instruction_count_is_deterministic(compiled):
    result = compiled(mlperf_model("kws_ref_model.tflite"), target="cortex-m4")
    inputs = model_inputs(result.report)
    counts = {run_compiled(result.out_dir, device="qemu", inputs=inputs).report.instructions for _ in range(2)}
    assert len(counts) == 1, counts
