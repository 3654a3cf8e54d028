"""Generated MobileNetV2-style ONNX models (NCHW) compile, run on the host, and match onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import assert_matches, model_inputs
from tests.models import zoo
from tvm_patch.run import run_compiled


@pytest.mark.slow
@pytest.mark.parametrize("width,resolution,blocks", [(0.35, 96, None), (1.0, 64, 4)])
def test_mobilenet_v2_matches_onnxruntime(tmp_path, compiled, width, resolution, blocks):
    path = zoo.save(
        zoo.mobilenet_v2(width=width, resolution=resolution, blocks=blocks, num_classes=10),
        tmp_path / f"mbv2_{width}_{resolution}_{blocks}.onnx",
    )
    result = compiled(path, target="host")
    inputs = model_inputs(result.report)
    run = run_compiled(result.out_dir, device="host", inputs=inputs)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": inputs[0]})[0]
    assert_matches(run.outputs[0], want, "float32", "MobileNetV2 host vs onnxruntime")
    assert np.argmax(run.outputs[0]) == np.argmax(want)


@pytest.mark.slow
def test_desired_layout_nhwc_computes_the_same(tmp_path):
    """--desired-layout NHWC rewrites the NCHW convs; the model's function must not change."""
    from tvm_patch.compile import compile_model
    from tvm_patch_core.options import CompileOptions

    path = zoo.save(zoo.mobilenet_v2(width=0.35, resolution=32, blocks=2, num_classes=10), tmp_path / "m.onnx")
    result = compile_model(path, tmp_path / "out", CompileOptions(target="host", desired_layout="NHWC"))
    assert {layer.layout for layer in result.report.layers if layer.op == "nn.conv2d"} == {"NHWC"}
    inputs = model_inputs(result.report)
    run = run_compiled(result.out_dir, device="host", inputs=inputs)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": inputs[0]})[0]
    assert_matches(run.outputs[0], want, "float32", "NHWC-converted MobileNetV2 vs onnxruntime")
