"""One frozen set of options, handed to the importer, the lowering, the emitter and the tuner."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import TvmPatchError

_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "k": 1024, "mb": 1000**2, "mib": 1024**2, "m": 1024**2}


def parse_bytes(text: str | int) -> int:
    """`256KiB`, `1.5MiB`, `65536` -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise TvmPatchError(f"cannot read {text!r} as a size: use bytes, KiB or MiB (e.g. 256KiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class CompileOptions:
    target: str = "cortex-m4"  # host | cortex-m4 | cortex-m7 | cortex-m33 | board name | TVM JSON target
    kernels: str = "auto"  # TVM codegen for the kernels: "c", "llvm", or "auto" (the measured default)
    schedule: str = "layer"  # "layer" (one kernel per layer) | "patch" (the patch pass)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    desired_layout: str | None = None  # "NHWC" | "NCHW" | None (keep the model's)
    sram_cap: int | None = None  # bytes
    patches: tuple[int, int] | None = None  # grid nh x nw; None: the planner chooses
    split: int | None = None  # layers in the patch stage; None: the planner chooses
    exclude_input: bool = False  # plan the patch stage (and the cap) without the model input
    inplace_depthwise: bool = True  # depthwise layers write over their input (TinyEngine's trick)
    plot: bool = False  # also write OUT/profile.png (bytes live per layer)
    opt_level: str = "-O2"
    tuning_records: str | None = None  # `tvmc tune -o` output: its schedules replace InlineKernels'
    allow_nonfinite_weights: bool = False  # compile weights holding NaN/Inf instead of refusing


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """`auto` -> None, `4` -> (4, 4), `3x2` -> (3, 2)."""
    if text is None or text == "auto":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < 1):
        raise TvmPatchError(f"--patches {text!r}: use auto, N or NxM (e.g. 4 or 3x2)")
    n = int(m.group(1))
    return n, int(m.group(2) or n)
