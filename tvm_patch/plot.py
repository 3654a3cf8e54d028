"""`--plot profile.png`: bytes live at each layer, per-layer build vs patch build (MCUNetV2 Fig. 1)."""

from __future__ import annotations

from pathlib import Path

from .layers import Layer
from .liveness import program_buffers, step_workspaces
from .lower import Program


def live_bytes(program: Program, kernel_ws: dict[str, int]) -> list[int]:
    """Bytes of all arena buffers live at each layer (a patch stage is one kernel call: each
    of its layers shows the stage's bytes, its scratch pool included)."""
    buffers = program_buffers(program, step_workspaces(program, kernel_ws))
    steps = max(b.last for b in buffers) + 1
    live = [sum(b.size for b in buffers if b.first <= i <= b.last) for i in range(steps)]
    if program.stage is not None:
        live[:1] = live[:1] * len(program.stage.plan.stage)
    return live


def plot_profile(path: Path, layers: list[Layer], per_layer: list[int], patched: list[int] | None,
                 cap: int | None, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=120)
    x = range(len(per_layer))
    ax.bar(x, [b / 1024 for b in per_layer], color="#c9d6e8", label="per-layer build")
    if patched is not None:
        ax.bar(x, [b / 1024 for b in patched[: len(per_layer)]], width=0.5, color="#2e6fbf", label="patch build")
    if cap is not None:
        ax.axhline(cap / 1024, color="#c0392b", linestyle="--", label=f"SRAM cap {cap / 1024:.0f} KiB")
    ax.set_xlabel("layer")
    ax.set_ylabel("bytes live (KiB)")
    ax.set_title(title)
    ax.set_xticks(list(x))
    ax.set_xticklabels([str(i) for i in x], fontsize=7)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
