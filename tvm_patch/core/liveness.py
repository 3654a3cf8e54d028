"""Tensor lifetimes over the call sequence: the arena planner's input.

The program runs as steps: step i is call i. A patch stage is one call (its patch windows live
in the stage kernel's scratch pool, which is that step's workspace).

A model input is live from step 0 to its last use; an intermediate from the step that writes
it to the last step that reads it; a model output from its producer to the last step (the
caller reads it after the run); a step's workspace only at that step. Weights are constant
and live in flash, not in the arena. An in-place output is planned at its input's offset.

A kernel's workspace is what TVM's lowering (LowerTVMBuiltin) sends to
`TVMBackendAllocWorkspace`: every allocation of STACK_LIMIT bytes or more, each rounded up to
the granule; a smaller one stays on the C stack and takes no arena bytes (`workspace_bytes`;
measured on apache-tvm 0.27: 1,020 B on the stack, 1,024 B in the workspace).
"""

from __future__ import annotations

from collections.abc import Mapping

from .arena import ALIGNMENT, ArenaPlan, Buffer, plan_arena
from .graph import Graph, TensorKind, Workspace

STACK_LIMIT = 1024  # bytes: TVM's kMaxStackAlloca; smaller allocations live on the stack


def aligned(nbytes: int) -> int:
    """`nbytes` rounded up to the arena's (and the runtime workspace's) granule."""
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


def workspace_bytes(*allocations: int) -> int:
    """Arena bytes of a kernel's workspace whose allocations have these sizes (module docstring)."""
    return sum(aligned(n) for n in allocations if n >= STACK_LIMIT)


def step_reads_writes(graph: Graph) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per step, the arena tensors it reads and writes."""
    return [(graph.activations(c), c.outputs) for c in graph.calls]


_NOT_IN_ARENA = (TensorKind.WEIGHT, TensorKind.STREAMED)  # flash; read window by window


def buffers(graph: Graph, workspace: Mapping[int, int], exclude_inputs: bool = False) -> list[Buffer]:
    """One Buffer per arena tensor (id keys) and per step with a workspace (Workspace keys)."""
    steps = step_reads_writes(graph)
    last_step = max(len(steps) - 1, 0)
    first: dict[str, int] = {t: 0 for t in graph.inputs}
    last: dict[str, int] = {t: 0 for t in graph.inputs}
    for i, (reads, writes) in enumerate(steps):
        for b in (*writes, *reads):
            first.setdefault(b, i)
            last[b] = max(last.get(b, i), i)
    for t in graph.outputs:
        last[t] = last_step
    out = [
        Buffer(name, graph.tensors[name].nbytes, first[name], last[name], graph.inplace.get(name))
        for name in first
        if graph.tensors[name].kind not in _NOT_IN_ARENA and not (exclude_inputs and name in graph.inputs)
    ]
    out += [Buffer(Workspace(i), n, i, i) for i, n in sorted(workspace.items()) if n > 0]
    return out


def plan(graph: Graph, workspace: Mapping[int, int], exclude_inputs: bool = False) -> ArenaPlan:
    """The arena for this graph (the same buffers the emitter places)."""
    return plan_arena(buffers(graph, workspace, exclude_inputs))


def step_workspaces(graph: Graph, kernel_workspace: Mapping[str, int]) -> dict[int, int]:
    """Workspace bytes per step: what the kernel that runs at that step may request."""
    return {i: kernel_workspace.get(c.kernel, 0) for i, c in enumerate(graph.calls)}


def temp_workspaces(graph: Graph) -> dict[int, int]:
    """Per step, the workspace the one-channel temporary of an in-place depthwise kernel takes
    (none when it fits on the stack): the planner's prediction before codegen."""
    temps = {
        i: workspace_bytes(graph.temps[o]) for i, c in enumerate(graph.calls) for o in c.outputs if o in graph.temps
    }
    return {i: n for i, n in temps.items() if n}


def live_bytes(graph: Graph, workspace: Mapping[int, int]) -> list[int]:
    """Bytes of all arena buffers live at each step."""
    bufs = buffers(graph, workspace)
    steps = max((b.last for b in bufs), default=-1) + 1
    return [sum(b.size for b in bufs if b.first <= i <= b.last) for i in range(steps)]
