"""Static arena planner: exact offsets, no overlaps, in-place pairs, alignment, lower bound."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from tvm_patch_core.arena import ArenaPlan, Buffer, Placement, liveness_lower_bound, plan_arena
from tvm_patch_core.errors import ArenaOverlapError, TvmPatchError


def _assert_disjoint_per_step(plan: ArenaPlan) -> None:
    """Independent of check_no_overlap: at every step, the live buffers' byte ranges are disjoint."""
    steps = {t for p in plan.placements for t in range(p.buffer.first, p.buffer.last + 1)}
    for t in steps:
        live = sorted(
            (p.offset, p.offset + p.buffer.size, p.buffer.key)
            for p in plan.placements
            if p.buffer.first <= t <= p.buffer.last
        )
        for (_, end, a), (start, _, b) in itertools.pairwise(live):
            assert end <= start, f"step {t}: {a} ends at {end}, {b} starts at {start}"


def test_exact_offsets_small_example() -> None:
    """A conv - conv - add block, alignment 16; greedy-by-size already meets the lower bound.

    Aligned sizes: conv1 304, add 208, input 112, conv2 64, ws 32. Greedy-by-size order:
    conv1 (largest) at 0; add (live 3..4, meets conv1 at step 3) above it at 304; input
    (0..1, meets conv1 at step 1 but not add) also at 304; conv2 (2..2, meets conv1) at 304;
    ws (2..2, meets conv1 and conv2, [304, 368)) at 368. Arena = 304 + 208 = 512, which is
    what is live at step 3 (conv1 + add), so it is optimal and the search stops there.
    """
    buffers = [
        Buffer("input", 100, 0, 1),
        Buffer("conv1", 300, 1, 3),
        Buffer("conv2", 64, 2, 2),
        Buffer("ws", 20, 2, 2),
        Buffer("add", 200, 3, 4),
    ]
    plan = plan_arena(buffers, alignment=16)
    plan.check_no_overlap()
    offsets = {p.buffer.key: p.offset for p in plan.placements}
    assert offsets == {"conv1": 0, "add": 304, "input": 304, "conv2": 304, "ws": 368}
    assert plan.offset("ws") == 368
    assert plan.size == plan.lower_bound == 512
    assert plan.algorithm == "greedy-by-size"
    assert [p.buffer for p in plan.placements] == buffers  # placements keep input order


@pytest.mark.parametrize("seed", range(300))
def test_random_intervals_never_overlap(seed: int) -> None:
    rng = random.Random(seed)
    alignment = rng.choice([1, 4, 16, 64])
    buffers = []
    for i in range(rng.randint(1, 40)):
        first = rng.randint(0, 20)
        buffers.append(Buffer(f"t{i}", rng.randint(1, 5000), first, first + rng.randint(0, 6)))
    plan = plan_arena(buffers, alignment)
    plan.check_no_overlap()
    _assert_disjoint_per_step(plan)
    assert plan.size >= plan.lower_bound == liveness_lower_bound(buffers, alignment)
    assert len(plan.placements) == len(buffers)


@pytest.mark.parametrize("seed", range(100))
def test_random_inplace_requests_never_overlap(seed: int) -> None:
    """Random in-place requests, qualifying or not: the plan stays valid either way."""
    rng = random.Random(1000 + seed)
    buffers: list[Buffer] = []
    for i in range(rng.randint(2, 30)):
        first = rng.randint(0, 12)
        source = rng.choice(buffers).key if buffers and rng.random() < 0.4 else None
        buffers.append(Buffer(f"t{i}", rng.randint(1, 3000), first, first + rng.randint(0, 4), source))
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    assert plan.size >= plan.lower_bound


def test_improvement_beats_greedy_by_size() -> None:
    """A 4-layer chain (alignment 1) where plain greedy-by-size wastes a byte.

    Greedy-by-size: b0 (10) at 0; b3 (9, no conflict with b0) at 0; b2 (5, meets b3) at 9,
    i.e. [9, 14); b1 (1, meets b0 [0, 10) and b2 [9, 14)) finds no gap below 14 -> arena 15.
    The lower bound is 14 (b2 + b3 at step 3) and is reachable: b1 [0, 1), b0 [1, 11),
    b3 [0, 9), b2 [9, 14). The improvement step must find a 14-byte plan.
    """
    buffers = [Buffer(f"b{i}", s, i, i + 1) for i, s in enumerate([10, 1, 5, 9])]
    plan = plan_arena(buffers, alignment=1)
    plan.check_no_overlap()
    assert plan.lower_bound == 14
    assert plan.size == 14
    assert plan.algorithm != "greedy-by-size"


def test_check_no_overlap_rejects_overlapping_plan() -> None:
    a = Buffer("a", 64, 0, 2)
    b = Buffer("b", 64, 2, 3)  # both live at step 2
    plan = ArenaPlan((Placement(a, 0), Placement(b, 32)), 96, 128, "hand-made", 16)
    with pytest.raises(ArenaOverlapError, match=r"buffers a \(offset 0, 64 B, steps 0..2\) and b "):
        plan.check_no_overlap()
    assert issubclass(ArenaOverlapError, TvmPatchError)
    # The same offsets are fine when the lifetimes do not meet.
    c = Buffer("c", 64, 3, 3)
    ArenaPlan((Placement(a, 0), Placement(c, 32)), 96, 64, "hand-made", 16).check_no_overlap()


def test_check_no_overlap_rejects_misaligned_and_out_of_bounds() -> None:
    a = Buffer("a", 64, 0, 0)
    with pytest.raises(ArenaOverlapError, match="not 16-byte aligned"):
        ArenaPlan((Placement(a, 8),), 80, 64, "hand-made", 16).check_no_overlap()
    with pytest.raises(ArenaOverlapError, match="outside the 64 B arena"):
        ArenaPlan((Placement(a, 16),), 64, 64, "hand-made", 16).check_no_overlap()


def test_inplace_buffers_share_offset_and_count_once() -> None:
    """relu runs in place on conv's output: one 256-byte slot over steps 0..2, beside skip."""
    buffers = [
        Buffer("conv", 256, 0, 1),
        Buffer("relu", 200, 1, 2, inplace_of="conv"),
        Buffer("skip", 128, 0, 2),
    ]
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    assert plan.offset("relu") == plan.offset("conv")
    assert plan.lower_bound == liveness_lower_bound(buffers) == 256 + 128  # not 256 + 208 + 128
    assert plan.size == 384


@pytest.mark.parametrize(
    "late",
    [
        Buffer("relu", 300, 1, 2, inplace_of="conv"),  # larger than its source
        Buffer("relu", 200, 2, 3, inplace_of="conv"),  # starts after the source ends
        Buffer("relu", 200, 1, 2, inplace_of="missing"),  # no such buffer
    ],
)
def test_inplace_request_ignored_when_it_does_not_qualify(late: Buffer) -> None:
    buffers = [Buffer("conv", 256, 0, 1), late]
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    if late.first <= 1:  # live together with conv at step 1: must not share its bytes
        assert plan.offset("relu") != plan.offset("conv")


def test_inplace_source_taken_once() -> None:
    """Two buffers ask for conv's bytes at the same step: only the first (input order) gets them."""
    buffers = [
        Buffer("conv", 256, 0, 1),
        Buffer("relu_a", 128, 1, 2, inplace_of="conv"),
        Buffer("relu_b", 128, 1, 2, inplace_of="conv"),
    ]
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    assert plan.offset("relu_a") == plan.offset("conv") != plan.offset("relu_b")
    assert "(in place of conv)" in plan.print_plan().splitlines()[3]  # relu_a's row
    assert plan.lower_bound == 256 + 128


@pytest.mark.parametrize("alignment", [1, 8, 16, 64])
def test_alignment_respected(alignment: int) -> None:
    buffers = [Buffer(f"t{i}", 13 * i + 5, i, i + 2) for i in range(8)]  # odd sizes
    plan = plan_arena(buffers, alignment)
    plan.check_no_overlap()
    assert all(p.offset % alignment == 0 for p in plan.placements)
    assert plan.size % alignment == 0 and plan.lower_bound % alignment == 0


def test_alignment_must_be_positive() -> None:
    with pytest.raises(ValueError, match="alignment must be > 0"):
        plan_arena([Buffer("a", 1, 0, 0)], alignment=0)


# int8 activations of a small MobileNet-like CNN, 96x96x3 input down to 1000 logits.
CNN_ACTIVATIONS = [27648, 36864, 73728, 18432, 36864, 9216, 18432, 4608, 9216, 2304, 1000]


def test_chain_of_layers_meets_lower_bound() -> None:
    """Layer i's output is live at steps i..i+1. A chain always has a plan at the bound (even
    layers at the bottom, odd ones flush with the top), so the planner must find one."""
    buffers = [Buffer(f"act{i}", s, i, i + 1) for i, s in enumerate(CNN_ACTIVATIONS)]
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    assert plan.lower_bound == 36864 + 73728  # act1 + act2, live together at step 2
    assert plan.size == plan.lower_bound


@pytest.mark.parametrize("seed", range(50))
def test_random_chains_meet_lower_bound(seed: int) -> None:
    rng = random.Random(2000 + seed)
    sizes = [rng.randint(1, 100_000) for _ in range(rng.randint(2, 40))]
    plan = plan_arena([Buffer(f"act{i}", s, i, i + 1) for i, s in enumerate(sizes)])
    assert plan.size == plan.lower_bound


def test_print_plan_lists_names_and_sizes() -> None:
    buffers = [Buffer("input", 100, 0, 1), Buffer("conv1", 300, 1, 2), Buffer("out", 40, 2, 3)]
    plan = plan_arena(buffers)
    text = plan.print_plan()
    assert f"arena {plan.size} B" in text and f"lower bound {plan.lower_bound} B" in text
    for b in buffers:
        assert b.key in text and str(b.size) in text
    assert ".##." in text  # conv1's timeline over steps 0..3


def test_offset_of_unknown_buffer() -> None:
    with pytest.raises(KeyError, match="no buffer nope"):
        plan_arena([Buffer("a", 1, 0, 0)]).offset("nope")


def test_empty_plan() -> None:
    plan = plan_arena([])
    assert plan.size == plan.lower_bound == 0
    plan.check_no_overlap()
    assert "arena 0 B" in plan.print_plan()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Buffer("a", 0, 0, 0), "size must be > 0"),
        (lambda: Buffer("a", 8, 3, 2), "first 3 > last 2"),
        (lambda: plan_arena([Buffer("a", 8, 0, 0), Buffer("a", 8, 1, 1)]), "repeated: \\['a'\\]"),
    ],
)
def test_rejects_bad_input(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_two_hundred_buffers_plan_without_overlap() -> None:
    """A large, heavily overlapping case (~40 conflicts each) still plans correctly.

    Planning speed is a benchmark concern, not a test: tests never check wall-clock time.
    """
    rng = random.Random(7)
    buffers = []
    for i in range(200):
        first = rng.randint(0, 200)
        buffers.append(Buffer(f"t{i}", rng.randint(1, 100_000), first, first + rng.randint(0, 40)))
    plan = plan_arena(buffers)
    plan.check_no_overlap()
    assert plan.size >= plan.lower_bound


def test_inplace_block_shrinks_when_its_large_source_dies():
    """A stride-2 depthwise writes a quarter-size output over its input: once the input is
    dead, the bytes above the output are free for the next buffer (MobileNetV2 int8's block 2)."""
    src = Buffer("dw_in", 1024, 0, 1)
    out = Buffer("dw_out", 256, 1, 2, inplace_of="dw_in")
    nxt = Buffer("next", 512, 2, 3)
    plan = plan_arena([src, out, nxt])
    assert plan.lower_bound == 1024 and plan.size == 1024
    assert plan.offset("dw_out") == plan.offset("dw_in")
    plan.check_no_overlap()
