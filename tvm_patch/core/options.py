"""One frozen set of options, handed whole to the importer, the planner, the emitter and the
tuner; free strings with allowed values are enums."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from .errors import ModelLoadError, TvmPatchError

_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "k": 1024, "mb": 1000**2, "mib": 1024**2, "m": 1024**2}

Layout = Literal["NCHW", "NHWC"]


class Schedule(StrEnum):
    LAYER = "layer"  # one kernel per layer
    PATCH = "patch"  # the memory-heavy early layers as one patch-tiled kernel (MCUNetV2)


class KernelBackend(StrEnum):
    AUTO = "auto"  # the measured default: llvm on Cortex-M, c on the host
    C = "c"  # TVM's C backend, compiled by gcc / arm-none-eabi-gcc
    LLVM = "llvm"  # TVM's LLVM backend, an object for the board


class KernelCalls(StrEnum):
    DIRECT = "direct"  # kernels take typed data pointers; arguments checked once, at compile time
    PACKED = "packed"  # TVM's packed API: DLTensors in TVMFFIAny, every argument checked per call (debug)


@dataclass(frozen=True)
class PatchOptions:
    grid: tuple[int, int] | None = None  # nh x nw; None: the planner chooses
    split: int | None = None  # layers in the patch stage; None: the planner chooses
    stream_input: bool = False  # the stage reads the input window by window: no arena bytes for it
    max_extra_macs: float | None = None  # the most MACs a plan may add, a fraction of the model's

    def __post_init__(self) -> None:
        if self.max_extra_macs is not None and not 0 <= self.max_extra_macs <= 10:
            raise TvmPatchError(
                f"--max-extra-macs {100 * self.max_extra_macs:g}%: give a percentage from 0 to 1000 of the model's MACs"
            )


@dataclass(frozen=True)
class CompileOptions:
    target: str = "cortex-m4"  # host | cortex-m4 | cortex-m7 | cortex-m33 | board name | TVM JSON target
    kernels: KernelBackend = KernelBackend.AUTO
    kernel_calls: KernelCalls = KernelCalls.DIRECT
    schedule: Schedule = Schedule.LAYER
    patch: PatchOptions = field(default_factory=PatchOptions)
    sram_cap: int | None = None  # bytes, the whole arena
    inplace: bool = True  # depthwise and residual outputs over their input (TinyEngine's trick)
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    desired_layout: Layout | None = None  # None keeps the model's
    allow_nonfinite_weights: bool = False  # compile weights holding NaN/Inf instead of refusing
    plot: bool = False  # also write OUT/profile.png (bytes live per layer)
    tuning_records: str | None = None  # `tvmc tune -o` output: its schedules replace InlineKernels'
    dsp_kernels: bool = True  # int8 convs as the SMLAD micro-kernels (passes/int8_dsp.py)

    def __post_init__(self) -> None:
        for name, kind in (("kernels", KernelBackend), ("kernel_calls", KernelCalls), ("schedule", Schedule)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(k.value for k in kind)
                raise TvmPatchError(f"--{name.replace('_', '-')} {value!r}: choose {choices}") from None
        if self.desired_layout not in (None, "NCHW", "NHWC"):
            raise ModelLoadError(f"--desired-layout {self.desired_layout!r}: choose NCHW or NHWC")
        if self.sram_cap is not None and self.sram_cap <= 0:
            raise TvmPatchError(f"--sram-cap {self.sram_cap}: give a positive size")
        if self.patch.stream_input and self.schedule is not Schedule.PATCH:
            raise TvmPatchError("--stream-input: only a patch stage reads the input window by window; add --pass patch")


def parse_bytes(text: str | int) -> int:
    """`256KiB`, `1.5MiB`, `65536` -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise TvmPatchError(f"cannot read {text!r} as a size: use bytes, KiB or MiB (e.g. 256KiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """`auto` -> None, `4` -> (4, 4), `3x2` -> (3, 2)."""
    if text is None or text == "auto":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < 1):
        raise TvmPatchError(f"--patches {text!r}: use auto, N or NxM (e.g. 4 or 3x2)")
    n = int(m.group(1))
    return n, int(m.group(2) or n)


def parse_percent(text: str | None) -> float | None:
    """`5`, `5%` or `2.5%` -> 0.05 / 0.025 (a fraction); None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*", text)
    if not m:
        raise TvmPatchError(f"--max-extra-macs {text!r}: give a percentage of the model's MACs, e.g. 5 or 2.5%")
    return float(m.group(1)) / 100


def parse_split(text: str | None) -> int | None:
    """`auto` -> None, `K` -> K (K >= 1; the planner checks it against the model)."""
    if text is None or text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise TvmPatchError(f"--split {text!r}: use auto or a positive number")
    return int(text)


def parse_input_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """`name:[1,3,224,224] other:[1,10]` (tvmc's syntax) -> {name: shape}. Names may contain
    colons (TensorFlow's `serving_default_input:0`)."""
    if not text:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for m in re.finditer(r"([^\s:\[\]]+(?::[^\s:\[\]]+)*):\[([^\]]*)\]", text):
        dims = []
        for d in m.group(2).split(","):
            if not re.fullmatch(r"\s*-?[0-9]+\s*", d):
                raise ModelLoadError(
                    f"--input-shapes {text!r}: dimension {d.strip()!r} of {m.group(1)!r} is not an integer"
                )
            dims.append(int(d))
        bad = [d for d in dims if d <= 0]
        if bad:
            raise ModelLoadError(
                f"--input-shapes: {m.group(1)!r} has dimension {bad[0]}; every dimension must be at least 1"
            )
        shapes[m.group(1)] = tuple(dims)
    if not shapes:
        raise ModelLoadError(f"--input-shapes {text!r}: expected name:[d0,d1,...] (e.g. input:[1,3,224,224])")
    return shapes
