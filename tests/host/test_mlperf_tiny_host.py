"""The MLPerf Tiny models compile, run natively on the host, and compute what references compute.

References nobody here wrote: TVM's own Relax VM run of the same imported model (int8:
within 1 LSB; fp32: 1e-4 normalised) and the TFLite interpreter (fp32: 1e-4 normalised;
int8: same top-1 class, largest LSB difference reported).
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
    assert_matches(run.outputs[0], relax_vm(model, inputs)[0], dtype, f"{name} host vs Relax VM")
    want = tflite_reference(model, inputs)[0]
    if np.dtype(dtype).kind == "f":
        assert_matches(run.outputs[0], want, dtype, f"{name} host vs TFLite")
    else:
        assert int(np.argmax(run.outputs[0])) == int(np.argmax(want)), f"{name}: top-1 differs from TFLite"
        lsb = int(np.abs(run.outputs[0].astype(int) - want.astype(int)).max())
        record_property("max_lsb_vs_tflite", lsb)
        print(f"{name}: largest difference from the TFLite interpreter: {lsb} LSB")
