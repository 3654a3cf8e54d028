"""Differential fuzzer (issue 8 item 10): seeded random conv chains, per layer vs patched vs onnxruntime.

Each case (tests/models/fuzz_chains.py) builds a random ONNX conv chain (fp32 or int8 QDQ),
compiles it for the host per layer and with `--pass patch` at a random split and grid, runs
both and onnxruntime on one input, and ends ok, refused (with its reason), mismatch or crash.
Cases run in worker processes (one case at a time each, so a case that kills its process is a
crash of that seed, not of the run). Prints a progress line on stderr, then a summary table
with the seed of every failure; exits 1 on any mismatch or crash.

Run: python bench/fuzz.py --cases 300 --seed 0 [--jobs 2] [--json results.json]
     python bench/fuzz.py --shrink SEED     (the smallest failing layer list for one seed)
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASE_TIMEOUT_S = 900  # a case takes seconds; a worker silent this long is killed (a crash of that seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="number of cases (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; cases use seed .. seed+cases-1")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write every outcome to this file")
    parser.add_argument("--shrink", type=int, metavar="SEED", help="shrink one failing seed and print it")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.shrink is not None:
        return shrink_seed(args.shrink)
    if args.cases < 1 or args.jobs < 1:
        parser.error("--cases and --jobs must be at least 1")
    start = time.monotonic()
    outcomes = run_all(range(args.seed, args.seed + args.cases), args.jobs)
    wall = time.monotonic() - start
    if args.json:
        args.json.write_text(json.dumps([o for o in outcomes], indent=1) + "\n")
    print(summary(outcomes, args, wall))
    return 1 if any(o["status"] in ("mismatch", "crash") for o in outcomes) else 0


def _quiet() -> None:
    """onnxruntime's quantizer and logger talk on every case; a worker keeps only results."""
    import logging

    import onnxruntime

    logging.getLogger().setLevel(logging.ERROR)
    onnxruntime.set_default_logger_severity(3)


def worker() -> int:
    """Read seeds from stdin, one per line; write one JSON outcome per line to stdout."""
    sys.path.insert(0, str(REPO))
    _quiet()
    from tests.models.fuzz_chains import random_case
    from tests.models.fuzz_run import run_case

    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to the log, not the protocol
    for line in sys.stdin:
        seed = int(line)
        with tempfile.TemporaryDirectory(prefix=f"fuzz{seed}.") as tmp:
            outcome = run_case(random_case(seed), tmp)
        out.write(json.dumps(outcome.as_dict()) + "\n")
        out.flush()
    return 0


def run_all(seeds: range, jobs: int) -> list[dict]:
    todo: queue.Queue[int] = queue.Queue()
    for s in seeds:
        todo.put(s)
    results: dict[int, dict] = {}
    lock = threading.Lock()
    start = time.monotonic()
    log = open(os.devnull, "w")

    live = sys.stderr.isatty()

    def report() -> None:
        counts = Counter(o["status"] for o in results.values())
        done = len(results)
        if not live and done % 25 and done != len(seeds):
            return  # in a log: a line every 25 cases
        eta = (time.monotonic() - start) / done * (len(seeds) - done)
        bar = "#" * (30 * done // len(seeds))
        line = f"fuzz [{bar:.<30}] {done}/{len(seeds)} {time.monotonic() - start:.0f}s (eta {eta:.0f}s) " + " ".join(
            f"{k} {counts[k]}" for k in ("ok", "refused", "mismatch", "crash")
        )
        sys.stderr.write(f"\r{line}\x1b[K" if live else f"{line}\n")
        sys.stderr.flush()

    def spawn() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
        )

    def slot() -> None:
        proc = spawn()
        while True:
            try:
                seed = todo.get_nowait()
            except queue.Empty:
                break
            proc.stdin.write(f"{seed}\n")
            proc.stdin.flush()
            timer = threading.Timer(CASE_TIMEOUT_S, proc.kill)
            timer.start()
            line = proc.stdout.readline()
            timer.cancel()
            if line:
                outcome = json.loads(line)
            else:  # the worker died with this seed: a crash, and a new worker for the rest
                rc = proc.wait()
                why = f"killed after {CASE_TIMEOUT_S} s" if rc == -9 else f"exit code {rc}"
                outcome = {
                    "seed": seed,
                    "status": "crash",
                    "reason": f"the worker process died ({why})",
                    "plan": "",
                    "case": "",
                    "seconds": 0,
                    "known": "",
                }
                proc = spawn()
            with lock:
                results[seed] = outcome
                report()
        proc.stdin.close()
        proc.wait()

    threads = [threading.Thread(target=slot) for _ in range(min(jobs, len(seeds)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if live:
        sys.stderr.write("\n")
    return [results[s] for s in seeds]


def summary(outcomes: list[dict], args, wall: float) -> str:
    """A markdown table: ok, refused by reason, mismatches and crashes by reason, with seeds."""
    groups: dict[tuple[str, str], list[int]] = {}
    for o in outcomes:
        reason = o["reason"]
        if o["status"] == "refused":
            reason = _reason_stem(reason)
        elif o["status"] in ("mismatch", "crash"):
            reason = f"known, fixed elsewhere: {o['known']}" if o.get("known") else reason
        groups.setdefault((o["status"], reason if o["status"] != "ok" else ""), []).append(o["seed"])
    order = {"ok": 0, "refused": 1, "mismatch": 2, "crash": 3}
    counts = Counter(o["status"] for o in outcomes)
    mean = sum(o["seconds"] for o in outcomes) / len(outcomes)
    lines = [
        f"`python bench/fuzz.py --cases {args.cases} --seed {args.seed} --jobs {args.jobs}`: "
        f"{len(outcomes)} cases in {wall / 60:.1f} min ({mean:.1f} s per case in a worker); "
        + ", ".join(f"{counts[k]} {k}" for k in order),
        "",
        "| outcome | reason | cases | seeds |",
        "|---|---|---|---|",
    ]
    for (status, reason), seeds in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], -len(kv[1]))):
        shown = seeds if status in ("mismatch", "crash") else seeds[:8] + (["..."] if len(seeds) > 8 else [])
        lines.append(f"| {status} | {reason.replace('|', '/')} | {len(seeds)} | {', '.join(map(str, shown))} |")
    return "\n".join(lines)


def _reason_stem(reason: str) -> str:
    """A refusal without its layer numbers, tensor names and sizes, so equal reasons group."""
    import re

    for pattern, stem in (
        (r"\((lv|gv)\d*\)", "(…)"),
        (r"\['(lv|gv)\d*'\]", "[…]"),
        (r"layer \d+", "layer N"),
        (r"--split \d+:", "--split K:"),
        (r"--patches \d+x\d+", "--patches AxB"),
        (r"stage \[[\d, ]*\]", "stage [0..K-1]"),
        (r"(is|only) \d+x\d+ pixels", r"\1 HxW pixels"),
    ):
        reason = re.sub(pattern, stem, reason)
    return reason[:200]


def shrink_seed(seed: int) -> int:
    sys.path.insert(0, str(REPO))
    _quiet()
    from tests.models.fuzz_chains import random_case
    from tests.models.fuzz_run import shrink

    case = random_case(seed)
    print(f"shrinking {case.describe()}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"shrink{seed}.") as tmp:
        small, outcome = shrink(case, tmp, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{outcome.status}: {outcome.reason}\n{small.describe()}\n{outcome.plan}\n{small!r}")
    return 0 if outcome.status in ("ok", "refused") else 1


if __name__ == "__main__":
    sys.exit(main())
