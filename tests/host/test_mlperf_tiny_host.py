"""The MLPerf Tiny models compile, run natively on the host, and compute what references compute.

References nobody here wrote: int8, TFLite Micro's reference kernels byte for byte
(tests/reference/tflm.py; more seeds, schedules and models in test_int8_tflm_host.py); fp32,
TVM's own Relax VM run of the same imported model and the TFLite interpreter (1e-4
normalised). For int8 the TFLite interpreter's top-1 class is checked and its LSB difference
reported (its optimized kernels round differently from TFLM's reference kernels).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import (
    MLPERF_MODELS,
    assert_matches,
    mlperf_model,
    model_inputs,
    tflite_reference,
)
from tests.reference.tflm import tflm_outputs
from tvm_patch.run import run_compiled


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_host_matches_relax_vm_and_tflite(name, compiled, relax_vm, record_property):
    model = mlperf_model(name)
    result = compiled(model)
    report = result.report
    inputs = model_inputs(report)
    run = run_compiled(result.out_dir, device="host", inputs=inputs)
    dtype = report.outputs[0].dtype
    if np.dtype(dtype).kind == "f":
        assert_matches(run.outputs[0], relax_vm(model, inputs)[0], dtype, f"{name} host vs Relax VM")
    else:
        np.testing.assert_array_equal(run.outputs[0], tflm_outputs(model, inputs)[0], err_msg=f"{name} vs TFLM")
    want = tflite_reference(model, inputs)[0]
    if np.dtype(dtype).kind == "f":
        assert_matches(run.outputs[0], want, dtype, f"{name} host vs TFLite")
    else:
        assert int(np.argmax(run.outputs[0])) == int(np.argmax(want)), f"{name}: top-1 differs from TFLite"
        lsb = int(np.abs(run.outputs[0].astype(int) - want.astype(int)).max())
        record_property("max_lsb_vs_tflite", lsb)
        print(f"{name}: largest difference from the TFLite interpreter: {lsb} LSB")
