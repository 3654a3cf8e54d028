"""The patch stage of a program: the first K layers as ONE fused kernel tiled into patches.

`build_patch_stage` runs the two passes on the per-layer program's lowered module:
FuseStage (passes/fuse_stage.py) concatenates the K scheduled layer kernels into one PrimFunc
called once from `main`, and PatchTIR (passes/patch_tir.py) tiles it: per patch, each layer
computes only the window of its output that the rest of the stage needs (halo included,
exact at the borders), into one scratch pool allocated once per call. The full early
feature maps never exist; the pool is the stage kernel's workspace in the arena.

The planner needs the stage's bytes for many candidate plans without building them:
`stage_scratch` predicts the pool from the windows of tvm_patch/patch_analysis.py, laid out
by the same arena planner; tests check it against the built kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .layers import Layer
from .lower import KernelCall, Program, read_program
from .passes.fuse_stage import STAGE_FUNC, fuse_stage
from .passes.patch_tir import ALIGNMENT, PatchTIR
from .patch_analysis import Window, out_hw, stage_layout, stage_windows
from .targets.arena import Buffer, plan_arena


@dataclass(frozen=True)
class PatchPlan:
    """The stage (layer indices 0..K-1) and the tiles of its last output, per axis."""

    stage: tuple[int, ...]
    tiles_h: tuple[tuple[int, int], ...]
    tiles_w: tuple[tuple[int, int], ...]

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.tiles_h), len(self.tiles_w)


@dataclass(frozen=True)
class PatchStage:
    plan: PatchPlan
    layout: str
    windows: tuple[dict[int, tuple[Window, Window]], ...]  # per patch: layer -> (input, output) window
    scratch: dict[int, int]  # layer index -> bytes of its largest output window (the last: none)
    pool_bytes: int  # the stage kernel's scratch pool (predicted, or read from the built kernel)


STAGE_KERNEL = STAGE_FUNC


def plan_windows(layers: list[Layer], plan: PatchPlan) -> tuple[dict[int, tuple[Window, Window]], ...]:
    return tuple(stage_windows(layers, plan.stage, Window(ty[0], ty[1], tx[0], tx[1]))
                 for ty in plan.tiles_h for tx in plan.tiles_w)


def stage_scratch(program: Program, layers: list[Layer], plan: PatchPlan,
                  windows: tuple[dict, ...]) -> tuple[dict[int, int], int]:
    """(layer -> bytes of its scratch, pool bytes): each stage layer but the last keeps its
    output in a region as tall and as wide as its largest window (PatchTIR's layout), live from
    the layer that writes it to the last stage layer that reads it; PatchTIR keeps one pool
    per dtype (int8 maps and a float32 residual path do not share bytes)."""
    stage = list(plan.stage)
    pos = {layers[i].name: k for k, i in enumerate(stage)}
    scratch: dict[int, int] = {}
    by_dtype: dict[str, list[Buffer]] = {}
    for k, i in enumerate(stage[:-1]):
        full = program.tensors[program.calls[i].outputs[0]]
        per_pixel = full.nbytes // max(1, _hw_size(layers[i]))
        scratch[i] = max(w[i][1].height for w in windows) * max(w[i][1].width for w in windows) * per_pixel
        readers = [pos[layers[j].name] for j in stage if layers[i].name in layers[j].inputs]
        by_dtype.setdefault(full.dtype, []).append(Buffer(str(i), scratch[i], k, max(readers, default=k)))
    pool = sum(plan_arena(b, alignment=ALIGNMENT).size for b in by_dtype.values())  # one pool per dtype
    return scratch, pool


def _hw_size(layer: Layer) -> int:
    h, w = out_hw(layer)
    return h * w


def build_patch_stage(program: Program, layers: list[Layer], plan: PatchPlan, dry_run: bool = False) -> Program:
    """The per-layer program with its first K calls replaced by one call of the tiled stage
    kernel. With `dry_run` nothing is lowered: the call and its tensors are what the build
    would have, the pool is the prediction (the planner needs only the buffers)."""
    stage = list(plan.stage)
    layout = stage_layout(layers, stage)
    windows = plan_windows(layers, plan)
    scratch, pool = stage_scratch(program, layers, plan, windows)
    if dry_run:
        inner = {program.calls[i].outputs[0] for i in stage[:-1]}
        ins = []
        for i in stage:
            ins += [t for t in program.calls[i].inputs if t not in inner and t not in ins]
        call = KernelCall(STAGE_FUNC, tuple(ins), program.calls[stage[-1]].outputs)
        tensors = {n: t for n, t in program.tensors.items() if n not in inner}
        built = replace(program, calls=(call, *program.calls[len(stage):]), tensors=tensors)
    else:
        attrs = {"patch_tiles_h": [list(t) for t in plan.tiles_h], "patch_tiles_w": [list(t) for t in plan.tiles_w],
                 "patch_layout": layout}
        lowered = PatchTIR()(fuse_stage(program.lowered, len(stage), attrs))
        built = read_program(lowered, program.grouped)
        pool = int(built.kernels[STAGE_FUNC].attrs["patch_scratch_bytes"])
    return replace(built, stage=PatchStage(plan, layout, windows, scratch, pool))
