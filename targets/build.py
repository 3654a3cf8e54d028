"""Build a program for a board: kernels, arena, C, ELF.

build_kernels -> step workspaces -> plan the arena (checked: no overlap, fits the board and
the cap) -> emit the C (kernel arguments checked against the kernels' parameters) -> compile
and link with the runtime
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tvm

from tvm_patch_core import liveness
from tvm_patch_core.arena import ArenaPlan
from tvm_patch_core.boards import Board
from tvm_patch_core.errors import ArenaTooLarge, FlashTooLarge
from tvm_patch_core.graph import Graph, TensorKind
from tvm_patch_core.options import KernelBackend, KernelCalls

from .emit_c import EmittedModel, emit_model
from .kernels import Kernels, build_kernels
from .toolchain import build_elf, elf_sizes


@dataclass(frozen=True)
class Built:
    kernels: Kernels
    workspace: dict[int, int]  # step -> workspace bytes of the kernel it runs
    plan: ArenaPlan
    emitted: EmittedModel
    elf: Path

    @property
    def sources(self) -> list[Path]:
        return [*self.emitted.files, *self.kernels.sources]


def build_program(
    graph: Graph,
    kernels: tvm.IRModule,
    board: Board,
    backend: KernelBackend,
    name: str,
    out_dir: Path,
    labels: tuple[Sequence[str], Sequence[str]] = ((), ()),
    sram_cap: int | None = None,
    calls: KernelCalls = KernelCalls.DIRECT,
) -> Built:
    """Write `out_dir/src` (the C) and `out_dir/model.elf`; `name` is the model's identifier,
    `labels` its input and output names for the header's comments."""
    src = out_dir / "src"
    check_flash(name, board, weight_bytes(graph))  # before the long build: the weights alone
    built = build_kernels(kernels, board, backend, src, calls)  # C source or LLVM object
    check_flash(name, board, weight_bytes(graph), sum(elf_sizes(o)["flash"] for o in built.objects))
    workspace = liveness.step_workspaces(graph, built.workspace)
    plan = liveness.plan(graph, workspace)  # one static arena, offsets planned
    plan.check_no_overlap()
    check_fits(name, plan.size, board, sram_cap)
    emitted = emit_model(graph, plan, workspace, name, src, labels, calls, built.signatures)  # calls + arena
    elf = build_elf(board, [*emitted.files, *built.sources], built.objects, out_dir / "model.elf", [src])
    return Built(built, workspace, plan, emitted, elf)


def weight_bytes(graph: Graph) -> int:
    """Flash the weights take as the emitter writes them (whole words, 16-byte aligned)."""
    return sum(-(-t.nbytes // 16) * 16 for t in graph.tensors.values() if t.kind is TensorKind.WEIGHT)


def check_flash(model: str, board: Board, weights: int, kernels: int = 0) -> None:
    """Refuse a program whose weights (and kernel objects) alone exceed the board's flash."""
    if board.flash_bytes is None or weights + kernels <= board.flash_bytes:
        return
    code = f" and its kernels {kernels:,} B" if kernels else ""
    raise FlashTooLarge(
        f"{model}: the weights need {weights:,} B{code}, but {board.name} has {board.flash_bytes:,} B of flash; "
        "compile an int8 model (integer weights take a quarter of float32's), or a board with more flash"
    )


def check_fits(model: str, arena: int, board: Board, sram_cap: int | None) -> None:
    if board.ram_bytes is not None and arena > board.ram_bytes:
        raise ArenaTooLarge(
            f"{model}: the arena needs {arena:,} bytes but {board.name} has {board.ram_bytes:,} bytes "
            "of RAM; try --pass patch or a board with more RAM"
        )
    if sram_cap is not None and arena > sram_cap:
        raise ArenaTooLarge(
            f"{model}: the arena needs {arena:,} bytes, over --sram-cap {sram_cap:,} bytes; try --pass patch"
        )
