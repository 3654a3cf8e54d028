"""`--plot profile.png`: bytes live at each layer, per-layer build vs patch build (MCUNetV2 Fig. 1)."""

from __future__ import annotations

from pathlib import Path

from tvm_patch_core import liveness
from tvm_patch_core.graph import Graph
from tvm_patch_core.inplace_rules import choose_inplace, with_inplace

from .rewrite import Lowered
from .targets.build import Built


def layer_profile(graph: Graph, kernel_ws: dict[str, int], stage_layers: int = 0) -> list[int]:
    """Bytes of all arena buffers live at each layer (a patch stage is one call: each of its
    layers shows the stage's bytes, its scratch pool included)."""
    live = liveness.live_bytes(graph, liveness.step_workspaces(graph, kernel_ws))
    if stage_layers:
        live[:1] = live[:1] * stage_layers
    return live


def plot_profile(path: Path, lowered: Lowered, built: Built, cap: int | None, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = built.kernels.workspace
    per_layer_graph = with_inplace(lowered.per_layer.graph, choose_inplace(lowered.per_layer.graph, lowered.layers))
    per_layer = layer_profile(per_layer_graph, ws)
    stage = lowered.program.stage
    patched = layer_profile(lowered.program.graph, ws, len(stage.plan.stage)) if stage is not None else None

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
