"""tvm-patch against TFLite Micro (reference kernels and CMSIS-NN) on Cortex-M4 in QEMU.

For each MLPerf Tiny int8 model: compile untuned for cortex-m4 (`tvmc compile --target
cortex-m4`, per-layer schedule, LLVM kernels; with `--no-dsp` also TVM's own loops), run one
inference in QEMU mps2-an386 with the input TFLM's anchor used (numpy default_rng(0) int8)
and print our instructions and flash (ELF .text + .rodata) beside TFLM's, with ratios.

TFLM figures are pinned, not measured here: /work/shared/anchors/tflm/results.md, measured
2026-12-02 on this machine with the same QEMU 7.2.22 and the same counting (SysTick under
-icount shift=0; TFLM: interpreter.Invoke() only; tvm-patch: tvmp_model_run() only), at -O2,
tflite-micro 90b983c2b3f1480642e040bbd2ddb37b998f3424 with CMSIS-NN
4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae, arm-none-eabi-gcc 12.2.1. TFLM's flash includes
the .tflite flatbuffer and the interpreter, so the flash columns compare whole programs.

With `--target cortex-m7|cortex-m33|cortex-m3` our side runs on that core's board instead
(mps2-an500, mps2-an505, mps2-an385); the TFLM columns stay the Cortex-M4 anchor's, so the
ratios compare instruction counts across cores of the same ISA family (QEMU counts
instructions, not cycles), not a TFLM build for that core.

Run: python bench/vs_tflm.py [--models kws_ref_model,...] [--no-dsp] [--target cortex-m7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MLPERF = REPO.parent / "shared" / "models" / "mlperf_tiny"
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Anchor:
    """One model's row of results.md (Main table and Memory table, -O2)."""

    macs: int
    ref_insns: int
    cmsis_insns: int
    ref_flash: int
    cmsis_flash: int


ANCHORS = {
    "kws_ref_model": Anchor(2_656_768, 43_111_720, 7_696_560, 159_476, 208_060),
    "vww_96_int8": Anchor(7_489_664, 100_485_920, 24_102_320, 465_980, 514_564),
    "pretrainedResnet_quant": Anchor(12_501_632, 107_487_920, 29_863_360, 206_612, 255_196),
}
TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m3")


def anchor_input(model: Path) -> list[np.ndarray]:
    """The anchor's input bytes: default_rng(0).integers(-128, 128, shape, dtype=int8)
    (its tools/gen_inputs.py), one int8 input per model."""
    from tests.reference.tflm import model_io

    (spec,) = model_io(model)[0]
    return [np.random.default_rng(0).integers(-128, 128, spec.shape, dtype=np.int8)]


def measure(model: Path, out: Path, dsp: bool, target: str = "cortex-m4") -> tuple[int, int]:
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch_core.options import CompileOptions

    result = compile_model(model, out, CompileOptions(target=target, dsp_kernels=dsp))
    run = run_compiled(result.out_dir, device="qemu", inputs=anchor_input(model))
    return run.report.instructions, result.report.flash_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ANCHORS), help="comma-separated model names")
    parser.add_argument("--no-dsp", action="store_true", help="also measure without the SMLAD micro-kernels")
    parser.add_argument("--target", default="cortex-m4", choices=TARGETS, help="the core our side runs on")
    args = parser.parse_args()
    print(f"tvm-patch on {args.target}; TFLM columns: the cortex-m4 anchor")
    variants = [("dsp", True), *([("tvm loops", False)] if args.no_dsp else [])]
    head = (
        f"{'model':<24} {'kernels':<10} {'insns':>12} {'/MAC':>6} {'TFLM ref':>12} {'CMSIS-NN':>12} "
        f"{'/ref':>6} {'/CMSIS':>7} {'flash':>9} {'ref flash':>9} {'CMSIS fl.':>9} {'/ref':>6} {'/CMSIS':>7}"
    )
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            a = ANCHORS[name]
            for label, dsp in variants:
                insns, flash = measure(MLPERF / f"{name}.tflite", Path(tmp) / f"{name}_{dsp}", dsp, args.target)
                print(
                    f"{name:<24} {label:<10} {insns:>12,} {insns / a.macs:>6.2f} {a.ref_insns:>12,} "
                    f"{a.cmsis_insns:>12,} {insns / a.ref_insns:>6.3f} {insns / a.cmsis_insns:>7.3f} "
                    f"{flash:>9,} {a.ref_flash:>9,} {a.cmsis_flash:>9,} {flash / a.ref_flash:>6.3f} "
                    f"{flash / a.cmsis_flash:>7.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
