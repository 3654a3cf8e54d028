"""The patch stage as data: the plan (which layers, which tiles) and what it does to the graph.

The build (tvm_patch/rewrite.py, build_stage) turns the first K calls into ONE call of the fused,
tiled stage kernel (passes/fuse_stage.py + passes/patch_tir.py). The planner needs the same
graph and the stage's scratch bytes for many candidate plans without building them:
`staged_graph` is that graph, `stage_scratch` predicts the kernel's scratch pool from the
windows of windows.py, laid out by the same arena planner PatchTIR uses (tests check it
against the built kernel).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .arena import Buffer
from .graph import Call, Graph, TensorKind
from .layers import Layer
from .liveness import workspace_bytes
from .stage_inplace import InplacePair, candidates, choose_pairs, pair_shifts, pool_size
from .windows import Window, in_hw, out_hw, stage_layout, stage_windows

STAGE_KERNEL = "patch_stage"  # the fused stage PrimFunc's global symbol


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
class StageInfo:
    """A built (or predicted) stage: its plan, windows and scratch."""

    plan: PatchPlan
    layout: str
    windows: tuple[dict[int, tuple[Window, Window]], ...]  # per patch: layer -> (input, output) window
    scratch: dict[int, int]  # layer index -> bytes of its largest output window (the last: none)
    pool_bytes: int  # the stage kernel's scratch pool
    pairs: tuple[InplacePair, ...] = ()  # stage layers writing their window over their source's


def plan_windows(layers: list[Layer], plan: PatchPlan) -> tuple[dict[int, tuple[Window, Window]], ...]:
    return tuple(
        stage_windows(layers, plan.stage, Window(ty[0], ty[1], tx[0], tx[1]))
        for ty in plan.tiles_h
        for tx in plan.tiles_w
    )


def stage_scratch(
    graph: Graph,
    layers: list[Layer],
    plan: PatchPlan,
    windows: tuple[dict, ...],
    stream_input: bool = False,
    inplace: bool = False,
) -> tuple[dict[int, int], int, list[InplacePair]]:
    """(layer -> bytes of its scratch, pool bytes, in-place pairs) for the stage's windows
    (scratch_pool)."""
    extents = {
        i: (max(win[i][1].height for win in windows), max(win[i][1].width for win in windows)) for i in plan.stage
    }
    input_extent = first_input_extent(windows, plan) if stream_input else None
    return scratch_pool(graph, layers, plan.stage, extents, input_extent, windows if inplace else None)


def scratch_pool(
    graph: Graph,
    layers: list[Layer],
    stage: tuple[int, ...],
    extents: dict[int, tuple[int, int]],
    input_extent: tuple[int, int] | None = None,
    windows: tuple[dict, ...] | None = None,
) -> tuple[dict[int, int], int, list[InplacePair]]:
    """(layer -> bytes of its scratch, bytes of the pool, in-place pairs), given each stage
    layer's largest output window (height, width): each stage layer but the last keeps its
    output in a region that tall and that wide (PatchTIR's layout), live from the layer that
    writes it to the last stage layer that reads it; a streamed input's largest window is one
    more region, live while the stage's first layer runs. PatchTIR places them all in one pool
    of bytes (maps of different dtypes share bytes too), one allocation of the stage kernel.
    With the patches' `windows`, layers may write over their source (stage_inplace.py)."""
    pos = {layers[i].name: k for k, i in enumerate(stage)}
    scratch: dict[int, int] = {}
    bufs: list[Buffer] = []
    for k, i in enumerate(stage[:-1]):
        full = graph.tensors[graph.calls[i].outputs[0]]
        h, w = out_hw(layers[i])
        per_pixel = full.nbytes // max(1, h * w)
        scratch[i] = extents[i][0] * extents[i][1] * per_pixel
        readers = [pos[layers[j].name] for j in stage if layers[i].name in layers[j].inputs]
        bufs.append(Buffer(str(k), scratch[i], k, max(readers, default=k)))
    if input_extent is not None:  # a streamed input: its largest window (PatchTIR's last region)
        inp = graph.tensors[graph.inputs[0]]
        h, w = in_hw(layers[stage[0]])
        nbytes = input_extent[0] * input_extent[1] * (inp.nbytes // (h * w))  # batch 1, all channels
        readers = [k for k, i in enumerate(stage) if graph.inputs[0] in graph.calls[i].inputs]
        bufs.append(Buffer(str(len(bufs)), nbytes, 0, max(readers)))
    if not bufs:
        return scratch, 0, []
    pairs: list[InplacePair] = []
    keys = {k: str(k) for k in range(len(stage) - 1)} | {-1: str(len(stage) - 1)}  # the regions' names
    if windows is not None:
        found = candidates(graph, layers, stage, input_extent is not None)
        if found:
            shifts = pair_shifts(graph, layers, stage, windows, found, stage_layout(layers, list(stage)))
            pairs = choose_pairs(bufs, keys, {k: (found[k][0], shifts[k]) for k in found})
    return scratch, pool_size(bufs, keys, pairs), pairs


def streamed_graph(graph: Graph, layout: str) -> Graph:
    """`graph` with its one input streamed: the stage reads it window by window, packed in
    `layout`, so it has no arena slot (liveness.buffers leaves STREAMED tensors out)."""
    (name,) = graph.inputs
    tensors = {**graph.tensors, name: replace(graph.tensors[name], kind=TensorKind.STREAMED)}
    return replace(graph, tensors=tensors, stream_layout=layout)


def first_input_extent(windows: tuple[dict, ...], plan: PatchPlan) -> tuple[int, int]:
    """(height, width) of the largest window of the stage's first input (the streamed region)."""
    first = plan.stage[0]
    return max(win[first][0].height for win in windows), max(win[first][0].width for win in windows)


def pool_workspace(pool: int) -> int:
    """Arena bytes of the stage kernel's workspace: its pool, one allocation."""
    return workspace_bytes(pool)


def staged_graph(graph: Graph, plan: PatchPlan) -> Graph:
    """`graph` with the stage's calls replaced by one call that reads what the stage reads from
    outside and writes the stage's last output; the stage's intermediates are gone. Activations
    are renumbered t0, t1, ... in call order, as lower.read_program numbers the built program's,
    so the arena planner sees the same buffers under the same names (its ties go by name)."""
    stage = list(plan.stage)
    inner = {graph.calls[i].outputs[0] for i in stage[:-1]}
    ins: list[str] = []
    for i in stage:
        ins += [t for t in graph.calls[i].inputs if t not in inner and t not in ins]
    calls = (Call(STAGE_KERNEL, tuple(ins), graph.calls[stage[-1]].outputs), *graph.calls[len(stage) :])
    new = {o: f"t{n}" for n, o in enumerate(o for c in calls for o in c.outputs)}

    def ids(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new.get(t, t) for t in names)

    tensors = {new.get(n, n): replace(t, name=new.get(n, n)) for n, t in graph.tensors.items() if n not in inner}
    return replace(
        graph,
        calls=tuple(Call(c.kernel, ids(c.inputs), ids(c.outputs)) for c in calls),
        tensors=tensors,
        outputs=ids(graph.outputs),
        inplace={new.get(o, o): new.get(i, i) for o, i in graph.inplace.items()},
        temps={new.get(o, o): b for o, b in graph.temps.items()},
    )
