"""The SMLAD micro-kernels (targets/runtime/tvmp_kernels_s8*.c) compute what TFLite Micro computes.

One-layer int8 models with shapes that reach every path of the kernels: K % 4 tails, an odd
filter count (the unpaired last filter), an odd pixel count (the unpaired last pixel), SAME
padding on all sides, stride 2 and dilation (im2col with padding), 1x1 (columns read in
place), depthwise with channels % 4 (the scalar tail), a 3x3 window (unrolled) and 5x3, each
depthwise run in place over its input (rows stored one row late). The residual ADD fused in
place is checked by pretrainedResnet_quant (tests/qemu/test_int8_tflm_qemu.py).

Each is compiled for the host (plain C path), Cortex-M4 (SMLAD, SXTB16, SMLABB in QEMU) and
Cortex-M3 (no DSP: plain C on a 32-bit core), and must equal TFLM byte for byte; the kernel
must really be the micro-kernel (the emitted C calls it), so a wrong one cannot pass by
falling back to TVM's loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import tflite_ops as ops
from tests.tflite_ops import Q, run_tflm
from tvm_patch.run import run_compiled

RNG = np.random.default_rng(11)

# (name, x shape, weights shape (OHWI; depthwise 1HWC), stride, padding, dilation, depthwise)
CASES = [
    ("pointwise_tails", (1, 7, 5, 13), (11, 1, 1, 13), (1, 1), "SAME", (1, 1), False),
    ("conv3x3_same", (1, 9, 7, 6), (9, 3, 3, 6), (1, 1), "SAME", (1, 1), False),
    ("conv3x3_stride2", (1, 11, 10, 5), (8, 3, 3, 5), (2, 2), "SAME", (1, 1), False),
    ("conv5x3_dilated", (1, 12, 9, 3), (7, 5, 3, 3), (1, 1), "SAME", (2, 1), False),
    ("conv_valid_1ch", (1, 20, 8, 1), (16, 10, 4, 1), (2, 2), "VALID", (1, 1), False),
    ("depthwise3x3", (1, 9, 6, 10), (1, 3, 3, 10), (1, 1), "SAME", (1, 1), True),
    ("depthwise3x3_stride2", (1, 10, 9, 12), (1, 3, 3, 12), (2, 2), "SAME", (1, 1), True),
    # VALID: in place over the input (the rule chooses it for a one-layer model), SAME's two
    # rows of top padding would need two rows of delay, so DspKernels would keep TVM's loops
    ("depthwise5x3_valid", (1, 8, 7, 7), (1, 5, 3, 7), (1, 1), "VALID", (1, 1), True),
]
TARGETS = ["host", "cortex-m4", "cortex-m3"]


def conv_model(x_shape, w_shape, stride, padding, dilation, depthwise) -> bytes:
    w = RNG.integers(-127, 128, w_shape).astype(np.int8)
    cout = w_shape[3] if depthwise else w_shape[0]
    scales = RNG.uniform(0.002, 0.02, cout).astype(np.float32)
    bias = RNG.integers(-3000, 3000, cout).astype(np.int32)
    return ops.conv2d(
        x_shape,
        w,
        scales,
        bias,
        Q(0.0315, -5),
        Q(0.17, 9),
        stride=stride,
        padding=padding,
        dilation=dilation,
        activation="relu6",
        depthwise=depthwise,
    )


def run_and_compare(model: bytes, inputs: list[np.ndarray], target: str, tmp_path, symbol: str) -> None:
    from tvm_patch.compile import compile_model
    from tvm_patch_core.options import CompileOptions

    want = run_tflm(model, inputs, tmp_path)[0]
    path = tmp_path / "layer.tflite"
    path.write_bytes(model)
    result = compile_model(path, tmp_path / f"out-{target}", CompileOptions(target=target))
    assert f"{symbol}(" in (result.out_dir / "src" / "kernels.c").read_text(), f"{symbol} not used"
    got = run_compiled(result.out_dir, device="host" if target == "host" else "qemu", inputs=inputs).outputs[0]
    np.testing.assert_array_equal(got, want, err_msg=f"{symbol} on {target}")


@pytest.mark.qemu
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_conv_equals_tflite_micro(case, target, tmp_path):
    _, x_shape, w_shape, stride, padding, dilation, depthwise = case
    model = conv_model(x_shape, w_shape, stride, padding, dilation, depthwise)
    x = RNG.integers(-128, 128, x_shape).astype(np.int8)
    run_and_compare(model, [x], target, tmp_path, "tvmp_s8_depthwise" if depthwise else "tvmp_s8_conv2d")
