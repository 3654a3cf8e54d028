"""TFLite Micro (the bit-exact oracle) beside the TFLite interpreter, on every int8 model.

For each MLPerf Tiny int8 model in ../shared/models and each test model in tests/data/models:
the largest LSB difference between TFLite Micro's reference kernels (tests/reference/tflm.py)
and ai-edge-litert, with its default kernels and with its reference kernels, over seeded
random int8 inputs; and the arena the oracle probed.

Run: python bench/tflm_vs_litert.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MLPERF = REPO.parent / "shared" / "models" / "mlperf_tiny"
MLPERF_INT8 = ["vww_96_int8", "kws_ref_model", "pretrainedResnet_quant"]
sys.path.insert(0, str(REPO))  # tests.reference holds the oracle


def main() -> int:
    from tests.reference.litert import litert_outputs, lsb_difference
    from tests.reference.tflm import random_inputs, tflm_arena_size, tflm_outputs_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    models = [MLPERF / f"{n}.tflite" for n in MLPERF_INT8]
    models += sorted((REPO / "tests" / "data" / "models").glob("*.tflite"))
    print(
        f"| model | TFLM vs litert default kernels (LSB, {args.seeds} seeds) "
        "| TFLM vs litert reference kernels (LSB) | TFLM arena probed (B) |"
    )
    print("|---|---|---|---|")
    for model in models:
        if not model.is_file():
            print(f"skip {model}: missing", file=sys.stderr)
            continue
        sets = [random_inputs(model, seed) for seed in range(args.seeds)]
        oracle = tflm_outputs_many(model, sets)
        default = max(lsb_difference(o, litert_outputs(model, x)) for o, x in zip(oracle, sets, strict=False))
        pairs = list(zip(oracle, sets, strict=True))
        ref = max(lsb_difference(o, litert_outputs(model, x, reference_kernels=True)) for o, x in pairs)
        print(f"| {model.stem} | {default} | {ref} | {tflm_arena_size(model):,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
