"""The MLPerf Tiny models run on Cortex-M in QEMU and compute what TVM's own host run computes.

Pass/fail comes from the firmware's sentinel line (the runner raises without it); outputs
are compared with the Relax VM (int8: 1 LSB, fp32: 1e-4 normalised).
"""

from __future__ import annotations

import pytest

from tests.conftest import MLPERF_MODELS, assert_matches, mlperf_model, model_inputs
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
    assert_matches(run.outputs[0], relax_vm(model, inputs)[0], dtype, f"{name} on mps2-an386 vs Relax VM")


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m33"])
def test_other_boards_run_vww_int8(target, compiled, relax_vm):
    model = mlperf_model("vww_96_int8.tflite")
    result = compiled(model, target=target)
    inputs = model_inputs(result.report, seed=1)
    run = run_compiled(result.out_dir, device="qemu", inputs=inputs)
    assert_matches(run.outputs[0], relax_vm(model, inputs)[0], "int8", f"vww_96_int8 on {target}")


@pytest.mark.qemu
@pytest.mark.slow
def test_instruction_count_is_deterministic(compiled):
    result = compiled(mlperf_model("kws_ref_model.tflite"), target="cortex-m4")
    inputs = model_inputs(result.report)
    counts = {run_compiled(result.out_dir, device="qemu", inputs=inputs).report.instructions for _ in range(2)}
    assert len(counts) == 1, counts
