"""Static arena planner: every intermediate tensor and kernel workspace gets an offset in one arena.

It replaces TVM's USMP. The caller gives each buffer a size and a lifetime (the first and last
kernel index at which it is live, both inclusive); two buffers conflict when their lifetimes
share a step. The planner then:

1. Rounds every size up to `alignment`, so every offset it hands out is a multiple of it.
2. Merges in-place pairs: a buffer whose `inplace_of` source ends at the step where it begins,
   and is no larger, becomes one block with its source (the union of the two lifetimes) and
   later gets the source's offset. With `inplace_shift` (bytes, rounded up to `alignment`) it
   starts that far below its source instead (above, if negative), whatever its size: a kernel
   whose writes trail its reads by that distance (stage_inplace.py proves it for the patch
   stage's maps); a block's members then sit at fixed distances from each other, the lowest
   at the block's offset. Each source accepts at most one such buffer (the first in input
   order), so chains of pairs share one block; a request that does not qualify is ignored.
   A block's height varies over its lifetime: at each step, the highest end of a member live
   then (a stride-2 depthwise's smaller output frees the rest of its input's bytes as soon as
   the input is dead).
3. Places blocks greedy-by-size, as TFLite Micro's GreedyMemoryPlanner and USMP's
   greedy_by_size do: largest first (ties: longer lifetime, then name), each at the lowest
   offset where it overlaps no already-placed block whose lifetime intersects its own, each
   of the two counted at its height over the steps they share.
4. Runs the same first fit with three more orderings (size x number of conflicts, lifetime
   length, first use), then a bounded deterministic local search from each result: move the
   blocks that reach the arena's top to the front of the ordering and place again, at most
   `LOCAL_SEARCH_STEPS` times or until an ordering repeats. The smallest arena wins.
5. Stops as soon as an arena equals the liveness lower bound (the most aligned bytes live at
   any one step, in-place blocks counted once at their height there): no plan can be smaller.

What it does not do:
- It is a heuristic: the problem (dynamic storage allocation) is NP-hard, and the plan may
  sit above the optimum; it is at most `size - lower_bound` bytes above it.
- It does not reorder kernels or split buffers; lifetimes are taken as given.
- It does not place weights or constants (they stay in flash) or anything of dynamic size.
- It uses one alignment for every buffer, and never lets two live buffers share bytes except
  for the in-place pairs of step 2.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .errors import ArenaOverlapError

ALIGNMENT = 16  # bytes: every offset in the arena, and the runtime's workspace granule

# Per starting ordering. 200 buffers take ~5 ms as a CNN-like chain, ~0.15 s when each meets
# ~40 others, ~0.5 s when each meets ~130 (all 68 first-fit passes run).
LOCAL_SEARCH_STEPS = 16


@dataclass(frozen=True)
class Buffer:
    key: Hashable  # a tensor id (str) or a graph.Workspace
    size: int  # bytes, > 0
    first: int  # first step (kernel index) at which it is live, inclusive
    last: int  # last step at which it is live, inclusive
    inplace_of: Hashable | None = None  # may share the offset of this buffer (see module docstring)
    inplace_shift: int | None = None  # bytes below inplace_of's offset it starts (any size), if set

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"buffer {self.key}: size must be > 0, got {self.size}")
        if self.first > self.last:
            raise ValueError(f"buffer {self.key}: first {self.first} > last {self.last}")

    @property
    def label(self) -> str:
        return str(self.key)


@dataclass(frozen=True)
class Placement:
    buffer: Buffer
    offset: int


@dataclass(frozen=True)
class ArenaPlan:
    placements: tuple[Placement, ...]
    size: int  # arena bytes: max(offset + aligned size)
    lower_bound: int  # most aligned bytes live at any one step
    algorithm: str  # which ordering (and how many local-search moves) won
    alignment: int

    def offset(self, key: Hashable) -> int:
        for p in self.placements:
            if p.buffer.key == key:
                return p.offset
        raise KeyError(f"no buffer {key} in this plan ({len(self.placements)} buffers)")

    def print_plan(self) -> str:
        """A table of the placements, with a timeline column: '#' marks the steps a buffer is live."""
        gap = 100.0 * (self.size - self.lower_bound) / self.lower_bound if self.lower_bound else 0.0
        header = (
            f"arena {self.size} B, lower bound {self.lower_bound} B (+{gap:.1f}%), "
            f"alignment {self.alignment}, {len(self.placements)} buffers, {self.algorithm}"
        )
        if not self.placements:
            return header
        start = min(p.buffer.first for p in self.placements)
        end = max(p.buffer.last for p in self.placements)
        width = max(len("name"), *(len(p.buffer.label) for p in self.placements))
        offsets = {p.buffer.key: p.offset for p in self.placements}
        parent = _inplace_parent([p.buffer for p in self.placements], offsets, self.alignment)
        lines = [header, f"{'name':<{width}}  {'offset':>8}  {'size':>8}  {'steps':>9}  timeline"]
        for p in sorted(self.placements, key=lambda p: (p.offset, p.buffer.first, p.buffer.label)):
            b = p.buffer
            timeline = ""
            if end - start < 80:
                timeline = "".join("#" if b.first <= t <= b.last else "." for t in range(start, end + 1))
            steps = f"{b.first}..{b.last}"
            note = f"  (in place of {parent[b.key]})" if b.key in parent else ""
            lines.append(f"{b.label:<{width}}  {p.offset:>8}  {b.size:>8}  {steps:>9}  {timeline}{note}")
        return "\n".join(lines)

    def check_no_overlap(self) -> None:
        """Raise ArenaOverlapError on a misaligned or out-of-bounds buffer, or two live buffers
        sharing bytes (honoured in-place pairs excepted)."""
        for p in self.placements:
            b = p.buffer
            if p.offset % self.alignment:
                raise ArenaOverlapError(f"buffer {b.label} at offset {p.offset} is not {self.alignment}-byte aligned")
            if p.offset < 0 or p.offset + b.size > self.size:
                raise ArenaOverlapError(
                    f"buffer {b.label} (offset {p.offset}, {b.size} B) lies outside the {self.size} B arena"
                )
        offsets = {p.buffer.key: p.offset for p in self.placements}
        parent = _inplace_parent([p.buffer for p in self.placements], offsets, self.alignment)
        ordered = sorted(self.placements, key=lambda p: p.buffer.first)
        for i, p in enumerate(ordered):
            a = p.buffer
            for q in ordered[i + 1 :]:
                b = q.buffer
                if b.first > a.last:
                    break  # sorted by first: no later buffer is live together with a
                if p.offset + a.size <= q.offset or q.offset + b.size <= p.offset:
                    continue
                if parent.get(a.key) == b.key or parent.get(b.key) == a.key:
                    continue  # an in-place pair, at its distance
                raise ArenaOverlapError(
                    f"buffers {a.label} (offset {p.offset}, {a.size} B, steps "
                    f"{a.first}..{a.last}) and {b.label} (offset {q.offset}, {b.size} B, steps "
                    f"{b.first}..{b.last}) are both live at steps {max(a.first, b.first)}.."
                    f"{min(a.last, b.last)} and share bytes "
                    f"[{max(p.offset, q.offset)}, {min(p.offset + a.size, q.offset + b.size)})"
                )


def _align(size: int, alignment: int) -> int:
    return -(-size // alignment) * alignment


def _root(parent: dict[Hashable, Hashable], key: Hashable) -> Hashable:
    while key in parent:
        key = parent[key]
    return key


def _shift(b: Buffer, alignment: int) -> int:
    return _align(b.inplace_shift, alignment) if b.inplace_shift else 0


def _inplace_parent(
    buffers: Sequence[Buffer], offsets: dict[Hashable, int] | None = None, alignment: int = ALIGNMENT
) -> dict[Hashable, Hashable]:
    """Map each honoured in-place buffer's key to its source's key (step 2 of the docstring);
    with `offsets`, only pairs placed at their distance (the shift, or the same offset) count."""
    by_key = {b.key: b for b in buffers}
    parent: dict[Hashable, Hashable] = {}
    claimed: set[Hashable] = set()
    for b in buffers:
        src = by_key.get(b.inplace_of) if b.inplace_of is not None else None
        if (
            src is not None
            and src.last == b.first
            and (b.size <= src.size or b.inplace_shift is not None)
            and src.key not in claimed
            and _root(parent, src.key) != b.key  # no cycles
            and (offsets is None or offsets[src.key] - offsets[b.key] == _shift(b, alignment))
        ):
            parent[b.key] = src.key
            claimed.add(src.key)
    return parent


def _blocks(buffers: Sequence[Buffer], alignment: int) -> list[tuple[list[Buffer], dict[int, int], dict]]:
    """Group buffers into placement blocks: (members, height per live step, member -> its
    offset in the block)."""
    if alignment <= 0:
        raise ValueError(f"alignment must be > 0, got {alignment}")
    keys = [b.key for b in buffers]
    if len(set(keys)) != len(keys):
        dup = sorted({str(k) for k in keys if keys.count(k) > 1})
        raise ValueError(f"buffer keys must be unique, repeated: {dup}")
    parent = _inplace_parent(buffers, alignment=alignment)
    by_key = {b.key: b for b in buffers}
    groups: dict[Hashable, list[Buffer]] = {}
    for b in buffers:
        groups.setdefault(_root(parent, b.key), []).append(b)

    def rel(key: Hashable) -> int:  # offset from the root's, <= 0
        return rel(parent[key]) - _shift(by_key[key], alignment) if key in parent else 0

    blocks = []
    for members in groups.values():
        base = min(rel(m.key) for m in members)
        at = {m.key: rel(m.key) - base for m in members}
        height: dict[int, int] = {}
        for m in members:
            for step in range(m.first, m.last + 1):
                height[step] = max(height.get(step, 0), at[m.key] + _align(m.size, alignment))
        blocks.append((members, height, at))
    return blocks


def liveness_lower_bound(buffers: Sequence[Buffer], alignment: int = ALIGNMENT) -> int:
    """Most aligned bytes live at any one step; in-place pairs count once. No plan is smaller."""
    return max(live_per_step(buffers, alignment).values(), default=0)


def _first_fit(order: Sequence[int], conflicts: list[list[tuple[int, int, int]]]) -> list[int]:
    """Place blocks in `order`, each at the lowest offset clear of its placed conflicts;
    conflicts[i] holds (j, height of i, height of j) over the steps i and j share."""
    offsets = [-1] * len(conflicts)
    for i in order:
        busy = sorted((offsets[j], offsets[j] + hj, hi) for j, hi, hj in conflicts[i] if offsets[j] >= 0)
        offset, moved = 0, True
        while moved:  # every offset skipped overlaps some placed block, so the result is the lowest
            moved = False
            for lo, end, need in busy:
                if offset < end and offset + need > lo:
                    offset, moved = end, True
        offsets[i] = offset
    return offsets


def plan_arena(buffers: Sequence[Buffer], alignment: int = ALIGNMENT) -> ArenaPlan:
    """Give every buffer an offset in one arena (algorithm in the module docstring)."""
    blocks = _blocks(buffers, alignment)
    lower_bound = liveness_lower_bound(buffers, alignment)
    n = len(blocks)
    heights = [h for _, h, _ in blocks]
    sizes = [max(h.values()) for h in heights]
    firsts = [min(h) for h in heights]
    lasts = [max(h) for h in heights]
    names = [members[0].label for members, _, _ in blocks]
    conflicts: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            lo, hi = max(firsts[i], firsts[j]), min(lasts[i], lasts[j])
            if lo <= hi:
                hi_i = max(heights[i][s] for s in range(lo, hi + 1))
                hi_j = max(heights[j][s] for s in range(lo, hi + 1))
                conflicts[i].append((j, hi_i, hi_j))
                conflicts[j].append((i, hi_j, hi_i))

    def length(i: int) -> int:
        return lasts[i] - firsts[i]

    orderings = {
        "greedy-by-size": lambda i: (-sizes[i], -length(i), names[i]),
        "greedy-by-conflicts": lambda i: (-sizes[i] * len(conflicts[i]), -sizes[i], names[i]),
        "greedy-by-lifetime": lambda i: (-length(i), -sizes[i], names[i]),
        "greedy-by-first-use": lambda i: (firsts[i], -sizes[i], names[i]),
    }
    best: tuple[int, list[int], str] | None = None
    for label, key in orderings.items():
        order = sorted(range(n), key=key)
        seen: set[tuple[int, ...]] = set()
        for step in range(LOCAL_SEARCH_STEPS + 1):
            offsets = _first_fit(order, conflicts)
            top = max((o + s for o, s in zip(offsets, sizes, strict=False)), default=0)
            if best is None or top < best[0]:
                moves = f"{step} move" + ("s" if step > 1 else "")
                name = label if step == 0 else f"{label} + local search ({moves})"
                best = (top, offsets, name)
            if best[0] == lower_bound:
                break
            seen.add(tuple(order))
            at_top = [i for i in order if offsets[i] + sizes[i] == top]
            order = at_top + [i for i in order if offsets[i] + sizes[i] != top]
            if tuple(order) in seen:
                break
        if best[0] == lower_bound:
            break

    size, offsets, algorithm = best if best is not None else (0, [], "empty")
    offset_of = {m.key: offsets[i] + at[m.key] for i, (members, _, at) in enumerate(blocks) for m in members}
    placements = tuple(Placement(b, offset_of[b.key]) for b in buffers)
    return ArenaPlan(placements, size, lower_bound, algorithm, alignment)


def live_per_step(buffers: Sequence[Buffer], alignment: int = ALIGNMENT) -> dict[int, int]:
    """Aligned bytes live at each step (in-place pairs counted once): the lower bound's terms."""
    live: dict[int, int] = {}
    for _, height, _ in _blocks(buffers, alignment):
        for step, h in height.items():
            live[step] = live.get(step, 0) + h
    return live
