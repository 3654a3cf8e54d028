"""Memory regression: exact arena bytes of the bundled models, read from the built ELF.

Bytes are deterministic, so these are exact; each reference figure says where it comes from.
"""

from __future__ import annotations

import pytest

from tests.conftest import mlperf_model
from tests.reference.relax_plan import relax_static_plan_bytes

# TFLite Micro's planner on vww_96_int8 ("Arena allocation head", tflite-micro from PyPI;
# `python bench/arena.py`, and ../shared/DESIGN.md).
TFLM_VWW_INT8_HEAD = 73_728
# The liveness lower bound on vww_96_int8 with the input counted: the largest layer's input +
# output (48x48x8 + 48x48x16 int8), as ../shared/DESIGN.md states.
VWW_INT8_LIVE_PEAK = 55_296

EXPECTED_ARENA = {  # bytes of `tvmp_arena` in the cortex-m4 ELF, today
    "vww_96_int8.tflite": 55_296,
    "vww_96_float.tflite": 221_184,
    # 57,344 before the int8 lowering: a 16x16x32 map crossed kernels as float32 (32,768 B);
    # now every tensor between kernels is int8
    "pretrainedResnet_quant.tflite": 32_768,
    "kws_ref_model.tflite": 16_000,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_ARENA))
def test_arena_bytes(name, compiled):
    report = compiled(mlperf_model(name), target="cortex-m4").report
    assert report.peak_sram_bytes == EXPECTED_ARENA[name]
    assert report.peak_sram_bytes <= 1.02 * report.lower_bound_bytes


@pytest.mark.slow
def test_vww_int8_beats_tflite_micro_and_meets_the_bound(compiled):
    report = compiled(mlperf_model("vww_96_int8.tflite"), target="cortex-m4").report
    assert report.lower_bound_bytes == VWW_INT8_LIVE_PEAK
    assert report.peak_sram_bytes < TFLM_VWW_INT8_HEAD
    assert report.peak_sram_bytes <= 1.02 * VWW_INT8_LIVE_PEAK


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_ARENA))
def test_never_worse_than_relax_static_plan(name, compiled):
    model = mlperf_model(name)
    assert compiled(model, target="cortex-m4").report.peak_sram_bytes <= relax_static_plan_bytes(model)
