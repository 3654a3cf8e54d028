"""report.json and the run report as typed data, serialised to JSON only at the edge.

`to_json` writes every field (optional ones only when set); `CompileReport.load` reads a
report back and checks every field's type and the tensor sizes, so `tvmc run` fails with one
DamagedOutput line on a tampered report, never with a KeyError or a wrong read. The field
types are the schema (`schema()` lists them; a test pins it).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DamagedOutput
from .graph import dtype_bytes
from .layers import Layer

DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float16", "float32", "float64"})


@dataclass(frozen=True)
class TensorReport:
    name: str  # the model's own name (npz keys for `tvmc run --inputs/--outputs`)
    tensor: str  # the program's id for it
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    arena_offset: int | None  # None: a streamed input, read window by window, not in the arena

    def __post_init__(self) -> None:
        if not all(isinstance(d, int) and d > 0 for d in self.shape):
            raise DamagedOutput(f"shape {list(self.shape)} is not a list of positive integers")
        if self.dtype not in DTYPES:
            raise DamagedOutput(f"dtype {self.dtype!r} is not one of {', '.join(sorted(DTYPES))}")
        n = dtype_bytes(self.dtype)
        for d in self.shape:
            n *= d
        if self.bytes != n:
            raise DamagedOutput(f"{self.bytes} bytes do not match {self.dtype}{list(self.shape)} ({n} B)")


@dataclass(frozen=True)
class StageLayerReport:
    layer: str
    op: str
    input_window_max: tuple[int, int]
    output_window_max: tuple[int, int]
    halo_rows_max: int
    macs: int
    patched_macs: int
    scratch_bytes: int


@dataclass(frozen=True)
class FrontPointReport:
    """One plan of the planner's Pareto front: no other plan has both fewer extra MACs and a
    smaller arena. The arena is the one that plan builds (no input in it under --stream-input)."""

    split: int  # layers in the stage
    grid: tuple[int, int]
    arena_bytes: int
    extra_macs: int
    extra_fraction_of_model: float
    chosen: bool


@dataclass(frozen=True)
class StageReport:
    layers: tuple[str, ...]
    grid: tuple[int, int]
    tiles_h: tuple[tuple[int, int], ...]
    tiles_w: tuple[tuple[int, int], ...]
    layout: str
    per_layer: tuple[StageLayerReport, ...]
    macs: int
    patched_macs: int
    extra_macs: int
    extra_fraction_of_model: float
    kernel: str  # one fused kernel, tiled by PatchTIR
    scratch_pool_bytes: int  # its workspace: the patch windows, allocated once
    plans_considered: int
    front: tuple[FrontPointReport, ...] = ()  # fewest extra MACs first
    front_excludes_input: bool = False  # its arenas hold no model input (--stream-input)
    in_place: tuple[str, ...] = ()  # layers whose window overwrites their source's in the pool


@dataclass(frozen=True)
class CompileReport:
    model: str
    name: str
    format: str
    target: str
    board: str
    kernels: str
    schedule: str
    peak_sram_bytes: int  # the ELF's tvmp_arena symbol
    peak_sram_bytes_excl_input: int  # the planner's arena with the model inputs left out
    planned_arena_bytes: int
    lower_bound_bytes: int
    arena_algorithm: str
    flash_bytes: int  # text + rodata of the ELF
    elf_sizes: dict[str, int]
    macs: int
    inputs: tuple[TensorReport, ...]
    outputs: tuple[TensorReport, ...]
    layers: tuple[Layer, ...]
    inplace_depthwise: tuple[str, ...] = ()  # output tensors written over their input
    layer_peak_sram_bytes: int | None = None  # --pass patch: the per-layer build's arena
    layer_peak_sram_bytes_excl_input: int | None = None
    layer_macs: int | None = None
    patch_refused: str | None = None  # why the patch pass left the model per layer
    predicted_peak_sram_bytes: int | None = None  # the planner's arena for its plan: equals peak_sram_bytes
    predicted_peak_sram_bytes_excl_input: int | None = None  # equals peak_sram_bytes_excl_input
    patch_stages: tuple[StageReport, ...] = ()
    tuning: dict[str, Any] | None = None  # which kernels got `tvmc tune`'s schedules
    input_streamed: bool = False  # --stream-input built: the stage reads the input window by window

    def to_json(self) -> str:
        return json.dumps(_dump(self), indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> CompileReport:
        """OUT/report.json, checked; DamagedOutput says what is wrong and how to recover."""
        where = f"{path} is damaged"
        again = "; compile again with `tvmc compile MODEL -o OUT`"
        try:
            doc = json.loads(Path(path).read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DamagedOutput(f"{where}: not JSON ({type(err).__name__}){again}") from None
        try:
            return _load(cls, doc, "report")
        except DamagedOutput as err:
            raise DamagedOutput(f"{where}: {err}{again}") from None


def pareto_table(report: CompileReport) -> str:
    """`tvmc compile --pareto`: the planner's front as a table, the chosen plan marked."""
    if not report.patch_stages or not report.patch_stages[0].front:
        why = report.patch_refused or "the model was compiled per layer (add --pass patch)"
        return f"  no Pareto front: {why}"
    stage = report.patch_stages[0]
    arena = "arena, streamed" if stage.front_excludes_input else "arena"
    lines = [
        f"  Pareto front ({len(stage.front)} plans of {stage.plans_considered:,}; fewest extra MACs first):",
        f"    {'':1} {'split':>5} {'grid':>5} {arena:>16} {'extra MACs':>12} {'of model':>8}",
    ]
    for p in stage.front:
        lines.append(
            f"    {'*' if p.chosen else ' '} {p.split:>5} {p.grid[0]:>2}x{p.grid[1]:<2} {p.arena_bytes:>14,} B "
            f"{p.extra_macs:>12,} {100 * p.extra_fraction_of_model:>7.1f}%"
        )
    lines.append("    * the built plan; pick another with --sram-cap, --max-extra-macs, --split or --patches")
    return "\n".join(lines)


@dataclass(frozen=True)
class OutputChecksum:
    name: str
    shape: tuple[int, ...]
    dtype: str
    crc32: str
    sum: float


@dataclass(frozen=True)
class RunReport:
    model: str
    device: str  # host | qemu
    board: str
    kernels: str
    schedule: str
    peak_sram_bytes: int
    wall_seconds: float
    stack_bytes: int | None
    outputs: tuple[OutputChecksum, ...]
    instructions: int | None = None  # QEMU: deterministic count of the inference call
    host_seconds: float | None = None  # host: time of the inference call

    def to_json(self) -> str:
        return json.dumps(_dump(self), indent=2) + "\n"


def schema(cls: type) -> dict[str, str]:
    """Field name -> type, the report's schema (nested reports by their class names)."""
    hints = typing.get_type_hints(cls)
    return {f.name: _type_name(hints[f.name]) for f in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        return tp.__name__
    return str(tp).replace("tvm_patch_core.report.", "").replace("tvm_patch_core.layers.", "").replace("typing.", "")


def _dump(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None and f.default is None:
                continue  # optional and not set: left out
            out[f.name] = _dump(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_dump(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _dump(v) for k, v in obj.items()}
    return obj


def _load(tp: Any, value: Any, where: str) -> Any:
    """`value` (parsed JSON) as type `tp`, or DamagedOutput naming the field."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _load(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise DamagedOutput(f"{where} is not an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _load(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DamagedOutput(f"{where}.{f.name} is missing")
        try:
            return tp(**kwargs)
        except DamagedOutput as err:
            raise DamagedOutput(f"{where}: {err}") from None
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise DamagedOutput(f"{where} is not a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise DamagedOutput(f"{where} has {len(value)} entries, not {len(args)}")
        return tuple(_load(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise DamagedOutput(f"{where} is not an object")
        return {k: _load(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise DamagedOutput(f"{where} is {type(value).__name__}, not {tp.__name__}")
    return value


__all__ = ["CompileReport", "OutputChecksum", "RunReport", "StageLayerReport", "StageReport", "TensorReport", "schema"]
