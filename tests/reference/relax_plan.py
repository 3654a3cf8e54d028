"""What other planners make of the same program, for the benchmarks and the regression tests."""

from __future__ import annotations

import re
from pathlib import Path

import tvm
from tvm import relax

from tvm_patch.frontend import load_model
from tvm_patch.lower import lower_to_program


def relax_static_plan_bytes(model: str | Path) -> int:
    """Relax's StaticPlanBlockMemory on our kernels: the storage tokens it allocates, plus the
    model input, which it leaves to the caller (our arena holds it)."""
    imported = load_model(model)
    program = lower_to_program(imported.mod)
    mod = tvm.transform.Sequential(
        [
            relax.transform.ToNonDataflow(),
            relax.transform.RemovePurityChecking(),
            relax.transform.CallTIRRewrite(),
            relax.transform.StaticPlanBlockMemory(),
        ]
    )(program.lowered)
    tokens = re.findall(r"R\.memory\.alloc_storage\(R\.shape\(\[(\d+)\]\)", mod["main"].script())
    return sum(int(t) for t in tokens) + sum(s.nbytes for s in imported.inputs)
