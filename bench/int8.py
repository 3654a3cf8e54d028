"""int8 models against TFLite Micro: largest difference, flash, weights in rodata, instructions.

For each MLPerf Tiny int8 model in ../shared/models and each test model in tests/data/models,
both schedules (per-layer and `--pass patch`) on the host (`--target host`, run natively) and
on Cortex-M4 (`--target cortex-m4`, run in QEMU mps2-an386): the largest LSB difference from
TFLite Micro's reference kernels (tests/reference/tflm.py) over seeded random int8 inputs, the
build's flash (text + rodata, cortex-m4) and QEMU instructions of one inference; then, per
model, rodata against its parts: int8 weight bytes, the int32 [bias; multiplier; shift] tables
and lookup tables, and the rest (DLTensor descriptors, shapes, libc).

Run: python bench/int8.py [--seeds 5] [--models vww_96_int8,...] [--devices host,qemu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MLPERF = REPO.parent / "shared" / "models" / "mlperf_tiny"
MLPERF_INT8 = ["vww_96_int8", "kws_ref_model", "pretrainedResnet_quant"]
sys.path.insert(0, str(REPO))  # tests.reference holds the oracle


def models(names: list[str] | None) -> list[Path]:
    found = [MLPERF / f"{n}.tflite" for n in MLPERF_INT8]
    found += sorted((REPO / "tests" / "data" / "models").glob("*.tflite"))
    return [m for m in found if m.is_file() and (not names or m.stem in names)]


def weight_bytes(out_dir: Path) -> dict[str, int]:
    """Constant bytes by dtype, from the emitted weights file's comments."""
    import re

    sizes: dict[str, int] = {}
    text = next((out_dir / "src").glob("tvmgen_*_weights.c")).read_text()
    for dtype, shape, nbytes in re.findall(r"/\* w\d+: ([a-z0-9]+)(\[[^\]]*\]), (\d+) bytes \*/", text):
        kind = "int8 table" if (dtype, shape) == ("int8", "[256]") else dtype
        sizes[kind] = sizes.get(kind, 0) + int(nbytes)
    return sizes


def main() -> int:
    from tests.reference.tflm import random_inputs, tflm_outputs_many
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch.targets.toolchain import elf_sizes
    from tvm_patch_core.options import CompileOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--devices", default="host,qemu")
    parser.add_argument("--schedules", default="layer,patch")
    args = parser.parse_args()
    devices = args.devices.split(",")
    schedules = args.schedules.split(",")
    print(
        f"| model | schedule | device | largest difference from TFLM ({args.seeds} seeds) "
        "| flash (B, cortex-m4) | QEMU instructions |"
    )
    print("|---|---|---|---|---|---|")
    rodata_rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for model in models([n for n in args.models.split(",") if n]):
            inputs = [random_inputs(model, seed) for seed in range(args.seeds)]
            want = tflm_outputs_many(model, inputs)
            for schedule in schedules:
                for device in devices:
                    target = "host" if device == "host" else "cortex-m4"
                    out = Path(tmp) / f"{model.stem}-{schedule}-{device}"
                    result = compile_model(model, out, CompileOptions(target=target, schedule=schedule))
                    worst, instructions = 0, None
                    for seed, (x, w) in enumerate(zip(inputs, want, strict=True)):
                        run = run_compiled(result.out_dir, device=device, inputs=x)
                        worst = max(worst, int(np.abs(run.outputs[0].astype(int) - w[0].astype(int)).max()))
                        if seed == 0 and device == "qemu":
                            instructions = run.report.instructions
                    flash = f"{result.report.flash_bytes:,}" if device == "qemu" else "-"
                    count = f"{instructions:,}" if instructions is not None else "-"
                    print(
                        f"| {model.stem} | {schedule} | {device} | {worst} LSB | {flash} | {count} |",
                        flush=True,
                    )
                    if device == "qemu" and schedule == "layer":
                        sizes = elf_sizes(result.elf)
                        rodata_rows.append((model.stem, sizes, weight_bytes(result.out_dir)))
    if rodata_rows:
        print()
        print(
            "| model (cortex-m4, per-layer) | text | rodata | int8 weights | int32 [bias; M; shift] "
            "and exp tables | int8 lookup tables | rest of rodata |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, sizes, consts in rodata_rows:
            i8, i32, lut = (
                consts.get("int8", 0),
                consts.get("int32", 0),
                consts.get("int8 table", 0),
            )
            rest = sizes["rodata"] - i8 - i32 - lut
            print(f"| {name} | {sizes['text']:,} | {sizes['rodata']:,} | {i8:,} | {i32:,} | {lut:,} | {rest:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
