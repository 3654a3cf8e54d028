"""InlineKernels: schedule every fused PrimFunc so its intermediates vanish.

A fused kernel straight out of FuseTIR computes each stage (dequantize, pad, conv, bias,
quantize, clip) into a full-size temporary; lowered as is, each temporary becomes a
TVMBackendAllocWorkspace call as large as a feature map. The rule here:

1. Inline every non-reduction block that can be inlined into its consumers
   (`compute_inline`: dequantize and pad into the conv, bias into quantize, ...), repeating
   until nothing changes; blocks that only can be inlined into their producer are
   `reverse_compute_inline`d.
2. Move each remaining non-reduction consumer of a reduction block under the reduction's
   innermost spatial loop (`reverse_compute_at`), so the accumulator shrinks to one element
   and stays on the stack. A max/min reduction over a 1x1 window keeps its unit loops (see
   `_keep_unit_reduction_loops`: TVM's C codegen would otherwise read a stale accumulator).

What is left allocates through the runtime's workspace region, whose size the emitter reads
back from the generated code.
"""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import tirx
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import SBlockRV, ScheduleError

_REDUCE = 2  # IterVar.CommReduce


def _is_reduction(sch: Schedule, block: SBlockRV) -> bool:
    return any(iv.iter_type == _REDUCE for iv in sch.get(block).iter_vars)


def _spatial_depth(sch: Schedule, block: SBlockRV) -> int:
    n = 0
    for iv in sch.get(block).iter_vars:
        if iv.iter_type == _REDUCE:
            break
        n += 1
    return n


def _keep_unit_reduction_loops(sch: Schedule, block: SBlockRV, depth: int) -> None:
    """Annotate a max/min reduction's loops when every one has extent 1, so they survive
    lowering as a C scope of their own.

    Without them the update (`acc = max(acc, x)`) and the consumer moved under the reduction
    (`max(acc, 0)`, a fused ReLU) share one C scope, and TVM's CodeGenC, which names each
    max/min operand once per scope (`float v_ = acc[0];`), reuses the value read before the
    update: a 1x1 MaxPool + ReLU gave ReLU(-FLT_MAX) = 0 everywhere (fuzzer seed 7). The
    annotation is what keeps LowerOpaqueBlock from dropping a unit loop."""
    loops = sch.get_loops(block)[depth:]
    body = sch.get(block).body
    if not (isinstance(body, tirx.BufferStore) and isinstance(body.value, (tirx.Max, tirx.Min))):
        return
    if loops and all(int(sch.get(loop).extent) == 1 for loop in loops):
        for loop in loops:
            sch.annotate(loop, "tvmp.keep_scope", 1)


def schedule_kernel(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")

    def blocks():
        return sch.get_child_blocks(root)

    changed = True
    while changed:
        changed = False
        for block in blocks():
            if _is_reduction(sch, block):
                continue
            for inline in (sch.compute_inline, sch.reverse_compute_inline):
                try:
                    inline(block)
                except ScheduleError:
                    continue
                changed = True
                break
            if changed:
                break
    for block in blocks():
        if _is_reduction(sch, block):
            continue
        producers = [p for p in sch.get_producers(block) if _is_reduction(sch, p)]
        if len(producers) != 1:
            continue
        anchor = producers[0]
        depth = _spatial_depth(sch, anchor)
        if depth == 0:
            continue
        try:
            sch.reverse_compute_at(block, sch.get_loops(anchor)[depth - 1])
        except ScheduleError:
            continue
        _keep_unit_reduction_loops(sch, anchor, depth)
    return sch.mod["main"]


def map_prim_funcs(mod: tvm.IRModule, fn: Callable[[tvm.ir.GlobalVar, tirx.PrimFunc], tirx.PrimFunc]) -> tvm.IRModule:
    """A new module: `mod` with every PrimFunc replaced by fn(gv, func); `mod` is unchanged."""
    funcs = {gv: fn(gv, f) if isinstance(f, tirx.PrimFunc) else f for gv, f in mod.functions.items()}
    return tvm.IRModule(funcs, attrs=mod.attrs, global_infos=mod.global_infos)


@tvm.transform.module_pass(opt_level=0, name="InlineKernels")
class InlineKernels:
    """Apply `schedule_kernel` to every PrimFunc in the module."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return map_prim_funcs(mod, lambda _gv, func: schedule_kernel(func))
