"""InplaceKernels: kernels that may write their output over an input (tvm_patch_core's
inplace_rules decides which).

Depthwise kernels are rescheduled (below); a residual-add kernel is unchanged but for
`tirx.noalias`, dropped, as for every in-place kernel: that attribute is how the flow reads
back which kernels the rewrite really changed.

Depthwise:
TinyEngine's trick (MCUNetV2 counts memory with it; TFLite Micro does not): a depthwise
convolution reads only channel c to produce channel c. So the kernel runs channel by
channel, computes the whole output channel into a one-channel temporary, and only then
writes it into the output tensor, whose channel-c slots (NHWC) or plane (NCHW, ascending)
no later channel reads. Input and output can then share one arena slot.

Schedule, on a kernel already through InlineKernels (conv with its epilogue under the
conv's innermost spatial loop):
1. move the channel loop outermost (`reorder`);
2. `cache_write` the epilogue's output and `reverse_compute_at` the copy-back under the
   channel loop, so the temporary shrinks to one channel (H_out x W_out);
3. drop `tirx.noalias`: input and output pointers will be equal.
"""

from __future__ import annotations

import tvm
from tvm import tirx
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import ScheduleError

from tvm_patch_core.errors import NotInplaceable

from .inline_kernels import map_prim_funcs

_REDUCE = 2  # IterVar.CommReduce


def inplace_depthwise(func: tirx.PrimFunc, layout: str) -> tirx.PrimFunc:
    sch = Schedule(tvm.IRModule({"main": func}))
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    anchors = [b for b in blocks if any(iv.iter_type == _REDUCE for iv in sch.get(b).iter_vars)]
    if len(anchors) != 1:
        raise NotInplaceable(f"expected one conv loop nest, found {len(blocks)} blocks / {len(anchors)} reductions")
    conv = anchors[0]
    loops = sch.get_loops(conv)
    c_pos = 3 if layout == "NHWC" else 1
    spatial = loops[:4]
    order = [spatial[c_pos]] + [lp for i, lp in enumerate(spatial) if i != c_pos]
    try:
        sch.reorder(*order)
        out_block = sch.get_output_blocks(sch.get_sblock("root"))
        if len(out_block) != 1:
            raise NotInplaceable(f"expected one output block, found {len(out_block)}")
        writer = out_block[0]
        copy = sch.cache_write(writer, 0, "global")
        # cache_write makes `writer` write the temporary and a new block copy it out; the
        # new block is what now writes the output.
        out_block = sch.get_output_blocks(sch.get_sblock("root"))[0]
        sch.reverse_compute_at(out_block, sch.get_loops(conv)[0])
        del copy
    except ScheduleError as err:
        raise NotInplaceable(str(err).splitlines()[0]) from None
    return sch.mod["main"].with_attr("tirx.noalias", False)


@tvm.transform.module_pass(opt_level=0, name="InplaceKernels")
class InplaceKernels:
    """Reschedule `depthwise` kernels (name -> layout) channel by channel and let `residual`
    kernels alias; a depthwise kernel the schedule does not fit is left as it was."""

    def __init__(self, depthwise: dict[str, str] | None = None, residual: tuple[str, ...] = ()) -> None:
        self.depthwise = dict(depthwise or {})
        self.residual = tuple(residual)

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        def rewrite(gv: tvm.ir.GlobalVar, func: tirx.PrimFunc) -> tirx.PrimFunc:
            if gv.name_hint in self.depthwise:
                try:
                    return inplace_depthwise(func, self.depthwise[gv.name_hint])
                except NotInplaceable:
                    return func
            if gv.name_hint in self.residual:
                return func.with_attr("tirx.noalias", False)
            return func

        return map_prim_funcs(mod, rewrite)


def aliasing_kernels(mod: tvm.IRModule) -> set[str]:
    """The kernels built to run in place (`tirx.noalias` false)."""
    return {
        gv.name_hint
        for gv, f in mod.functions.items()
        if isinstance(f, tirx.PrimFunc) and f.attrs is not None and not bool(f.attrs.get("tirx.noalias", True))
    }
