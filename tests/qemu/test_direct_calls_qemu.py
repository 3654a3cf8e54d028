"""Direct kernel calls on Cortex-M4 in QEMU, both kernel backends, equal to the packed debug build.

The direct build calls `int32_t <kernel>(int8_t*, ...)` from the C call sequence; the packed
build (`--kernel-calls packed`) goes through TVM's `__tvm_ffi_<kernel>` with its asserts. Same
kernels, same arena: the outputs must be identical and the direct build must take less flash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import model_inputs
from tvm_patch.run import run_compiled

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "op_coverage_32_int8.tflite"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["llvm", "c"])
def test_direct_calls_equal_the_packed_build_on_cortex_m4(kernels, compiled):
    direct = compiled(MODEL, target="cortex-m4", kernels=kernels)
    packed = compiled(MODEL, target="cortex-m4", kernels=kernels, kernel_calls="packed")
    inputs = model_inputs(direct.report, seed=6)
    got = run_compiled(direct.out_dir, device="qemu", inputs=inputs)
    want = run_compiled(packed.out_dir, device="qemu", inputs=inputs)
    for g, w in zip(got.outputs, want.outputs, strict=True):
        np.testing.assert_array_equal(g, w)
    assert direct.report.peak_sram_bytes == packed.report.peak_sram_bytes
    assert direct.report.flash_bytes < packed.report.flash_bytes
    # no claim on instructions: with the C backend gcc compiled this model's direct kernels to
    # 17,699,960 instructions against 17,668,320 for the packed build (same TIR, other code)
