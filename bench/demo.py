"""The demo: compile a bundled model with tvmc, with and without --pass patch, run both on the
host and in QEMU, and compare.

Uses MLPerf Tiny VWW int8 from ../shared/models (or a generated MobileNetV2 if that folder
is absent). Every figure printed is measured here: peak SRAM from the ELF's arena symbol,
instructions from QEMU, outputs against the TFLite interpreter (or onnxruntime).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models (the zoo) and tests.reference live in the repo
VWW = REPO.parent / "shared" / "models" / "mlperf_tiny" / "vww_96_int8.tflite"
OUT = REPO / "demo_out"


def tvmc(*args: str) -> None:
    cmd = [sys.executable, "-m", "tvm_patch.cli", *args]
    print("$ tvmc " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(cmd, check=True)


def reference(model: Path, x: np.ndarray) -> np.ndarray:
    if model.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(model))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def main() -> int:
    OUT.mkdir(exist_ok=True)
    model = VWW
    if not model.is_file():
        from tests.models import zoo

        model = zoo.save(zoo.mobilenet_v2(width=0.35, resolution=96, num_classes=2), OUT / "mobilenet_v2_035_96.onnx")
    builds = {"per-layer": OUT / f"{model.stem}_layer", "patch": OUT / f"{model.stem}_patch"}
    tvmc("compile", str(model), "--target", "cortex-m4", "-o", str(builds["per-layer"]))
    tvmc(
        "compile",
        str(model),
        "--target",
        "cortex-m4",
        "--pass",
        "patch",
        "--stream-input",
        "--plot",
        str(OUT / "profile.png"),
        "-o",
        str(builds["patch"]),
    )
    reports = {k: json.loads((v / "report.json").read_text()) for k, v in builds.items()}
    spec = reports["per-layer"]["inputs"][0]
    rng = np.random.default_rng(2026)
    if spec["dtype"] == "int8":
        x = rng.integers(-128, 128, spec["shape"]).astype(np.int8)
    else:
        x = rng.uniform(-1, 1, spec["shape"]).astype(spec["dtype"])
    np.savez(OUT / "input.npz", **{spec["name"]: x})
    runs = {}
    for schedule, out in builds.items():
        for device in ("qemu", "host"):
            tag = f"{schedule}_{device}"
            tvmc(
                "run",
                str(out),
                "--device",
                device,
                "--inputs",
                str(OUT / "input.npz"),
                "--outputs",
                str(OUT / f"output_{tag}.npz"),
                "--report",
                str(OUT / f"run_{tag}.json"),
                "--print-time",
            )
            name = reports[schedule]["outputs"][0]["name"]
            runs[(schedule, device)] = (
                json.loads((OUT / f"run_{tag}.json").read_text()),
                np.load(OUT / f"output_{tag}.npz")[name],
            )
    want = reference(model, x)
    ref = "TFLite" if model.suffix == ".tflite" else "onnxruntime"
    print()
    print(f"{model.name} -> cortex-m4 ({reports['per-layer']['board']}), {reports['per-layer']['kernels']} kernels")
    print(f"  {'schedule':<10} {'peak SRAM':>11} {'w/o input':>10} {'flash':>10} {'MACs':>11}  patch stage")
    for schedule, r in reports.items():
        st = (r.get("patch_stages") or [None])[0]
        stage = f"{len(st['layers'])} layers, {st['grid'][0]}x{st['grid'][1]} patches" if st else "-"
        print(
            f"  {schedule:<10} {r['peak_sram_bytes']:>11,} {r['peak_sram_bytes_excl_input']:>10,} "
            f"{r['flash_bytes']:>10,} {r['macs']:>11,}  {stage}"
        )
    print(f"  {'run':<22} {'cost':>24}  top-1  vs {ref}")
    for (schedule, device), (rr, y) in runs.items():
        cost = f"{rr['instructions']:,} instr" if "instructions" in rr else f"{rr['host_seconds'] * 1e3:.2f} ms"
        diff = np.abs(y.astype(np.float64) - want.astype(np.float64)).max()
        same = "same top-1" if np.argmax(y) == np.argmax(want) else "TOP-1 DIFFERS"
        unit = "LSB" if y.dtype.kind in "iu" else "abs"
        print(
            f"  {schedule + ' on ' + device:<22} {cost:>24}  {int(np.argmax(y)):>5}  {same}, max diff {diff:g} {unit}"
        )
    outs = [y for _, y in runs.values()]
    agree = all(np.array_equal(outs[0], y) for y in outs[1:])
    print(f"  all four runs give identical outputs: {'yes' if agree else 'NO'}")
    print(f"  memory profile: {OUT / 'profile.png'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
