"""Which TVM codegen makes the faster Cortex-M kernels? QEMU instruction counts, C vs LLVM.

Both builds come from the same scheduled PrimFuncs and the same arena; only the kernels
differ: TVM's C backend compiled by arm-none-eabi-gcc -O2, or TVM's LLVM thumbv7em object.
The winner is `tvm_patch.kernels.CORTEX_M_DEFAULT`.

Run: python bench/kernel_backends.py [--target cortex-m4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models" / "mlperf_tiny"
NAMES = ["vww_96_int8", "pretrainedResnet_quant", "kws_ref_model", "vww_96_float"]


def main() -> int:
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch_core.options import CompileOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cortex-m4")
    args = parser.parse_args()
    print(f"| model ({args.target}) | C backend + gcc -O2 | LLVM object | LLVM / C |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            model = MODELS / f"{name}.tflite"
            counts = {}
            for kernels in ("c", "llvm"):
                out = Path(tmp) / f"{name}-{kernels}"
                compile_model(model, out, CompileOptions(target=args.target, kernels=kernels))
                counts[kernels] = run_compiled(out, device="qemu").report.instructions
            print(f"| {name} | {counts['c']:,} | {counts['llvm']:,} | {counts['llvm'] / counts['c']:.2f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
