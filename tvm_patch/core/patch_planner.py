"""Choose the patch stage: split point K, grid nh x nw and tile sizes, under an SRAM cap.

Search (small and exhaustive):
1. Candidate splits K: every prefix of the layer graph that a patch stage can hold (conv2d,
   pooling and fused residual adds with both inputs in the stage, one layout, and only the
   last layer's output leaving it), or just `--split K`.
2. Candidate grids: nh x nw from 1..8 each (not only square), or just `--patches`.
3. Tiles per axis: as equal as possible, then receptive-field aware: boundaries are moved by
   up to stride-1 pixels to the split that gives the smallest largest input window of the
   stage's first layer (tiles may then be unequal).
4. For each candidate, the predicted peak is the arena our planner lays out for the whole
   program: the graph with the stage as one call (stage.staged_graph), the in-place choice
   on it, the stage's predicted scratch pool; the cost is the exact extra MACs the halos
   recompute. Nothing is built here.
5. With a cap: the plan with the fewest extra MACs whose peak fits; ties go to the smaller
   peak. Without one: the smallest peak among plans that cost at most `max_extra_fraction`
   of the model's MACs (10%, MCUNetV2's figure for MobileNetV2).
If nothing fits, SramCapExceeded names the best plan, its bytes and the layer that limits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from .arena import liveness_lower_bound, plan_arena
from .errors import NoPatchStage, SramCapExceeded, TvmPatchError, UnsupportedStageLayer
from .graph import Graph
from .inplace_rules import choose_inplace, with_inplace
from .layers import Layer
from .liveness import buffers, step_reads_writes, temp_workspaces
from .options import CompileOptions
from .progress import Progress
from .stage import PatchPlan, predict_stage
from .windows import Window, out_hw, patch_macs, stage_layout, stage_windows, tiles

SUPPORTED_OPS = frozenset({"nn.conv2d", "nn.max_pool2d", "nn.avg_pool2d", "add"})
MAX_GRID = 8


@dataclass(frozen=True)
class PlanChoice:
    plan: PatchPlan
    predicted_bytes: int
    extra_macs: int
    extra_fraction: float  # of the whole model's MACs
    considered: int


def stage_refusal(layers: list[Layer], k: int) -> str | None:
    """Why layers[0:k] cannot be a patch stage, or None if they can."""
    for layer in layers[:k]:
        if layer.op not in SUPPORTED_OPS:
            return f"layer {layer.index} ({layer.name}) is {layer.op}, which a patch stage cannot hold"
        if len(layer.output_shape) != 4:
            return f"layer {layer.index} ({layer.name}) output is not 4-D"
    try:
        layout = stage_layout(layers, list(range(k)))
        stage_windows(layers, list(range(k)), _full(layers[k - 1]))
    except (UnsupportedStageLayer, ValueError) as err:  # ValueError: MACs not uniform per pixel
        return str(err)
    for layer in layers[:k]:  # PatchTIR finds a map's H and W by their loops; TVM drops unit loops
        h, w = out_hw(layer, layout)
        if min(h, w) < 2:
            return (
                f"layer {layer.index} ({layer.name}) output is {h}x{w} pixels; a patch stage "
                "tiles maps at least 2x2, so it must end before this layer"
            )
    return None


def _no_split_reason(layers: list[Layer], last_heavy: int) -> str:
    """Why the automatic search has no candidate split (stages of 2..last_heavy+1 layers that
    leave at least one layer after them)."""
    if min(last_heavy + 2, len(layers)) > 2:  # k = 2 was a candidate: its refusal says why
        return str(stage_refusal(layers, 2))
    if len(layers) < 2:
        return f"the model has {len(layers)} layer; a patch stage needs 2 or more"
    if len(layers) == 2:
        if stage_refusal(layers, 2):  # not even the whole model could be a stage
            return str(stage_refusal(layers, 2))
        return (
            "the model has 2 layers; an automatic stage holds 2 or more and leaves at least "
            "one after it (--split 2 puts both in the stage)"
        )
    return (
        f"only layer 0 ({layers[0].name}) holds 1/16 or more of the largest layer's activation bytes; "
        "an automatic stage needs two such layers (--split K forces one)"
    )


def _full(layer: Layer) -> Window:
    h, w = _hw(layer)
    return Window(0, h, 0, w)


def _hw(layer: Layer) -> tuple[int, int]:
    s = layer.output_shape
    return (s[2], s[3]) if layer.layout == "NCHW" else (s[1], s[2])


def _rf_aware(layers: list[Layer], k: int, size: int, n: int, axis: int) -> tuple[tuple[int, int], ...]:
    """Equal tiles, then each boundary nudged by up to (cumulative stride - 1) pixels to the
    position that minimises the largest first-layer input window along this axis."""
    base = tiles(size, n)
    if n == 1:
        return tuple(base)
    stride = 1
    for layer in layers[:k]:
        if layer.strides:
            stride *= layer.strides[axis]
    bounds = [b[0] for b in base] + [size]
    full = _full(layers[k - 1])
    extent: dict[tuple[int, int], int] = {}

    def first_extent(a: int, b: int) -> int:
        if (a, b) not in extent:
            win = Window(a, b, 0, full.x1) if axis == 0 else Window(0, full.y1, a, b)
            first = stage_windows(layers, list(range(k)), win)[0][0]
            extent[(a, b)] = first.height if axis == 0 else first.width
        return extent[(a, b)]

    def worst(bs: list[int]) -> int:
        return max(first_extent(a, b) for a, b in pairwise(bs))

    for i in range(1, n):
        best = (worst(bounds), bounds[i])
        for d in range(-(stride - 1), stride):
            cand = bounds[i] + d
            if bounds[i - 1] < cand < bounds[i + 1]:
                trial = [*bounds[:i], cand, *bounds[i + 1 :]]
                best = min(best, (worst(trial), cand))
        bounds[i] = best[1]
    return tuple(pairwise(bounds))


def predicted_peak(
    graph: Graph,
    layers: list[Layer],
    plan: PatchPlan,
    exact: bool = True,
    exclude_input: bool = False,
    inplace: bool = True,
) -> tuple[int, str]:
    """(arena bytes, where the most bytes are live) for the graph with this patch stage.

    exact=False gives the liveness lower bound instead (cheap; the search ranks by it and
    lays out the arena only for the plans it then checks)."""
    staged, info = predict_stage(graph, layers, plan, stage_layout(layers, list(plan.stage)))
    if inplace:
        staged = with_inplace(staged, choose_inplace(staged, layers, len(plan.stage)))
    workspace = temp_workspaces(staged)
    workspace[0] = workspace.get(0, 0) + info.pool_bytes  # the stage is call 0; its pool
    bufs = buffers(staged, workspace, exclude_inputs=exclude_input)
    steps = step_reads_writes(staged)
    live = [sum(b.size for b in bufs if b.first <= i <= b.last) for i in range(len(steps))]
    busiest = max(range(len(steps)), key=live.__getitem__)
    where = f"step {busiest}, writing {', '.join(steps[busiest][1])}"
    if not exact:
        return liveness_lower_bound(bufs), where
    return plan_arena(bufs).size, where


def choose_plan(
    graph: Graph, layers: list[Layer], options: CompileOptions, max_extra_fraction: float = 0.10
) -> PlanChoice:
    """See the module docstring. With `options.patch.exclude_input` it plans for the arena
    without the model input (MCUNetV2's convention: the image can stream in); the cap then
    applies to that figure."""
    sram_cap, split, grid = options.sram_cap, options.patch.split, options.patch.grid
    exclude_input, inplace = options.patch.exclude_input, options.inplace
    total_macs = max(sum(layer.macs for layer in layers), 1)
    if split is not None:
        if len(layers) < 2:
            raise TvmPatchError(f"--split {split}: the model has {len(layers)} layer; a patch stage needs at least 2")
        if not 2 <= split <= len(layers):
            raise TvmPatchError(
                f"--split {split}: a patch stage holds 2 to {len(layers)} layers (the model has {len(layers)}); "
                "give one in that range or --split auto"
            )
        reason = stage_refusal(layers, split)
        if reason:
            raise TvmPatchError(f"--split {split}: {reason}")
        splits = [split]
    else:
        # Only the memory-heavy early part: a stage ends no later than the last layer whose
        # activation bytes are at least 1/16 of the per-layer peak layer's.
        heavy = max(layer.activation_bytes for layer in layers) / 16
        last_heavy = max(i for i, layer in enumerate(layers) if layer.activation_bytes >= heavy)
        ks = range(2, min(last_heavy + 2, len(layers)))
        splits = [k for k in ks if stage_refusal(layers, k) is None]
        if not splits:
            raise NoPatchStage(f"no patch stage possible: {_no_split_reason(layers, last_heavy)}")
    candidates: list[PlanChoice] = []
    limiting: dict[PatchPlan, str] = {}
    progress = Progress("planning patches", len(splits))
    for k in splits:
        progress.step()
        h, w = _hw(layers[k - 1])
        grids = (
            [grid] if grid else [(a, b) for a in range(1, min(MAX_GRID, h) + 1) for b in range(1, min(MAX_GRID, w) + 1)]
        )
        for nh, nw in grids:
            if nh > h or nw > w:
                raise TvmPatchError(f"--patches {nh}x{nw}: the stage output is only {h}x{w} pixels")
            plan = PatchPlan(tuple(range(k)), _rf_aware(layers, k, h, nh, 0), _rf_aware(layers, k, w, nw, 1))
            cost = patch_macs(layers, plan.stage, tiles_h=list(plan.tiles_h), tiles_w=list(plan.tiles_w))
            bound, where = predicted_peak(
                graph, layers, plan, exact=False, exclude_input=exclude_input, inplace=inplace
            )
            limiting[plan] = where
            candidates.append(PlanChoice(plan, bound, cost.extra_macs, cost.extra_macs / total_macs, 0))
    progress.done()
    n = len(candidates)
    if sram_cap is not None:
        order = sorted(
            (c for c in candidates if c.predicted_bytes <= sram_cap), key=lambda c: (c.extra_macs, c.predicted_bytes)
        )
    else:
        cheap = [c for c in candidates if c.extra_fraction <= max_extra_fraction] or candidates
        order = sorted(cheap, key=lambda c: (c.predicted_bytes, c.extra_macs))
    for c in order:  # the bound ranked them; lay out the arena to confirm
        exact, _ = predicted_peak(graph, layers, c.plan, exclude_input=exclude_input, inplace=inplace)
        if sram_cap is None or exact <= sram_cap:
            best = PlanChoice(c.plan, exact, c.extra_macs, c.extra_fraction, n)
            break
    else:
        best = min(candidates, key=lambda c: (c.predicted_bytes, c.extra_macs))
        nh, nw = best.plan.grid
        raise SramCapExceeded(
            f"best plan (split {len(best.plan.stage)}, {nh}x{nw} patches) needs {best.predicted_bytes:,} B "
            f"(most live at {limiting[best.plan]}), cap is {sram_cap:,} B; raise --sram-cap or try another --split"
        )
    return best
