"""Planner benchmark: how long `choose_plan` takes, what it picks, and its Pareto front.

Models: MobileNetV2 1.0 at 224 and 0.35 at 144 from tests.models.zoo as int8 ONNX QDQ
(zoo.quantize_int8, as bench/patch.py builds them), and MLPerf Tiny VWW int8. Each is
imported and lowered once (not timed); then the planner runs with the input counted and with
`--stream-input`, timed by wall clock (best of --repeat). The predicted arena is what the
built program declares (tests/host/test_planner_exact.py checks that on builds); with
--front the whole front is printed, the knee's choice marked.

Run: python bench/planner.py [--repeat 3] [--front] [--skip-mobilenet]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.models (the zoo) lives in the repo
VWW = REPO.parent / "shared" / "models" / "mlperf_tiny" / "vww_96_int8.tflite"


def main() -> int:
    from tests.models import zoo
    from tvm_patch.frontend import load_model
    from tvm_patch.layer_graph import layer_graph
    from tvm_patch.lower import lower_to_program
    from tvm_patch_core.options import CompileOptions, PatchOptions
    from tvm_patch_core.patch_planner import MAC_PRICE, choose_plan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="time each plan this many times, report the best")
    parser.add_argument("--front", action="store_true", help="print every Pareto front")
    parser.add_argument("--skip-mobilenet", action="store_true", help="only VWW")
    args = parser.parse_args()
    rows, fronts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("vww_96_int8", VWW)]
        if not args.skip_mobilenet:
            for width, res in ((1.0, 224), (0.35, 144)):
                model = zoo.quantize_int8(zoo.mobilenet_v2(width, res))
                path = zoo.save(model, Path(tmp) / f"mbv2_{width}_{res}_int8.onnx")
                cases.append((f"mobilenet_v2_{width}_{res} (int8)", path))
        for label, path in cases:
            program = lower_to_program(load_model(path).mod)
            layers = layer_graph(program.grouped)
            total = sum(layer.macs for layer in layers)
            for stream_input in (False, True):
                options = CompileOptions(schedule="patch", patch=PatchOptions(stream_input=stream_input))
                best = math.inf
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    choice = choose_plan(program.graph, layers, options)
                    best = min(best, time.perf_counter() - start)
                mode = "input streamed" if stream_input else "input counted"
                plan = f"{len(choice.plan.stage)} layers, {choice.plan.grid[0]}x{choice.plan.grid[1]}"
                rows.append([
                    label, mode, f"{choice.considered:,}", f"{choice.laid_out}", f"{len(choice.front)}", plan,
                    f"{choice.predicted_bytes:,}", f"{100 * choice.extra_fraction:+.1f}%", f"{best:.2f} s",
                ])  # fmt: skip
                fronts.append((label, mode, choice, total))
                print(f"planned {label}, {mode}", file=sys.stderr, flush=True)
    header = ["model", "arena", "plans scored", "arenas laid out", "front", "chosen", "predicted arena (B)", "MACs"]
    header.append("planning time")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.front:
        for label, mode, choice, total in fronts:
            print(f"\n{label}, {mode}: split, grid, arena, extra MACs, ln(arena) + {MAC_PRICE} x extra fraction")
            for p in choice.front:
                chosen = " <- chosen" if (p.split, p.grid) == (len(choice.plan.stage), choice.plan.grid) else ""
                knee = math.log(p.arena_bytes) + MAC_PRICE * p.extra_macs / total
                grid, extra = f"{p.grid[0]}x{p.grid[1]}", 100 * p.extra_macs / total
                print(f"  {p.split:3d}  {grid}  {p.arena_bytes:>10,}  {extra:+6.2f}%  {knee:.4f}{chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
