"""int8 agreement with the TFLite interpreter: largest LSB difference and top-1, in QEMU (M4).

TVM's frontend computes the int8 models as dequantize -> float op -> quantize; TFLite uses
integer kernels with its own rounding, so the two may differ by a few LSB. (Against TVM's own
Relax VM run of the same imported model the outputs agree within 1 LSB: tests/qemu.)

Run: python bench/int8_vs_tflite.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models" / "mlperf_tiny"
sys.path.insert(0, str(REPO))  # tests.conftest holds the shared input generator and reference


def main() -> int:
    from tests.conftest import model_inputs, tflite_reference
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch_core.options import CompileOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| model | largest LSB difference from TFLite | same top-1 |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["vww_96_int8", "pretrainedResnet_quant", "kws_ref_model"]:
            model = MODELS / f"{name}.tflite"
            result = compile_model(model, Path(tmp) / name, CompileOptions(target="cortex-m4"))
            worst, same = 0, 0
            for seed in range(args.seeds):
                x = model_inputs(result.report, seed)
                y = run_compiled(result.out_dir, device="qemu", inputs=x).outputs[0]
                want = tflite_reference(model, x)[0]
                worst = max(worst, int(np.abs(y.astype(int) - want.astype(int)).max()))
                same += int(np.argmax(y) == np.argmax(want))
            print(f"| {name} | {worst} | {same}/{args.seeds} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
