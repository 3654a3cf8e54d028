"""--stream-input: the patch stage reads the model input window by window, so the arena the
program declares holds no input (issue 12, item 1).

On VWW int8 (MLPerf Tiny), host and Cortex-M4 in QEMU: the harness's provider reads each
window from input.bin, the output equals the per-layer build's byte for byte, and the arena
is the planner's prediction (18,432 B, stage layers in place; TinyEngine's patch-based build of the same model takes
31,580 B, ../shared/anchors/tinyengine/). A user's own program calls the C API: the whole
input in memory (`tvmgen_<name>_run`, the image may sit in flash) or a provider callback
(`tvmgen_<name>_run_streamed`) whose failure stops the run with the window in the error.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import mlperf_model, model_inputs
from tests.models import zoo
from tvm_patch.run import run_compiled
from tvm_patch_core.errors import TvmPatchError
from tvm_patch_core.options import CompileOptions, PatchOptions

VWW = "vww_96_int8.tflite"


@pytest.mark.slow
@pytest.mark.parametrize("target, device", [("host", "host"), ("cortex-m4", "qemu")])
def test_streamed_vww_equals_per_layer_in_an_arena_without_the_input(target, device, compiled):
    if device == "qemu" and shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (make setup)")
    model = mlperf_model(VWW)
    streamed = compiled(model, target=target, schedule="patch", stream_input=True)
    layer = compiled(model, target=target)
    report = streamed.report
    assert report.input_streamed and report.inputs[0].arena_offset is None
    assert report.peak_sram_bytes == report.predicted_peak_sram_bytes == 18_432
    assert report.peak_sram_bytes_excl_input == report.peak_sram_bytes  # nothing of the input in it
    assert report.peak_sram_bytes * 2 <= report.layer_peak_sram_bytes_excl_input
    for seed in (0, 1):
        inputs = model_inputs(report, seed)
        got = run_compiled(streamed.out_dir, device=device, inputs=inputs)
        want = run_compiled(layer.out_dir, device=device, inputs=inputs)
        np.testing.assert_array_equal(got.outputs[0], want.outputs[0], err_msg=f"seed {seed}")
        assert got.report.peak_sram_bytes == 18_432


@pytest.mark.slow
@pytest.mark.qemu
def test_a_streamed_nchw_qdq_model_equals_per_layer_on_cortex_m4(compiled, tmp_path):
    """MobileNetV2 0.35/96 as int8 ONNX QDQ: NCHW, a float32 image streamed into the byte pool
    beside the int8 maps. Its loops index in int64, which once shifted tvmp_stream_read's
    int32 arguments on the 32-bit core (h arrived as 0) while the host ran right."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (make setup)")
    model = zoo.save(zoo.quantize_int8(zoo.mobilenet_v2(0.35, 96, num_classes=10)), tmp_path / "mbv2.onnx")
    streamed = compiled(model, target="cortex-m4", schedule="patch", stream_input=True)
    layer = compiled(model, target="cortex-m4")
    assert streamed.report.input_streamed and streamed.report.patch_stages[0].layout == "NCHW"
    assert streamed.report.peak_sram_bytes == streamed.report.predicted_peak_sram_bytes
    inputs = model_inputs(streamed.report, seed=0)
    got = run_compiled(streamed.out_dir, device="qemu", inputs=inputs).outputs[0]
    want = run_compiled(layer.out_dir, device="qemu", inputs=inputs).outputs[0]
    np.testing.assert_array_equal(got, want)


APP = r"""
/* A user's program: the whole input in memory, then a provider that fails. */
#include <stdio.h>
#include <string.h>
#include "tvmgen_NAME.h"
#include "tvmp_runtime.h"

static unsigned char image[TVMGEN_UP_INPUT0_BYTES];
static unsigned char result[TVMGEN_UP_OUTPUT0_BYTES];
static int calls;

static int32_t unplugged(void* ctx, void* dst, int32_t y0, int32_t x0, int32_t h, int32_t w) {
  (void)dst; (void)y0; (void)x0; (void)h; (void)w;
  if (++calls < 3) { memcpy(dst, ctx, 1); return 0; } /* garbage windows, then a failure */
  tvmp_set_error("camera unplugged");
  return 7;
}

int main(void) {
  FILE* f = fopen("input.bin", "rb");
  if (!f || fread(image, 1, sizeof(image), f) != sizeof(image)) return 2;
  fclose(f);
  const void* inputs[1] = {image};
  void* outputs[1] = {result};
  if (tvmgen_NAME_input(0) != NULL) return 3; /* no arena slot for a streamed input */
  int32_t rc = tvmgen_NAME_run(inputs, outputs);
  f = fopen("output.bin", "wb");
  fwrite(result, 1, sizeof(result), f);
  fclose(f);
  int32_t failed = tvmgen_NAME_run_streamed(unplugged, image, outputs);
  printf("run=%d streamed=%d calls=%d error=%s\n", (int)rc, (int)failed, calls, tvmp_last_error());
  return 0;
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_the_c_api_reads_an_input_in_memory_and_reports_a_failing_provider(compiled):
    model = mlperf_model(VWW)
    streamed = compiled(model, target="host", schedule="patch", stream_input=True)
    layer = compiled(model, target="host")
    name = streamed.report.name
    project = streamed.out_dir / "project"
    app = APP.replace("NAME", name).replace("UP", name.upper())
    (project / "runtime" / "tvmp_main.c").write_text(app)  # the exported project, with the user's main
    subprocess.run(["make", "-s", "model.elf"], cwd=project, check=True, capture_output=True)
    inputs = model_inputs(streamed.report, seed=2)
    (project / "input.bin").write_bytes(inputs[0].tobytes())
    ran = subprocess.run(["./model.elf"], cwd=project, capture_output=True, text=True, check=True)
    want = run_compiled(layer.out_dir, device="host", inputs=inputs).outputs[0]
    assert (project / "output.bin").read_bytes() == want.tobytes()
    assert ran.stdout.startswith("run=0 streamed=-1 calls=3 error=RuntimeError: the input provider failed: ")
    assert "provider returned 7 for rows " in ran.stdout and ran.stdout.rstrip().endswith(": camera unplugged")


def test_streaming_needs_a_patch_stage():
    with pytest.raises(TvmPatchError, match="--stream-input: only a patch stage reads the input"):
        CompileOptions(patch=PatchOptions(stream_input=True))
