"""A patched model computes what the per-layer build computes (int8: identical; fp32: to float
rounding), and the planner's predicted peak is the arena the build declares.

The per-layer build itself is checked against the Relax VM, TFLite and onnxruntime in
test_mlperf_tiny_host.py / test_onnx_mobilenet_host.py.
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


def assert_same(patched: np.ndarray, layer: np.ndarray, what: str) -> None:
    if patched.dtype.kind in "iu":
        np.testing.assert_array_equal(patched, layer, err_msg=what)
    else:  # float rounding only: the patch stage sums in the same order
        scale = max(float(np.abs(layer).max()), 1e-12)
        assert float(np.abs(patched - layer).max()) / scale <= 1e-6, what


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_patched_equals_per_layer_on_host(name, compiled):
    model = mlperf_model(name)
    patched = compiled(model, target="host", schedule="patch")
    layer = compiled(model, target="host")
    report = patched.report
    assert report.schedule == "patch", report.patch_refused
    for seed in range(2):
        inputs = model_inputs(report, seed)
        got = run_compiled(patched.out_dir, device="host", inputs=inputs).outputs[0]
        want = run_compiled(layer.out_dir, device="host", inputs=inputs).outputs[0]
        assert_same(got, want, f"{name} patched vs per-layer (seed {seed})")
        if got.dtype.kind == "f":
            assert_matches(got, tflite_reference(model, inputs)[0], "float32", f"{name} patched vs TFLite")


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_MODELS)
def test_planner_prediction_matches_built_arena(name, compiled):
    report = compiled(mlperf_model(name), target="host", schedule="patch").report
    assert report.predicted_peak_sram_bytes == report.peak_sram_bytes  # both modes: test_planner_exact.py
    stage = report.patch_stages[0]
    assert report.macs == report.layer_macs + stage.extra_macs
    assert stage.extra_macs >= 0 and len(stage.tiles_h) == stage.grid[0]


@pytest.mark.slow
def test_vww_int8_streamed_input_halves_the_peak(compiled):
    """MCUNetV2's count (the image streams in): the arena the patched program declares is at
    most half the per-layer one without its input."""
    report = compiled(mlperf_model("vww_96_int8.tflite"), target="host", schedule="patch", stream_input=True).report
    assert report.input_streamed
    assert report.peak_sram_bytes * 2 <= report.layer_peak_sram_bytes_excl_input
