"""QEMU instructions per kernel call of a compiled Cortex-M program (not a test: a measurement).

    python bench/layer_profile.py OUT [--top N]

Copies OUT/project to a temporary folder, wraps the kernel call in the generated model C
with two reads of the SysTick current value (0xE000E018; under -icount shift=0 one tick is
40 instructions on mps2-an386, so the resolution is 40), prints the deltas after the run
(TVMP_PROF lines) and the table: step, kernel, instructions, share of the total, MACs and
instructions per MAC from report.json. The model's input is zeros (counts barely depend on
the data). The per-call figures include the call_kernel wrapper's own few instructions.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_PROBE = """
volatile uint32_t tvmp_prof_ticks[512];
volatile uint32_t tvmp_prof_n;
"""

_CALL = "  return fn(NULL, args, n, &result);"
_TIMED = """  uint32_t prof_before = *(volatile uint32_t*)0xE000E018u;
  int32_t prof_rc = fn(NULL, args, n, &result);
  uint32_t prof_after = *(volatile uint32_t*)0xE000E018u;
  if (tvmp_prof_n < 512u) tvmp_prof_ticks[tvmp_prof_n++] = (prof_before - prof_after) & 0xFFFFFFu;
  return prof_rc;"""

_PRINT = """
  extern volatile uint32_t tvmp_prof_ticks[512];
  extern volatile uint32_t tvmp_prof_n;
  for (uint32_t p = 0; p < tvmp_prof_n; ++p) {
    tvmp_text_init(&t, line, sizeof(line));
    tvmp_text_str(&t, "TVMP_PROF ");
    tvmp_text_u64(&t, p);
    tvmp_text_str(&t, " ");
    tvmp_text_u64(&t, tvmp_prof_ticks[p]);
    tvmp_text_str(&t, "\\n");
    emit(line);
  }
  tvmp_text_init(&t, line, sizeof(line));
  tvmp_text_str(&t, "TVMP_RESULT rc=");"""


def profile(out: Path) -> list[tuple[int, str, int]]:
    report = json.loads((out / "report.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "project"
        shutil.copytree(out / "project", proj)
        (model_c,) = [p for p in (proj / "model").glob("tvmgen_*.c") if not p.name.endswith("_weights.c")]
        src = model_c.read_text()
        names = dict(re.findall(r"/\* (\d+): (\w+)\(", src))
        src = src.replace(_CALL, _TIMED)
        first_static = src.index("static ")
        model_c.write_text(src[:first_static] + _PROBE + src[first_static:])
        main_c = proj / "runtime" / "tvmp_main.c"
        text = main_c.read_text()
        main_c.write_text(text.replace('  tvmp_text_str(&t, "TVMP_RESULT rc=");', _PRINT, 1))
        nbytes = sum(int(i["bytes"]) for i in report["inputs"])
        (proj / "input.bin").write_bytes(bytes(nbytes))
        subprocess.run(["make", "-s", "model.elf"], cwd=proj, check=True)
        run = subprocess.run(["make", "-s", "run"], cwd=proj, check=True, capture_output=True, text=True, timeout=600)
    rows = []
    for step, ticks in re.findall(r"TVMP_PROF (\d+) (\d+)", run.stdout):
        rows.append((int(step), names.get(step, "?"), int(ticks) * 40))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a `tvmc compile` output folder for a Cortex-M board")
    args = ap.parse_args()
    report = json.loads((args.out / "report.json").read_text())
    macs = {layer.get("index"): layer.get("macs", 0) for layer in report.get("layers", [])}
    rows = profile(args.out)
    total = sum(r[2] for r in rows)
    print(f"{'step':>4} {'kernel':<24} {'instructions':>13} {'share':>6} {'MACs':>10} {'insn/MAC':>8}")
    for step, name, insns in rows:
        m = macs.get(step, 0)
        per = f"{insns / m:8.2f}" if m else ""
        print(f"{step:>4} {name:<24} {insns:>13,} {insns / total:6.1%} {m:>10,} {per:>8}")
    print(f"{'':>4} {'total (kernel calls)':<24} {total:>13,}")


if __name__ == "__main__":
    main()
