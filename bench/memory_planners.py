"""Arena benchmark: our static arena vs the liveness bound, Relax's planner and TFLite Micro.

For each MLPerf Tiny model in ../shared/models, compiled for cortex-m4 (layer schedule):
- ours: the size of `tvmp_arena` in the built ELF (`nm -S`), i.e. all activations incl. input/output;
- bound: the most bytes live at any step (the planner's lower bound);
- relax: Relax's StaticPlanBlockMemory on the same kernels (storage tokens it allocates) plus
  the model input, which it leaves to the caller;
- tflm: TFLite Micro's own planner on the .tflite file ("Arena allocation head": the tensor
  arena; "total" adds its persistent structures), measured by running tflite-micro in a subprocess.

Run: python bench/arena.py [--markdown]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models (the zoo) and tests.reference live in the repo
MODELS = REPO.parent / "shared" / "models" / "mlperf_tiny"
NAMES = ["vww_96_int8", "vww_96_float", "pretrainedResnet_quant", "pretrainedResnet", "kws_ref_model"]

_TFLM = """
import sys, numpy as np
from tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
it.invoke()
it.print_allocations()
"""


def tflm_arena(model: Path) -> tuple[int, int]:
    """(head, total) bytes from TFLite Micro's RecordingMicroAllocator."""
    proc = subprocess.run(
        [sys.executable, "-c", _TFLM, str(model), str(4 * 1024 * 1024)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = proc.stdout + proc.stderr  # TFLM prints its allocation log on stderr
    head = int(re.search(r"Arena allocation head (\d+) bytes", out).group(1))
    total = int(re.search(r"Arena allocation total (\d+) bytes", out).group(1))
    return head, total


def relax_static_plan(model: Path) -> int:
    from tests.reference.relax_plan import relax_static_plan_bytes

    return relax_static_plan_bytes(model)


def main() -> int:
    from tvm_patch.compile import compile_model
    from tvm_patch_core.options import CompileOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            model = MODELS / f"{name}.tflite"
            if not model.is_file():
                print(f"skip {name}: {model} missing", file=sys.stderr)
                continue
            r = compile_model(model, Path(tmp) / name, CompileOptions(target="cortex-m4")).report
            head, total = tflm_arena(model)
            rows.append((name, r.peak_sram_bytes, r.lower_bound_bytes, relax_static_plan(model), head, total))
            print(f"measured {name}", file=sys.stderr)
    header = [
        "model",
        "ours (ELF arena)",
        "liveness bound",
        "gap",
        "Relax StaticPlanBlockMemory + input",
        "TFLM planner head",
        "TFLM arena total",
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    else:
        print("  ".join(f"{h:>18}" for h in header))
    for name, ours, bound, spbm, head, total in rows:
        cells = [
            name,
            f"{ours:,}",
            f"{bound:,}",
            f"{100 * (ours - bound) / bound:.1f}%",
            f"{spbm:,}",
            f"{head:,}",
            f"{total:,}",
        ]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{c:>18}" for c in cells))
    bad = [(n, o, b, s) for n, o, b, s, *_ in rows if o > 1.02 * b or o > s]
    for n, o, b, s in bad:
        print(f"REGRESSION {n}: arena {o:,} B vs bound {b:,} B / Relax {s:,} B", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    np.set_printoptions(suppress=True)
    sys.exit(main())
