"""Tensor lifetimes over the call sequence: the arena planner's input.

The program runs as steps: step i is kernel call i. A patch stage is one call (its patch
windows live in the stage kernel's scratch pool, which is that step's workspace).

A model input is live from step 0 to its last use; an intermediate from the step that writes
it to the last step that reads it; a model output from its producer to the last step (the
caller reads it after the run); a step's workspace only at that step. Weights are constant
and live in flash, not in the arena.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lower import Program
from .targets.arena import Buffer


@dataclass(frozen=True)
class Step:
    reads: tuple[str, ...]  # arena buffers (tensor names)
    writes: tuple[str, ...]
    kernels: tuple[str, ...]  # the kernel this step runs


def program_steps(program: Program) -> list[Step]:
    def buf(name: str) -> str | None:
        return None if program.tensors[name].kind == "weight" else name

    steps: list[Step] = []
    for call in program.calls:
        reads = tuple(b for b in (buf(a) for a in call.inputs) if b)
        steps.append(Step(reads, tuple(b for b in (buf(o) for o in call.outputs) if b), (call.kernel,)))
    return steps


def step_workspaces(program: Program, kernel_workspace: dict[str, int]) -> dict[int, int]:
    """Workspace bytes per step: the most any kernel that runs at that step may request."""
    return {
        i: max((kernel_workspace.get(k, 0) for k in s.kernels), default=0)
        for i, s in enumerate(program_steps(program))
    }


def buffer_bytes(program: Program) -> dict[str, int]:
    return {n: t.nbytes for n, t in program.tensors.items() if t.kind != "weight"}


def program_buffers(program: Program, workspace: dict[int, int]) -> list[Buffer]:
    steps = program_steps(program)
    last_step = max(len(steps) - 1, 0)
    first: dict[str, int] = {t: 0 for t in program.inputs}
    last: dict[str, int] = {t: 0 for t in program.inputs}
    for i, step in enumerate(steps):
        for b in step.writes:
            first.setdefault(b, i)
            last[b] = max(last.get(b, i), i)
        for b in step.reads:
            first.setdefault(b, i)
            last[b] = max(last.get(b, i), i)
    for t in program.outputs:
        last[t] = last_step
    sizes = buffer_bytes(program)
    buffers = [Buffer(name, sizes[name], first[name], last[name], program.inplace.get(name)) for name in first]
    buffers += [Buffer(f"ws{i}", n, i, i) for i, n in sorted(workspace.items()) if n > 0]
    return buffers
