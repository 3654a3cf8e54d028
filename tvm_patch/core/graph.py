"""The program as data: its tensors and its call sequence, what the planners and the emitter
read. The TVM side (tvm_patch/lower.py) holds this beside the kernels' IRModule.

A tensor's `name` is an id by kind and index (inputs in0.., activations t0.., weights w0..),
never a model string: it is safe as a C identifier. `label` is the name people see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_DTYPE = re.compile(r"(?:u?int|float|bfloat)(\d+)")


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a scalar dtype (`bool` is stored as one byte)."""
    if dtype == "bool":
        return 1
    m = _DTYPE.fullmatch(dtype)
    if not m or int(m.group(1)) % 8:
        raise ValueError(f"dtype {dtype!r} has no whole-byte storage")
    return int(m.group(1)) // 8


def shape_bytes(shape: tuple[int, ...] | list[int], dtype: str) -> int:
    """Bytes of a dense tensor of this shape and dtype."""
    n = 1
    for d in shape:
        n *= int(d)
    return n * dtype_bytes(dtype)


class TensorKind(StrEnum):
    INPUT = "input"  # a model input (the caller writes it before the run)
    ACTIVATION = "activation"  # written by a kernel; model outputs are activations
    WEIGHT = "weight"  # constant, stays in flash
    STREAMED = "streamed"  # a model input the patch stage reads window by window: never in the arena


@dataclass(frozen=True)
class Tensor:
    name: str  # id: in0, t3, w2
    shape: tuple[int, ...]
    dtype: str
    kind: TensorKind
    label: str = ""
    data: Any = field(default=None, compare=False, repr=False)  # weights: the numpy array

    @property
    def nbytes(self) -> int:
        return shape_bytes(self.shape, self.dtype)


@dataclass(frozen=True)
class Call:
    kernel: str  # the kernel's global symbol
    inputs: tuple[str, ...]  # tensor ids, in argument order
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Workspace:
    """The scratch region of the kernel at `step` (an arena buffer, not a tensor)."""

    step: int

    def __str__(self) -> str:
        return f"ws{self.step}"


@dataclass(frozen=True)
class Graph:
    tensors: Mapping[str, Tensor]
    calls: tuple[Call, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    inplace: Mapping[str, str] = field(default_factory=dict)  # output id -> the input it overwrites
    temps: Mapping[str, int] = field(default_factory=dict)  # in-place output -> its one-channel temp bytes
    stream_layout: str = ""  # "NHWC" or "NCHW": how the STREAMED input's windows are packed

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def activations(self, call: Call) -> tuple[str, ...]:
        """The call's inputs that live in the arena (weights excluded)."""
        return tuple(t for t in call.inputs if self.tensors[t].kind is not TensorKind.WEIGHT)
