"""The patched VWW int8 runs on Cortex-M4 in QEMU and computes exactly what the per-layer build does."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import mlperf_model, model_inputs
from tvm_patch.run import run_compiled


@pytest.mark.qemu
@pytest.mark.slow
def test_vww_int8_patched_on_cortex_m4(compiled):
    model = mlperf_model("vww_96_int8.tflite")
    # 8 layers: the stage kernel takes 18 arguments (input, 8 x 2 weights, output), more than
    # the 16 the emitter once assumed, which overwrote the stack on the board only
    patched = compiled(model, target="cortex-m4", schedule="patch", split=8, patches=(2, 2))
    layer = compiled(model, target="cortex-m4")
    inputs = model_inputs(patched.report, seed=3)
    got = run_compiled(patched.out_dir, device="qemu", inputs=inputs)
    want = run_compiled(layer.out_dir, device="qemu", inputs=inputs)
    np.testing.assert_array_equal(got.outputs[0], want.outputs[0])
    assert got.report.peak_sram_bytes == patched.report.peak_sram_bytes


MODELS = ["vww_96_float.tflite", "pretrainedResnet.tflite", "pretrainedResnet_quant.tflite", "kws_ref_model.tflite"]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_patched_models_on_cortex_m4_equal_per_layer(name, compiled):
    """The planner's own choice, on the board: int8 identical, fp32 to float rounding."""
    model = mlperf_model(name)
    patched = compiled(model, target="cortex-m4", schedule="patch")
    assert patched.report.schedule == "patch", patched.report.patch_refused
    layer = compiled(model, target="cortex-m4")
    inputs = model_inputs(patched.report, seed=4)
    got = run_compiled(patched.out_dir, device="qemu", inputs=inputs).outputs[0]
    want = run_compiled(layer.out_dir, device="qemu", inputs=inputs).outputs[0]
    if got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        assert float(np.abs(got - want).max()) <= 1e-6 * float(np.abs(want).max())
