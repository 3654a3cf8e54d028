"""Property test: random conv chains, patched vs per-layer, on the host.

Kernels 1/3/5, strides 1/2, dilation, groups (depthwise), residuals, uneven grids (tiles that
cannot divide the output equally) and non-square grids. Seeded, so a failure reproduces.
"""

from __future__ import annotations

import random

import numpy as np
import onnxruntime as ort
import pytest

from tests.models import zoo
from tvm_patch.compile import compile_model
from tvm_patch.run import run_compiled
from tvm_patch_core.options import CompileOptions, PatchOptions


def random_chain(rng: random.Random) -> tuple[list[zoo.ConvSpec], int, int]:
    channels = rng.choice([3, 4, 8])
    size = rng.choice([13, 16, 19, 24])
    specs, c = [], channels
    for _ in range(rng.randint(2, 4)):
        kind = rng.choice(["conv", "dw", "pw", "res"])
        if kind == "dw":
            specs.append(zoo.ConvSpec(c, kernel=rng.choice([3, 5]), stride=rng.choice([1, 2]), groups=c))
        elif kind == "pw":
            c = rng.choice([4, 8, 12])
            specs.append(zoo.ConvSpec(c, kernel=1))
        elif kind == "res":
            specs.append(zoo.ConvSpec(c, kernel=3, dilation=rng.choice([1, 2]), residual=True))
        else:
            c = rng.choice([4, 8])
            specs.append(zoo.ConvSpec(c, kernel=rng.choice([3, 5]), stride=rng.choice([1, 2])))
    return specs, channels, size


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_conv_chain_patched_equals_per_layer(tmp_path, seed):
    rng = random.Random(seed)
    specs, channels, size = random_chain(rng)
    path = zoo.save(zoo.conv_chain(specs, channels, size, seed=seed), tmp_path / "chain.onnx")
    layer = compile_model(path, tmp_path / "layer", CompileOptions(target="host"))
    out_h = layer.report.layers[len(specs) - 1].output_shape[2]
    grid = (rng.randint(2, min(4, out_h)), rng.randint(1, min(3, out_h)))
    patched = compile_model(
        path,
        tmp_path / "patch",
        CompileOptions(target="host", schedule="patch", patch=PatchOptions(split=len(specs), grid=grid)),
    )
    assert patched.report.patch_stages[0].grid == grid
    x = np.random.default_rng(seed).standard_normal((1, channels, size, size)).astype("float32")
    got = run_compiled(patched.out_dir, device="host", inputs=[x]).outputs[0]
    want = run_compiled(layer.out_dir, device="host", inputs=[x]).outputs[0]
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) <= 1e-6 * scale, f"seed {seed}: {specs} grid {grid}"
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert float(np.abs(got - ref).max()) <= 1e-4 * float(np.abs(ref).max())
