"""The demo: compile a bundled model with tvmc, run it on the host and in QEMU, compare.

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
        from tvm_patch import zoo

        model = zoo.save(zoo.mobilenet_v2(width=0.35, resolution=96, num_classes=2), OUT / "mobilenet_v2_035_96.onnx")
    out = OUT / model.stem
    tvmc("compile", str(model), "--target", "cortex-m4", "-o", str(out))
    report = json.loads((out / "report.json").read_text())
    spec = report["inputs"][0]
    rng = np.random.default_rng(2026)
    if spec["dtype"] == "int8":
        x = rng.integers(-128, 128, spec["shape"]).astype(np.int8)
    else:
        x = rng.uniform(-1, 1, spec["shape"]).astype(spec["dtype"])
    np.savez(OUT / "input.npz", **{spec["name"]: x})
    runs = {}
    for device in ("qemu", "host"):
        tvmc("run", str(out), "--device", device, "--inputs", str(OUT / "input.npz"),
             "--outputs", str(OUT / f"output_{device}.npz"), "--report", str(OUT / f"run_{device}.json"),
             "--print-time", "--print-top", "2")
        runs[device] = (json.loads((OUT / f"run_{device}.json").read_text()),
                        np.load(OUT / f"output_{device}.npz")[report["outputs"][0]["name"]])
    want = reference(model, x)
    print()
    print(f"{model.name} -> {report['target']} ({report['board']}), {report['schedule']} schedule, {report['kernels']} kernels")
    print(f"  peak SRAM (ELF arena)   {report['peak_sram_bytes']:>12,} B   liveness lower bound {report['lower_bound_bytes']:,} B")
    print(f"  flash (text+rodata)     {report['flash_bytes']:>12,} B   MACs {report['macs']:,}")
    print(f"  {'run':<10} {'cost':>26}  {'top-1':>5}  vs {'TFLite' if model.suffix == '.tflite' else 'onnxruntime'}")
    for device, (rr, y) in runs.items():
        cost = f"{rr['instructions']:,} instructions" if "instructions" in rr else f"{rr['host_seconds'] * 1e3:.2f} ms"
        diff = np.abs(y.astype(np.float64) - want.astype(np.float64)).max()
        same = "same top-1" if np.argmax(y) == np.argmax(want) else "TOP-1 DIFFERS"
        unit = "LSB" if y.dtype.kind in "iu" else "abs"
        print(f"  {device + ' (' + rr['board'] + ')':<22} {cost:>22}  {int(np.argmax(y)):>5}  {same}, max diff {diff:g} {unit}")
    agree = np.array_equal(runs["qemu"][1], runs["host"][1])
    print(f"  QEMU and host outputs identical: {'yes' if agree else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
