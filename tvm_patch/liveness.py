"""Tensor lifetimes over the call sequence: the arena planner's input.

Step i is kernel call i. A model input is live from step 0 to its last use; an
intermediate from the call that writes it to the last call that reads it; a model output
from its producer to the last step (the caller reads it after the run); kernel i's
workspace only at step i. Weights are constant and live in flash, not in the arena.
"""

from __future__ import annotations

from .lower import Program
from .targets.arena import Buffer


def program_buffers(program: Program, workspace: dict[int, int]) -> list[Buffer]:
    last_step = max(len(program.calls) - 1, 0)
    first: dict[str, int] = {t: 0 for t in program.inputs}
    last: dict[str, int] = {t: 0 for t in program.inputs}
    for i, call in enumerate(program.calls):
        for t in call.outputs:
            first.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
        for t in call.inputs:
            if program.tensors[t].kind != "weight":
                last[t] = max(last.get(t, i), i)
    for t in program.outputs:
        last[t] = last_step
    buffers = [
        Buffer(name, program.tensors[name].nbytes, first[name], last[name]) for name in first
    ]
    buffers += [Buffer(f"ws{i}", n, i, i) for i, n in sorted(workspace.items()) if n > 0]
    return buffers
