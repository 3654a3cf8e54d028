"""Tuned vs untuned: QEMU instruction counts of MLPerf Tiny VWW int8 after `tvmc tune`.

Untuned is the default build (InlineKernels everywhere), with `--pass patch` by default (the
issue's comparison: tuned patch build vs untuned patch build; `--pass none` for per-layer).
Tuned compiles with the records of `tvmc tune --runner qemu` (MetaSchedule, XGBoost cost
model, every candidate measured by its instruction count on the board, over-cap candidates
rejected). Depthwise layers run in place
and keep InlineKernels' schedule, so the table also gives the share of the untuned count
that tuning could touch at all. Both builds run the same seeded int8 input; their outputs
must be identical.

Run: python bench/tune.py [--model vww_96_int8.tflite] [--pass patch|none] [--trials 600] [--sram-cap 64KiB]
     [--runner qemu|host] [--out bench_out/tune]   (records are kept in OUT/records.json;
     a second run with the same OUT resumes from them)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models" / "mlperf_tiny"


def main() -> int:
    from tvm_patch.compile import compile_model
    from tvm_patch.run import run_compiled
    from tvm_patch.tune.tuner import TuneSettings, tune_model
    from tvm_patch_core.options import CompileOptions, parse_bytes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vww_96_int8.tflite")
    parser.add_argument("--target", default="cortex-m4")
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--sram-cap", default="64KiB")
    parser.add_argument("--pass", dest="pass_name", choices=["patch", "none"], default="patch")
    parser.add_argument("--runner", choices=["qemu", "host"], default="qemu")
    parser.add_argument("--out", default="bench_out/tune")
    args = parser.parse_args()
    model = MODELS / args.model
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cap = parse_bytes(args.sram_cap)
    records = out / "records.json"

    schedule = "patch" if args.pass_name == "patch" else "layer"
    untuned = compile_model(model, out / "untuned", CompileOptions(target=args.target, schedule=schedule, sram_cap=cap))
    start = time.monotonic()
    s = tune_model(
        model,
        CompileOptions(target=args.target, schedule=schedule, sram_cap=cap),
        TuneSettings(trials=args.trials, runner=args.runner),
        records,
    )
    tune_s = time.monotonic() - start
    tuned = compile_model(
        model,
        out / "tuned",
        CompileOptions(target=args.target, schedule=schedule, sram_cap=cap, tuning_records=str(records)),
    )
    x = [np.random.default_rng(0).integers(-128, 128, i.shape).astype(i.dtype) for i in untuned.report.inputs]
    runs = {name: run_compiled(out / name, device="qemu", inputs=x) for name in ("untuned", "tuned")}
    n0, n1 = (runs[k].report.instructions for k in ("untuned", "tuned"))
    same = all(np.array_equal(a, b) for a, b in zip(runs["untuned"].outputs, runs["tuned"].outputs, strict=False))
    doc = json.loads(records.read_text())
    untuned_tasks = sum(doc.get("untuned_secs", {}).values()) * 1e9 if args.runner == "qemu" else None
    used = tuned.report.tuning["kernels"]

    print(
        f"{args.model} on {args.target}, {schedule} schedule, {s.trials} trials ({args.runner} runner) "
        f"in {tune_s / 60:.1f} min, "
        f"--sram-cap {cap:,} B, {s.rejected} candidates rejected by the cap"
    )
    print("| build | QEMU instructions | vs untuned | peak SRAM (ELF arena) | flash |")
    print("|---|---|---|---|---|")
    for name, r in (("untuned (InlineKernels)", untuned), ("tuned (records)", tuned)):
        n = runs["untuned" if r is untuned else "tuned"].report.instructions
        print(f"| {name} | {n:,} | {n / n0:.3f} | {r.report.peak_sram_bytes:,} | {r.report.flash_bytes:,} |")
    print(
        f"kernels tuned: {len(s.tasks)} of {len(s.tasks) + len(s.skipped)} ({len(s.skipped)} keep InlineKernels: "
        f"in place or the patch stage); records applied to {len(used)}, "
        f"default kept for {len(tuned.report.tuning['kept_default'])}"
    )
    if untuned_tasks:
        print(
            f"tunable kernels' share of the untuned count: {untuned_tasks:,.0f} of {n0:,} instructions "
            f"({100 * untuned_tasks / n0:.0f}%); best reachable ratio if they took zero: {1 - untuned_tasks / n0:.2f}"
        )
    print(f"ratio tuned/untuned: {n1 / n0:.3f} (target <= 0.7); outputs identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
