"""A generated MobileNetV2 (ONNX, NCHW, fp32) on Cortex-M4 in QEMU matches onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import assert_matches, model_inputs
from tests.models import zoo
from tvm_patch.run import run_compiled


@pytest.mark.qemu
@pytest.mark.slow
def test_mobilenet_v2_on_cortex_m4_matches_onnxruntime(tmp_path, compiled):
    path = zoo.save(zoo.mobilenet_v2(width=0.35, resolution=96, num_classes=10), tmp_path / "mbv2_035_96.onnx")
    result = compiled(path, target="cortex-m4")
    inputs = model_inputs(result.report)
    run = run_compiled(result.out_dir, device="qemu", inputs=inputs)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": inputs[0]})[0]
    assert_matches(run.outputs[0], want, "float32", "MobileNetV2 0.35/96 on mps2-an386 vs onnxruntime")
    assert np.argmax(run.outputs[0]) == np.argmax(want)
