"""int8 models on Cortex-M4 (QEMU mps2-an386) and on Cortex-M3 (mps2-an385: no FPU, soft-float
ABI) equal TFLite Micro's outputs byte for byte.

Both schedules, five seeded random inputs each, every int8 TFLite model we have; pass/fail
of each run comes from the firmware's sentinel line (the runner raises without it).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.host.test_int8_tflm_host import IDS, INT8_MODELS, SEEDS, as_tflm, model_path
from tests.reference.tflm import random_inputs, tflm_outputs_many
from tvm_patch.run import run_compiled


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
@pytest.mark.parametrize("schedule", ["layer", "patch"])
@pytest.mark.parametrize("model", INT8_MODELS, ids=IDS)
def test_cortex_m_equals_tflite_micro(model, schedule, target, compiled):
    result = compiled(model_path(model), target=target, schedule=schedule)
    inputs = [random_inputs(model, seed) for seed in SEEDS]
    want = tflm_outputs_many(model, inputs)
    for seed, x, w in zip(SEEDS, inputs, want, strict=True):
        got = run_compiled(result.out_dir, device="qemu", inputs=x).outputs[0]
        np.testing.assert_array_equal(
            as_tflm(got, w[0]), w[0], err_msg=f"{model.name} {schedule} on {result.report.board}, seed {seed}"
        )
