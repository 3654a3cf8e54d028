"""The layer graph: one record per kernel, with the numbers the planners and reports need.

A layer is one kernel of the grouped model (passes/group_kernels.py): its anchor op (conv2d,
matmul, pooling, ...) with the elementwise ops fused around it, reading and writing tensors
that live in the arena. tvm_patch/layer_graph.py reads them off the Relax module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Layer:
    index: int
    name: str  # the tensor it writes
    inputs: tuple[str, ...]  # the activation tensors it reads (model inputs or earlier layers' names)
    op: str  # anchor op without the "relax." prefix, e.g. "nn.conv2d"
    input_shapes: tuple[tuple[int, ...], ...]  # activation inputs (weights excluded)
    output_shape: tuple[int, ...]
    dtype: str  # stored output dtype
    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    layout: str = ""
    macs: int = 0
    activation_bytes: int = 0  # bytes of activation inputs + output
    data_input: str = ""  # the one of `inputs` the anchor op reads as its data ("" if none)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def channel_axis(self) -> int:
        return 1 if self.layout == "NCHW" else 3

    @property
    def is_depthwise(self) -> bool:
        """A conv2d whose every output channel reads one input channel (and more than one)."""
        if self.op != "nn.conv2d" or len(self.input_shapes) != 1 or len(self.output_shape) != 4:
            return False
        cin, cout = self.input_shapes[0][self.channel_axis], self.output_shape[self.channel_axis]
        return self.groups == cin == cout and cin > 1
