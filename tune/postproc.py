"""SramCap: a MetaSchedule postprocessor that rejects candidates whose workspace breaks the cap.

Modelled on MetaSchedule's VerifyVTCMLimit: lower the candidate far enough that buffer
allocations are final (TVM's own VTCM compaction passes), add up the bytes it allocates and
compare with the kernel's budget, the cap minus what the arena already holds at that
kernel's step (tune/tasks.py). Every allocation is counted and rounded up to the runtime's
16-byte workspace granule, plus one granule each: an upper bound on what the arena will
reserve (allocations small enough for the stack count too).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import SBlockRealize, Schedule
from tvm.s_tir.analysis import calculate_allocated_bytes, get_vtcm_compaction_passes
from tvm.s_tir.meta_schedule.postproc import PyPostproc

from tvm_patch_core.arena import ALIGNMENT


def workspace_bytes(mod: tvm.IRModule) -> int:
    """Bytes the scheduled `main` allocates, rounded up per allocation (an upper bound)."""
    root = mod["main"].body
    count = len(root.block.alloc_buffers) if isinstance(root, SBlockRealize) else 1
    lowered = tvm.transform.Sequential(list(get_vtcm_compaction_passes()))(mod)
    per_scope = calculate_allocated_bytes(lowered["main"])
    total = sum(int(n) for scopes in per_scope.values() for n in scopes.values())
    return -(-total // ALIGNMENT) * ALIGNMENT + ALIGNMENT * count


@dataclass
class Rejections:
    """How many candidates the cap rejected, per task (shared by a task's postproc clones)."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, task: str) -> None:
        with self.lock:
            self.counts[task] = self.counts.get(task, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@derived_object
class SramCap(PyPostproc):
    """Reject a schedule whose workspace exceeds `budget` bytes."""

    def __init__(self, task: str, budget: int, rejections: Rejections) -> None:
        super().__init__()
        self.task, self.budget, self.rejections = task, budget, rejections

    def _initialize_with_tune_context(self, context: object) -> None:
        pass

    def apply(self, sch: Schedule) -> bool:
        if workspace_bytes(sch.mod) <= self.budget:
            return True
        self.rejections.add(self.task)
        return False

    def clone(self) -> SramCap:
        return SramCap(self.task, self.budget, self.rejections)
