"""Patch-based inference benchmark: peak SRAM (from the built arena) and MACs, per-layer vs patch.

Cases: MLPerf Tiny VWW int8 on cortex-m4 (QEMU instructions too), and MobileNetV2 1.0 at
224x224 from tests.models.zoo on the host, as int8 ONNX QDQ (zoo.quantize_int8, onnxruntime's
static quantization; the paper's setting) and as fp32. Every peak is the `tvmp_arena` the
built program declares; "without input" is the same arena planned with the model input left
out, as MCUNetV2 counts (equal to the peak when the input is streamed). Patch plans are chosen
and built with --stream-input (the stage reads the input window by window) and with the
input counted.

Run: python bench/patch.py [--skip-mobilenet]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tvm_patch_core.options import CompileOptions, PatchOptions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models (the zoo) and tests.reference live in the repo
VWW = REPO.parent / "shared" / "models" / "mlperf_tiny" / "vww_96_int8.tflite"


def options(target: str, schedule: str = "layer", stream_input: bool = False):
    return CompileOptions(target=target, schedule=schedule, patch=PatchOptions(stream_input=stream_input))


def main() -> int:
    from tests.models import zoo
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mobilenet", action="store_true", help="only VWW (the MobileNetV2 build takes minutes)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("vww_96_int8", VWW, "cortex-m4")]
        if not args.skip_mobilenet:
            mbv2 = zoo.mobilenet_v2(1.0, 224)
            cases.append(
                ("mobilenet_v2_1.0_224 (int8)", zoo.save(zoo.quantize_int8(mbv2), Path(tmp) / "mbv2_int8.onnx"), "host")
            )
            cases.append(("mobilenet_v2_1.0_224 (fp32)", zoo.save(mbv2, Path(tmp) / "mbv2.onnx"), "host"))
        for label, model, target in cases:
            variants = [
                ("per-layer", {}),
                ("patch, input streamed", {"schedule": "patch", "stream_input": True}),  # MCUNetV2's count, built
                ("patch, input counted", {"schedule": "patch"}),
            ]
            base = None
            for name, opts in variants:
                out = Path(tmp) / f"{label}-{name}".replace(" ", "_").replace(",", "")
                r = compile_model(model, out, options(target, **opts)).report
                run = run_compiled(out, device="qemu" if target != "host" else "host").report
                cost = (
                    f"{run.instructions:,} instr"
                    if run.instructions is not None
                    else f"{run.host_seconds * 1e3:.1f} ms host"
                )
                base = base or r
                st = r.patch_stages[0] if r.patch_stages else None
                plan = f"{len(st.layers)} layers, {st.grid[0]}x{st.grid[1]}" if st else "-"
                rows.append(
                    [
                        label,
                        name,
                        plan,
                        f"{r.peak_sram_bytes:,}",
                        f"{r.peak_sram_bytes_excl_input:,}",
                        f"{base.peak_sram_bytes_excl_input / r.peak_sram_bytes_excl_input:.2f}x",
                        f"{r.macs:,}",
                        f"{100 * (r.macs / base.macs - 1):+.1f}%",
                        cost,
                    ]
                )
                print(f"measured {label} {name}", file=sys.stderr, flush=True)
    header = [
        "model",
        "schedule",
        "patch stage",
        "peak SRAM (B)",
        "without input (B)",
        "reduction (without input)",
        "MACs",
        "MACs vs per-layer",
        "run",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
