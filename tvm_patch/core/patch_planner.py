"""Choose the patch stage: split point K, grid nh x nw and tile sizes, under an SRAM cap.

Search (exhaustive over the candidates, exact where it decides):
1. Candidate splits K: every prefix of the layer graph that a patch stage can hold (conv2d,
   pooling and fused residual adds with both inputs in the stage, one layout, and only the
   last layer's output leaving it), or just `--split K`.
2. Candidate grids: nh x nw from 1..8 each (not only square), or just `--patches`.
3. Tiles per axis: as equal as possible, then receptive-field aware: boundaries are moved by
   up to stride-1 pixels to the split that gives the smallest largest input window of the
   stage's first layer (tiles may then be unequal).
4. Every candidate gets its exact extra MACs (the halos' recomputation) and a lower bound on
   its arena, from per-axis windows cached per split (plan_score.py). Nothing is built.
5. The Pareto front over (extra MACs, arena): candidates in order of MACs, each one's exact
   arena laid out unless its lower bound already shows a cheaper plan as small (the proof is
   in `pareto_front`). The arena is the one the build will declare: the graph with the stage
   as one call (stage.staged_graph), the in-place choice on it, the stage's scratch pool and
   the depthwise temporaries as the workspaces TVM allocates (liveness.workspace_bytes),
   planned by arena.plan_arena with the build's buffers in the build's order.
6. With a cap: the front plan with the fewest extra MACs whose arena fits (the cheapest plan
   that fits is always on the front), within `--max-extra-macs` if given. Without one, the
   knee: among front plans that cost at most `--max-extra-macs` of the model's MACs (default
   10%, MCUNetV2's figure for MobileNetV2),
   the one that minimises ln(arena) + MAC_PRICE * extra MACs / model MACs. With MAC_PRICE 1 a
   move along the front is taken when the arena falls by a larger fraction than the model's
   MACs grow: 1.6% more MACs for 75% less arena, yes; 7% more for 1.8% less, no.
If nothing fits, SramCapExceeded names the smallest plan, its bytes and the layer that limits it.
With `stream_input` (`--stream-input`) the model input has no arena buffer: the stage reads
each patch's input window into its pool (stage.scratch_pool), so every arena above, and the
cap, is the arena that streamed build declares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from .arena import liveness_lower_bound, plan_arena
from .errors import NoPatchStage, SramCapExceeded, TvmPatchError, UnsupportedStageLayer
from .graph import Graph
from .inplace_rules import choose_inplace, with_inplace
from .layers import Layer
from .liveness import buffers, step_reads_writes, temp_workspaces
from .options import CompileOptions
from .plan_score import Score, SplitScorer, StageAxes
from .progress import Progress
from .stage import PatchPlan, first_input_extent, plan_windows, pool_workspace, scratch_pool, staged_graph
from .windows import Window, out_hw, stage_layout, stage_windows, tiles

SUPPORTED_OPS = frozenset({"nn.conv2d", "nn.max_pool2d", "nn.avg_pool2d", "add"})
MAX_GRID = 8
MAC_PRICE = 1.0  # the knee: 1% of the model's MACs is worth paying for 1% less arena, no less


@dataclass(frozen=True)
class FrontPlan:
    """One plan of the Pareto front (split, grid, exact arena in the planning mode, extra MACs)."""

    split: int
    grid: tuple[int, int]
    arena_bytes: int
    extra_macs: int


@dataclass(frozen=True)
class PlanChoice:
    plan: PatchPlan
    predicted_bytes: int  # the arena the cap applies to: the build's, the input streamed or not
    extra_macs: int
    extra_fraction: float  # of the whole model's MACs
    considered: int
    arena_bytes: int = 0  # the predicted arena the built program declares
    arena_bytes_excl_input: int = 0  # the same less the input buffer (equal when the input is streamed)
    front: tuple[FrontPlan, ...] = ()  # fewest MACs first
    laid_out: int = 0  # exact arenas the search laid out for the `considered` plans


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


def _rf_aware(axes: StageAxes, size: int, n: int, axis: int) -> tuple[tuple[int, int], ...]:
    """Equal tiles, then each boundary nudged by up to (cumulative stride - 1) pixels to the
    position that minimises the largest first-layer input window along this axis."""
    base = tiles(size, n)
    if n == 1:
        return tuple(base)
    stride = 1
    for layer in axes.members:
        if layer.strides:
            stride *= layer.strides[axis]
    bounds = [b[0] for b in base] + [size]

    def worst(bs: list[int]) -> int:
        return max(axes.first_extent(axis, a, b) for a, b in pairwise(bs))

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
    stream_input: bool = False,
    inplace: bool = True,
) -> tuple[int, str]:
    """(arena bytes, where the most bytes are live) for the graph with this patch stage, from
    stage_windows: the reference that plan_score's fast path must equal.

    exact=False gives the liveness lower bound instead."""
    windows = plan_windows(layers, plan)
    extents = {i: (max(w[i][1].height for w in windows), max(w[i][1].width for w in windows)) for i in plan.stage}
    window = first_input_extent(windows, plan) if stream_input else None
    _, pool, _ = scratch_pool(graph, layers, plan.stage, extents, window, windows if inplace else None)
    staged = staged_graph(graph, plan)
    if inplace:
        staged = with_inplace(staged, choose_inplace(staged, layers, len(plan.stage)))
    workspace = temp_workspaces(staged)
    if pool_workspace(pool):
        workspace[0] = workspace.get(0, 0) + pool_workspace(pool)  # the stage is call 0; its pool
    bufs = buffers(staged, workspace, exclude_inputs=stream_input)
    steps = step_reads_writes(staged)
    live = [sum(b.size for b in bufs if b.first <= i <= b.last) for i in range(len(steps))]
    busiest = max(range(len(steps)), key=live.__getitem__)
    where = f"step {busiest}, writing {', '.join(steps[busiest][1])}"
    if not exact:
        return liveness_lower_bound(bufs), where
    return plan_arena(bufs).size, where


def stream_refusal(graph: Graph, layers: list[Layer]) -> str | None:
    """Why the model input cannot be streamed into a patch stage, or None if it can: one 4-D
    input of batch 1, read by layer 0 only (its windows are the stage's first input windows)."""
    if len(graph.inputs) != 1:
        return f"the model has {len(graph.inputs)} inputs; streaming reads one"
    name = graph.inputs[0]
    shape = graph.tensors[name].shape
    if len(shape) != 4 or shape[0] != 1:
        return f"the input is {list(shape)}; streaming reads a 4-D input of batch 1"
    readers = [i for i, call in enumerate(graph.calls) if name in call.inputs]
    if readers != [0]:
        later = next(i for i in readers if i != 0)
        return f"layer {later} ({layers[later].name}) reads the input too; a streamed input is read by layer 0 only"
    return None


def pareto_front(scores: list[Score]) -> list[tuple[Score, int]]:
    """The plans no other plan beats on both extra MACs and arena, with their exact arenas,
    fewest MACs first (so arenas strictly fall along it).

    One sweep in order of (extra MACs, lower bound), keeping the smallest exact arena seen so
    far, `best`. A plan whose liveness lower bound is already >= best is skipped without laying
    out its arena, and that never loses a front plan: an earlier plan Q has
    extra_macs(Q) <= extra_macs(P) and arena(Q) = best <= lower_bound(P) <= arena(P) (no
    arena is below its liveness lower bound, arena.py step 5), so Q is at least as good as P
    on both counts. Equal plans keep the first."""
    front: list[tuple[Score, int]] = []
    best = None
    for s in sorted(scores, key=lambda s: (s.extra_macs, s.lower_bound)):
        if best is not None and s.lower_bound >= best:
            continue
        exact = s.arena()
        if best is None or exact < best:
            if front and front[-1][0].extra_macs == s.extra_macs:
                front.pop()  # same MACs, smaller arena
            front.append((s, exact))
            best = exact
    return front


def knee(front: list[tuple[Score, int]], total_macs: int) -> tuple[Score, int]:
    """The front plan that minimises ln(arena) + MAC_PRICE * extra MACs / model MACs (module
    docstring, step 6); ties go to fewer MACs."""
    return min(front, key=lambda e: (math.log(e[1]) + MAC_PRICE * e[0].extra_macs / total_macs, e[0].extra_macs))


def choose_plan(
    graph: Graph, layers: list[Layer], options: CompileOptions, max_extra_fraction: float = 0.10
) -> PlanChoice:
    """See the module docstring. With `options.patch.stream_input` it plans for the build
    that streams the input (MCUNetV2's count: the image never sits in SRAM whole)."""
    sram_cap, split, grid = options.sram_cap, options.patch.split, options.patch.grid
    stream_input, inplace = options.patch.stream_input, options.inplace
    total_macs = max(sum(layer.macs for layer in layers), 1)
    if stream_input and (why := stream_refusal(graph, layers)):
        raise TvmPatchError(f"--stream-input: cannot stream the input: {why}; leave out --stream-input")
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
        if grid:  # a given grid rules out the stages whose output has fewer pixels than it
            fit = [k for k in splits if _hw(layers[k - 1])[0] >= grid[0] and _hw(layers[k - 1])[1] >= grid[1]]
            if not fit:
                h, w = _hw(layers[splits[0] - 1])
                raise TvmPatchError(
                    f"--patches {grid[0]}x{grid[1]}: the shallowest stage's output is only {h}x{w} pixels"
                )
            splits = fit
    scores: list[Score] = []
    progress = Progress("planning patches", len(splits))
    for k in splits:
        progress.step()
        scorer = SplitScorer(graph, layers, k, stream_input, inplace)
        h, w = _hw(layers[k - 1])
        grids = (
            [grid] if grid else [(a, b) for a in range(1, min(MAX_GRID, h) + 1) for b in range(1, min(MAX_GRID, w) + 1)]
        )
        tiling: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}  # (axis, n) -> tiles, for every grid
        for nh, nw in grids:
            if nh > h or nw > w:
                raise TvmPatchError(f"--patches {nh}x{nw}: the stage output is only {h}x{w} pixels")
            for axis, size, n in ((0, h, nh), (1, w, nw)):
                if (axis, n) not in tiling:
                    tiling[axis, n] = _rf_aware(scorer.axes, size, n, axis)
            scores.append(scorer.score(tiling[0, nh], tiling[1, nw]))
    progress.done()
    front = pareto_front(scores)
    bound = options.patch.max_extra_macs
    within = [e for e in front if bound is None or e[0].extra_macs <= bound * total_macs]
    if not within:
        cheapest = front[0][0]
        raise SramCapExceeded(
            f"--max-extra-macs {100 * bound:g}%: the cheapest plan (split {len(cheapest.plan.stage)}, "
            f"{cheapest.plan.grid[0]}x{cheapest.plan.grid[1]} patches) adds {cheapest.extra_macs:,} MACs "
            f"({100 * cheapest.extra_macs / total_macs:.1f}% of {total_macs:,}); "
            "raise the bound or leave out --pass patch"
        )
    if sram_cap is not None:
        fits = [e for e in within if e[1] <= sram_cap]  # the cheapest plan that fits is on the front
        if not fits:
            best, arena = within[-1]  # the smallest arena within the MAC bound
            nh, nw = best.plan.grid
            _, where = predicted_peak(graph, layers, best.plan, stream_input=stream_input, inplace=inplace)
            within_text = f" within +{100 * bound:g}% MACs" if bound is not None else ""
            raise SramCapExceeded(
                f"best plan{within_text} (split {len(best.plan.stage)}, {nh}x{nw} patches) needs {arena:,} B "
                f"(most live at {where}), cap is {sram_cap:,} B; raise --sram-cap or try another --split"
            )
        best, arena = fits[0]
    else:
        limit = max_extra_fraction if bound is None else bound
        cheap = [e for e in within if e[0].extra_macs <= limit * total_macs] or front[:1]
        best, arena = knee(cheap, total_macs)
    return PlanChoice(
        best.plan,
        arena,
        best.extra_macs,
        best.extra_macs / total_macs,
        len(scores),
        best.arena(),
        best.arena_without_input(),
        tuple(FrontPlan(len(s.plan.stage), s.plan.grid, a, s.extra_macs) for s, a in front),
        sum(scorer.laid_out for scorer in {id(s.scorer): s.scorer for s in scores}.values()),
    )
