"""InplaceDepthwise: a depthwise kernel that may write its output over its input.

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

_REDUCE = 2  # IterVar.CommReduce


class NotInplaceable(ValueError):
    """The kernel does not have the shape this schedule rewrites."""


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
