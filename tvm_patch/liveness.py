"""Tensor lifetimes over the call sequence: the arena planner's input.

The program runs as steps. Step i is kernel call i, except that a patch stage of K layers
takes K steps: step k is layer k of *one* patch, and every patch repeats the same pattern,
so one set of scratch offsets serves them all. The stage's full inputs and its full output
are live over all K steps (later patches still read the input; earlier patches' output
windows must survive).

A model input is live from step 0 to its last use; an intermediate from the step that writes
it to the last step that reads it; a model output from its producer to the last step (the
caller reads it after the run); a step's workspace only at that step. Weights are constant
and live in flash, not in the arena.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lower import Program
from .patch_stage import STAGE_KERNEL
from .targets.arena import Buffer


@dataclass(frozen=True)
class Step:
    reads: tuple[str, ...]  # arena buffers (tensor names or scratch storage names)
    writes: tuple[str, ...]
    kernels: tuple[str, ...]  # the kernels that may run at this step (several: one per patch)


def program_steps(program: Program) -> list[Step]:
    def buf(name: str) -> str | None:
        t = program.tensors[name]
        if t.kind == "weight":
            return None
        return t.storage or name

    steps: list[Step] = []
    stage = program.stage
    for call in program.calls:
        if stage is not None and call.kernel == STAGE_KERNEL:
            for k in range(len(stage.plan.stage)):
                calls = [patch[k] for patch in stage.patches]
                reads = {buf(a) for c in calls for a in c.inputs} | set(stage.input_names)
                writes = {buf(o) for c in calls for o in c.outputs} | {stage.output}
                reads.discard(None)
                steps.append(Step(tuple(sorted(reads)), tuple(sorted(writes)), tuple(sorted({c.kernel for c in calls}))))
            continue
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
    sizes = {n: t.nbytes for n, t in program.tensors.items() if t.kind not in ("weight", "scratch")}
    if program.stage is not None:
        sizes.update(program.stage.scratch)
    return sizes


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
