"""Which layers write their output over an input, as TinyEngine does (the decision; the kernel
rewrite is passes/inplace_kernels.py).

1. Depthwise conv: reads one activation whose last reader it is (nothing later needs it, it
   is no model output), as many output as input channels, output no larger than input. Its
   kernel then runs channel by channel through a one-channel temporary.
2. Residual add fused after a conv: the output overwrites the skip input (the activation
   that is not the conv's data, Layer.data_input; the add may take it first or second) when
   that is the skip's last reader and both have the same shape and dtype. Output element i depends on
   skip element i only, read before it is written, so the kernel is unchanged (only
   `tirx.noalias` is dropped).
A kernel called more than once, or writing several outputs, stays as it is; so does the
patch stage. The arena planner puts such an output at its input's offset (Buffer.inplace_of).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from .graph import Graph
from .layers import Layer
from .stage import STAGE_KERNEL


@dataclass(frozen=True)
class InplaceChoice:
    depthwise: dict[str, str] = field(default_factory=dict)  # kernel -> layout, rescheduled per channel
    residual: tuple[str, ...] = ()  # kernels whose output overwrites the skip input
    inplace: dict[str, str] = field(default_factory=dict)  # output id -> the input id it overwrites
    temps: dict[str, int] = field(default_factory=dict)  # depthwise output id -> one-channel temp bytes


def choose_inplace(graph: Graph, layers: list[Layer], stage_layers: int = 0) -> InplaceChoice:
    """The in-place decision for `graph`, whose call i is layer i + stage_layers - 1 when the
    first call is a patch stage of `stage_layers` layers (call i is layer i otherwise)."""
    offset = stage_layers - 1 if stage_layers else 0
    last_read: dict[str, int] = {}
    for i, call in enumerate(graph.calls):
        for t in call.inputs:
            last_read[t] = i
    users = Counter(c.kernel for c in graph.calls)
    depthwise: dict[str, str] = {}
    residual: list[str] = []
    inplace: dict[str, str] = {}
    temps: dict[str, int] = {}
    for i, call in enumerate(graph.calls):
        if call.kernel == STAGE_KERNEL or len(call.outputs) != 1 or users[call.kernel] != 1:
            continue
        layer = layers[i + offset]
        acts = graph.activations(call)
        dst = graph.tensors[call.outputs[0]]

        def free(src: str, step: int = i) -> bool:
            return last_read[src] == step and src not in graph.outputs and src not in inplace.values()

        if layer.is_depthwise and len(acts) == 1 and free(acts[0]):
            if dst.nbytes > graph.tensors[acts[0]].nbytes:
                continue
            depthwise[call.kernel] = layer.layout
            inplace[dst.name] = acts[0]
            temps[dst.name] = dst.nbytes // dst.shape[layer.channel_axis]
        elif layer.op == "nn.conv2d" and len(acts) == 2 and acts[0] != acts[1] and layer.data_input in layer.inputs:
            skip_id = acts[1 - layer.inputs.index(layer.data_input)]  # the add's other operand
            if not free(skip_id):
                continue
            skip = graph.tensors[skip_id]
            if (skip.shape, skip.dtype) != (dst.shape, dst.dtype):
                continue
            residual.append(call.kernel)
            inplace[dst.name] = skip_id
    return InplaceChoice(depthwise, tuple(residual), inplace, temps)


def with_inplace(graph: Graph, choice: InplaceChoice, kept: set[str] | None = None) -> Graph:
    """`graph` with the choice's in-place pairs (only those of kernels in `kept`, when given:
    the kernels the rewrite really changed)."""
    if kept is not None:
        out_of = {c.outputs[0]: c.kernel for c in graph.calls if c.outputs}
        inplace = {o: s for o, s in choice.inplace.items() if out_of.get(o) in kept}
    else:
        inplace = dict(choice.inplace)
    temps = {o: b for o, b in choice.temps.items() if o in inplace}
    return replace(graph, inplace=inplace, temps=temps)
