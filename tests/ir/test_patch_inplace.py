"""PatchTIR's in-place pairs (passes/patch_inplace.py): a nest writes its map over the
region of the map it reads, `shift` bytes below it (forward loops) or with its loops run
backwards. Before/Expected on the streamed conv chain of test_patch_tir: conv1 (4 -> 8
channels, 3x3) writes over the streamed input's window.

- a shift the loops do not allow is refused, and the refusal names the shift they need;
- with that shift, forward or backwards, the output is the function computed whole, and the
  pool is smaller than with every map in a region of its own.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm

from tests.ir.test_patch_tir import conv_chain, run, with_reads_as_copies
from tvm_patch.passes.inline_kernels import schedule_kernel
from tvm_patch.passes.patch_tir import patch_tile
from tvm_patch_core.errors import PatchTIRError

TILES = ([(0, 8), (8, 16)], [(0, 8), (8, 16)])


def tiled(pairs):
    return patch_tile(schedule_kernel(conv_chain()["chain"]), *TILES, "NHWC", "x", pairs)


def needed(pair) -> int:
    with pytest.raises(PatchTIRError, match="in place: loop nest 0 needs its map") as err:
        tiled([pair])
    return int(re.search(r"(at least|at most) (-?\d+) B", str(err.value)).group(2))


@pytest.mark.parametrize("reverse", [0, 1])
def test_a_pair_computes_the_same_in_a_smaller_pool(reverse):
    shift = needed((0, -1, -4096, 0)) if not reverse else needed((0, -1, 4096, 1))
    alone = tiled([])
    paired = tiled([(0, -1, -(-shift // 16) * 16 if not reverse else (shift // 16) * 16, reverse)])
    assert int(paired.attrs["patch_scratch_bytes"]) < int(alone.attrs["patch_scratch_bytes"])
    mod = tvm.IRModule({"chain": with_reads_as_copies(paired, "NHWC", 4)})
    np.testing.assert_allclose(run(mod), run(conv_chain()), rtol=1e-5, atol=1e-5)


def test_backwards_loops_run_from_the_last_row():
    """Backwards, conv1's loops over rows, columns and channels run last value first; its
    reduction loops (rv*) are left as they were, so every sum adds in the same order."""
    shift = needed((0, -1, 4096, 1))
    text = tiled([(0, -1, (shift // 16) * 16, 1)]).script()
    assert "ph * 7 + ph * 7 + 9 - 1 - h" in text and "pw * 7 + pw * 7 + 9 - 1 - ww" in text
    assert "w1[rv, rv_1, rv_2, 7 - c]" in text


def test_a_pair_without_a_source_region_is_refused():
    with pytest.raises(PatchTIRError, match=r"no pair \(3, -1\)"):
        tiled([(3, -1, 0, 0)])
