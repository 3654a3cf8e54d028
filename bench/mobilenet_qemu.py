"""MobileNetV2 1.0 at 224 int8 (ONNX QDQ) on Cortex-M4 in QEMU: per layer and patched.

The model is tests.models.zoo's, quantized by onnxruntime's static quantization
(zoo.quantize_int8), as the paper sets it. Both builds are compiled for cortex-m4
(mps2-an386), run once in QEMU on the same seeded input, and compared: peak SRAM (the ELF
arena), flash (text + rodata), QEMU instructions, and whether the outputs are identical.
The patch build streams the input (--stream-input: the arena holds none of it). About 5 minutes.

Run: python bench/mobilenet_qemu.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models (the zoo) and tests.conftest live in the repo


def main() -> int:
    from tests.conftest import model_inputs
    from tests.models import zoo
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch_core.options import CompileOptions, PatchOptions

    builds = {
        "per-layer": CompileOptions(target="cortex-m4"),
        "patch, input streamed": CompileOptions(
            target="cortex-m4", schedule="patch", patch=PatchOptions(stream_input=True)
        ),
    }
    rows, outputs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = zoo.save(zoo.quantize_int8(zoo.mobilenet_v2(1.0, 224)), Path(tmp) / "mbv2_int8.onnx")
        for i, (name, options) in enumerate(builds.items()):
            start = time.time()
            result = compile_model(path, Path(tmp) / f"out{i}", options)
            run = run_compiled(result.out_dir, device="qemu", inputs=model_inputs(result.report))
            outputs.append(run.outputs[0])
            r = result.report
            rows.append(
                (name, r.peak_sram_bytes, r.peak_sram_bytes_excl_input, r.flash_bytes, r.macs, run.result.count)
            )
            print(f"{name}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    print("| build | peak SRAM (ELF arena) | without input | flash | MACs | QEMU instructions |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, peak, excl, flash, macs, count in rows:
        print(f"| {name} | {peak:,} | {excl:,} | {flash:,} | {macs:,} | {count:,} |")
    same = all(np.array_equal(outputs[0], o) for o in outputs[1:])
    print(f"\noutputs identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
