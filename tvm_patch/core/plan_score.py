"""Score patch plans fast: per-axis windows cached per split, the staged graph built once per split.

The planner scores every (split, grid) pair; most of the work is the same for many of them.

1. Windows are separable. A stage layer's window for the output tile rows [a, b) x columns
   [c, d) is rows(layer; a, b) x columns(layer; c, d): every rule of windows.py (the
   receptive-field walk, the clipping, the union where several stage layers read one tensor)
   acts on each axis alone. `StageAxes` walks one axis for one tile and keeps the result, so
   a tile shared by many grids (and by the receptive-field-aware nudging) is walked once.
2. From those intervals, per plan: the exact MACs (a layer's patched MACs are its MACs per
   pixel x the sum of its window heights over row tiles x the sum of its widths over column
   tiles) and each scratch region (largest height x largest width), then the pool
   (stage.scratch_pool).
3. Per split, the staged graph, its in-place choice, its buffers and the bytes live at each
   step are built once; a grid changes only the stage's workspace at step 0. So a plan gets
   a lower bound on its arena without any layout (`SplitScorer.score`: a layer that may
   write in place counts the larger of its two regions, not both), and the pool and the
   exact arena are laid out only for the plans the search asks for (`Score.arena`).
Everything here equals what patch_planner.predicted_peak computes from stage_windows; tests
compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .arena import Buffer, live_per_step, plan_arena
from .graph import Graph, Workspace
from .inplace_rules import choose_inplace, with_inplace
from .layers import Layer
from .liveness import aligned, buffers, temp_workspaces
from .stage import PatchPlan, pool_workspace, scratch_pool, staged_graph
from .stage_inplace import candidates
from .windows import Window, _axis_params, _axis_window, in_hw, out_hw, stage_layout

Interval = tuple[int, int, int, int]  # (in0, in1, out0, out1) of one layer along one axis


class StageAxes:
    """The stage layers[0:k] per axis: `intervals(axis, a, b)` is, per stage layer in order,
    the rows (axis 0) or columns (axis 1) of its first input and its output that the output
    tile [a, b) of the last layer needs. Assumes patch_planner.stage_refusal(layers, k) is None."""

    def __init__(self, layers: list[Layer], k: int) -> None:
        self.members = layers[:k]
        layout = stage_layout(layers, list(range(k)))
        self.params = [_axis_params(layer) for layer in self.members]
        self.in_sizes = [in_hw(layer, layout) for layer in self.members]
        self.out_sizes = [out_hw(layer, layout) for layer in self.members]
        self._cache: dict[tuple[int, int, int], tuple[Interval, ...]] = {}

    def intervals(self, axis: int, a: int, b: int) -> tuple[Interval, ...]:
        key = (axis, a, b)
        if key not in self._cache:
            need: dict[str, tuple[int, int]] = {self.members[-1].name: (a, b)}
            out: list[Interval] = []
            for layer, params, size in zip(
                reversed(self.members), reversed(self.params), reversed(self.in_sizes), strict=True
            ):
                o0, o1 = need[layer.name]
                k, s, d, p = params[axis]
                i0, i1 = _axis_window(o0, o1, k, s, d, p, size[axis])
                out.append((i0, i1, o0, o1))
                for n, (lo, hi) in zip(layer.inputs, [(i0, i1)] + [(o0, o1)] * (len(layer.inputs) - 1), strict=True):
                    need[n] = (min(lo, need[n][0]), max(hi, need[n][1])) if n in need else (lo, hi)
            self._cache[key] = tuple(reversed(out))
        return self._cache[key]

    def first_extent(self, axis: int, a: int, b: int) -> int:
        """Rows (columns) of the stage's first input that output tile [a, b) reads."""
        i0, i1, _, _ = self.intervals(axis, a, b)[0]
        return i1 - i0


@dataclass(frozen=True)
class Score:
    """One plan as the search sees it: its exact extra MACs and a lower bound on its arena
    (cheap: no layout); `arena()` lays out the exact arena."""

    plan: PatchPlan
    extra_macs: int
    lower_bound: int
    extents: tuple[tuple[int, int], ...] = field(repr=False)  # per stage layer: largest output window
    input_extent: tuple[int, int] = field(repr=False)  # the stage input's largest window
    scorer: SplitScorer = field(compare=False, repr=False)

    def arena(self, stream_input: bool | None = None) -> int:
        """The exact arena of the build: with the input streamed (no input buffer, its window
        in the stage's pool) or counted (the input in the arena); default: the scorer's mode."""
        streamed = self.scorer.stream_input if stream_input is None else stream_input
        return self._laid_out(streamed, without_input=streamed)

    def arena_without_input(self) -> int:
        """The arena less the input buffer: the build's own when the input is streamed, else
        the counted build's arena planned without the input (the report's excl. figure)."""
        return self._laid_out(self.scorer.stream_input, without_input=True)

    def _laid_out(self, window_in_pool: bool, without_input: bool) -> int:
        window = self.input_extent if window_in_pool else None
        return self.scorer.arena(self.scorer.stage_workspace(self.extents, window, self.plan), without_input)


class SplitScorer:
    """Everything about split k that does not depend on the grid, and `score` for a grid."""

    def __init__(
        self, graph: Graph, layers: list[Layer], k: int, stream_input: bool = False, inplace: bool = True
    ) -> None:
        self.graph, self.layers, self.k, self.stream_input = graph, layers, k, stream_input
        self.inplace = inplace
        self.stage = tuple(range(k))
        self.axes = StageAxes(layers, k)
        self.per_pixel = []
        for layer, (h, w) in zip(self.axes.members, self.axes.out_sizes, strict=True):
            if layer.macs % (h * w):
                raise ValueError(
                    f"layer {layer.index} ({layer.op}) has {layer.macs} MACs over {h * w} output "
                    "pixels: not uniform per pixel"
                )
            self.per_pixel.append(layer.macs // (h * w))
        self.base_macs = sum(layer.macs for layer in self.axes.members)
        inp = graph.tensors[graph.inputs[0]] if len(graph.inputs) == 1 else None
        h0, w0 = self.axes.in_sizes[0]
        self.input_per_pixel = inp.nbytes // max(1, h0 * w0) if inp is not None else 0  # all channels
        # the scratch regions, as stage.scratch_pool makes them: (bytes per pixel, live steps)
        pos = {layer.name: p for p, layer in enumerate(self.axes.members)}
        self.regions = []
        for p, layer in enumerate(self.axes.members[:-1]):
            full = graph.tensors[graph.calls[p].outputs[0]]
            h, w = self.axes.out_sizes[p]
            readers = [pos[m.name] for m in self.axes.members if layer.name in m.inputs]
            self.regions.append((full.nbytes // max(1, h * w), p, max(readers, default=p)))
        staged = staged_graph(graph, PatchPlan(self.stage, ((0, 1),), ((0, 1),)))  # reads only the stage
        if inplace:
            staged = with_inplace(staged, choose_inplace(staged, layers, k))
        self.staged = staged
        self.workspace = temp_workspaces(staged)
        self._buffers = {mode: self._tensor_buffers(mode) for mode in (False, True)}
        live = live_per_step(self._buffers[stream_input][0] + self._buffers[stream_input][1])
        self.live0 = live.get(0, 0)
        self.live_rest = max((v for s, v in live.items() if s > 0), default=0)
        self._pools: dict[tuple, int] = {}
        found = candidates(graph, layers, self.stage, stream_input) if inplace else {}
        self.pairable = {k: src for k, (src, _, _) in found.items()}  # position -> source (-1: input)
        self._arenas: dict[tuple[int, bool], int] = {}

    @property
    def laid_out(self) -> int:
        """How many arenas this split has laid out (the search's pruning leaves the rest)."""
        return len(self._arenas)

    def _tensor_buffers(self, without_input: bool) -> tuple[list[Buffer], list[Buffer]]:
        """(tensor buffers, the other steps' workspaces): liveness.buffers without step 0's."""
        bufs = buffers(self.staged, {**self.workspace, 0: 0}, exclude_inputs=without_input)
        tensors = [b for b in bufs if not isinstance(b.key, Workspace)]
        return tensors, [b for b in bufs if isinstance(b.key, Workspace)]

    def score(self, tiles_h: tuple[tuple[int, int], ...], tiles_w: tuple[tuple[int, int], ...]) -> Score:
        """Exact extra MACs, and the lower bound max(most live at steps >= 1, live at step 0 +
        the workspace of the pool at its liveness lower bound): workspace_bytes is
        monotone and no pool is below its lower bound, so no arena of this plan is smaller."""
        rows = [self.axes.intervals(0, a, b) for a, b in tiles_h]
        cols = [self.axes.intervals(1, a, b) for a, b in tiles_w]
        patched = 0
        extents = []
        for pos in range(len(self.stage)):
            hs = [r[pos][3] - r[pos][2] for r in rows]
            ws = [c[pos][3] - c[pos][2] for c in cols]
            patched += self.per_pixel[pos] * sum(hs) * sum(ws)
            extents.append((max(hs), max(ws)))
        input_extent = (max(r[0][1] - r[0][0] for r in rows), max(c[0][1] - c[0][0] for c in cols))
        live: dict[int, int] = {}  # step -> bytes of the pool's regions live then (one pool, all dtypes)
        for (per_pixel, first, last), (h, w) in zip(self.regions, extents, strict=False):
            for step in range(first, last + 1):
                live[step] = live.get(step, 0) + aligned(h * w * per_pixel)
        sizes = [aligned(h * w * r[0]) for r, (h, w) in zip(self.regions, extents, strict=False)]
        if self.stream_input:  # the input's window, read by the first layer only (stream_refusal)
            sizes.append(aligned(input_extent[0] * input_extent[1] * self.input_per_pixel))
            live[0] = live.get(0, 0) + sizes[-1]
        for k, src in self.pairable.items():  # a pair needs at least the larger of its two regions
            live[k] -= min(sizes[k], sizes[src])
        bound = max(self.live_rest, self.live0 + pool_workspace(max(live.values(), default=0)))
        plan = PatchPlan(self.stage, tiles_h, tiles_w)
        return Score(plan, patched - self.base_macs, bound, tuple(extents), input_extent, self)

    def stage_workspace(
        self,
        extents: tuple[tuple[int, int], ...],
        input_extent: tuple[int, int] | None = None,
        plan: PatchPlan | None = None,
    ) -> int:
        """The stage kernel's workspace: its pool (stage.scratch_pool, with the streamed
        input's window if `input_extent`, and in-place pairs for `plan`'s windows when the
        scorer places in place), laid out exactly."""
        inplace = self.inplace and plan is not None
        key = (extents, input_extent, (plan.tiles_h, plan.tiles_w) if inplace else None)
        if key not in self._pools:
            largest = dict(zip(self.stage, extents, strict=True))
            windows = self._windows(plan) if inplace else None
            _, pool, _ = scratch_pool(self.graph, self.layers, self.stage, largest, input_extent, windows)
            self._pools[key] = pool_workspace(pool)
        return self._pools[key]

    def _windows(self, plan: PatchPlan) -> tuple[dict[int, tuple[Window, Window]], ...]:
        """stage.plan_windows from the cached intervals: per patch, layer -> (input, output)."""
        found = []
        for a, b in plan.tiles_h:
            rows = self.axes.intervals(0, a, b)
            for c, d in plan.tiles_w:
                cols = self.axes.intervals(1, c, d)
                found.append(
                    {
                        i: (Window(r[0], r[1], q[0], q[1]), Window(r[2], r[3], q[2], q[3]))
                        for i, r, q in zip(self.stage, rows, cols, strict=True)
                    }
                )
        return tuple(found)

    def arena(self, stage_workspace: int, without_input: bool) -> int:
        """The exact arena (arena.plan_arena) of this split with this stage workspace, the
        buffers in liveness.buffers' order, as the build plans them; `without_input`: no
        buffer for the model input (streamed, or left out of the count)."""
        key = (stage_workspace, without_input)
        if key not in self._arenas:
            tensors, others = self._buffers[without_input]
            ws0 = [Buffer(Workspace(0), stage_workspace, 0, 0)] if stage_workspace > 0 else []
            self._arenas[key] = plan_arena(tensors + ws0 + others).size
        return self._arenas[key]
