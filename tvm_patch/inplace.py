"""Choose the layers that write their output over an input, as TinyEngine does.

1. Depthwise conv: reads one activation whose last reader it is (nothing later needs it),
   as many output as input channels, output no larger than input. Its kernel is rescheduled
   by passes/inplace_depthwise.py (channel by channel through a one-channel temporary).
2. Residual add fused after a conv: the output overwrites the skip input when that is the
   skip's last reader and both have the same shape and dtype. Output element i depends on
   skip element i only, read before it is written, so the kernel is unchanged (only
   `tirx.noalias` is dropped).
The arena planner puts such an output at its input's offset (Buffer.inplace_of).
"""

from __future__ import annotations

from dataclasses import replace

import tvm

from .layers import Layer
from .lower import Program
from .passes.fuse_stage import STAGE_FUNC
from .passes.inplace_depthwise import NotInplaceable, inplace_depthwise


def _is_depthwise(layer: Layer) -> bool:
    if layer.op != "nn.conv2d" or len(layer.input_shapes) != 1 or len(layer.output_shape) != 4:
        return False
    c_axis = 1 if layer.layout == "NCHW" else 3
    cin, cout = layer.input_shapes[0][c_axis], layer.output_shape[c_axis]
    return layer.groups == cin == cout and cin > 1


def apply_inplace_depthwise(program: Program, layers: list[Layer], dry_run: bool = False) -> Program:
    """Mark (and, unless dry_run, reschedule) the depthwise layers that can run in place."""
    offset = 0 if program.stage is None else len(program.stage.plan.stage) - 1
    last_read: dict[str, int] = {}
    for i, call in enumerate(program.calls):
        for t in call.inputs:
            last_read[t] = i
    kernels = dict(program.kernels.functions.items())
    by_name = {gv.name_hint: gv for gv in kernels}
    inplace: dict[str, str] = {}
    temp: dict[str, int] = {}
    users: dict[str, int] = {}
    for call in program.calls:
        users[call.kernel] = users.get(call.kernel, 0) + 1
    for i, call in enumerate(program.calls):
        if call.kernel == STAGE_FUNC or len(call.outputs) != 1 or users[call.kernel] != 1:
            continue
        layer = layers[i + offset]
        acts = [t for t in call.inputs if program.tensors[t].kind != "weight"]
        dst = call.outputs[0]
        gv = by_name[call.kernel]

        def free(src: str, step: int = i) -> bool:
            return last_read[src] == step and src not in program.outputs and src not in inplace.values()

        if _is_depthwise(layer) and len(acts) == 1 and free(acts[0]):
            if program.tensors[dst].nbytes > program.tensors[acts[0]].nbytes:
                continue
            if not dry_run:
                try:
                    kernels[gv] = inplace_depthwise(kernels[gv], layer.layout)
                except NotInplaceable:
                    continue
            inplace[dst] = acts[0]
            c_axis = 1 if layer.layout == "NCHW" else 3
            temp[dst] = program.tensors[dst].nbytes // program.tensors[dst].shape[c_axis]
        elif layer.op == "nn.conv2d" and len(acts) == 2 and acts[0] != acts[1] and free(acts[1]):
            skip, out = program.tensors[acts[1]], program.tensors[dst]
            if (skip.shape, skip.dtype) != (out.shape, out.dtype):
                continue
            if not dry_run:
                kernels[gv] = kernels[gv].with_attr("tirx.noalias", False)
            inplace[dst] = acts[1]
    return replace(program, kernels=tvm.IRModule(kernels), inplace=inplace, inplace_temp=temp)


def channel_temp_bytes(program: Program) -> dict[int, int]:
    """Per step, the one-channel temporary an in-place depthwise kernel takes as workspace
    (H_out x W_out elements, in 16-byte granules): the planner's estimate before codegen."""
    from .liveness import program_steps

    temps: dict[int, int] = {}
    for i, step in enumerate(program_steps(program)):
        for out in step.writes:
            if out in program.inplace_temp:
                temps[i] = -(-program.inplace_temp[out] // 16) * 16
    return temps
