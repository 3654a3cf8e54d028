"""`--plot profile.png`: bytes live at each layer, per-layer build vs patch build (MCUNetV2 Fig. 1),
layer names on the axis and each build's peak labelled, beside the planner's Pareto front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvm_patch_core import liveness
from tvm_patch_core.graph import Graph
from tvm_patch_core.inplace_rules import choose_inplace, with_inplace
from tvm_patch_core.layers import Layer

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

    front = lowered.choice.front if lowered.choice is not None else ()
    fig, axes = plt.subplots(1, 2 if front else 1, figsize=(14 if front else 10, 4.6), dpi=120, squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1.2] if front else [1]})  # fmt: skip
    ax = axes[0][0]
    x = range(len(per_layer))
    ax.bar(x, [b / 1024 for b in per_layer], color="#c9d6e8", label="per-layer build")
    _label_peak(ax, per_layer, "#5d7ba8")
    if patched is not None:
        shown_patched = patched[: len(per_layer)]
        ax.bar(x, [b / 1024 for b in shown_patched], width=0.5, color="#2e6fbf", label="patch build")
        _label_peak(ax, shown_patched, "#2e6fbf")
    if cap is not None:
        ax.axhline(cap / 1024, color="#c0392b", linestyle="--", label=f"SRAM cap {cap / 1024:.0f} KiB")
    ax.set_ylabel("bytes live (KiB)")
    ax.set_title(title)
    ax.set_xticks(list(x))
    ax.set_xticklabels([_axis_name(layer) for layer in lowered.layers], fontsize=6, rotation=90)
    ax.legend()
    if front:
        _plot_front(axes[0][1], lowered, cap)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _axis_name(layer: Layer) -> str:
    """A layer on the axis: its index and what it is ("3 dw 3x3/2", "4 conv 1x1", "9 add")."""
    op = layer.op.removeprefix("nn.")
    if op == "conv2d":
        op = "dw" if layer.groups > 1 else "conv"
    shape = f" {layer.kernel[0]}x{layer.kernel[1]}" if len(layer.kernel) == 2 else ""
    stride = f"/{layer.strides[0]}" if layer.strides and layer.strides[0] > 1 else ""
    return f"{layer.index} {op}{shape}{stride}"


def _label_peak(ax: Any, live: list[int], color: str) -> None:
    peak = max(range(len(live)), key=lambda i: live[i])
    ax.annotate(f"peak {live[peak]:,} B", (peak, live[peak] / 1024), textcoords="offset points", xytext=(4, 4),
                fontsize=7, color=color)  # fmt: skip


def _plot_front(ax: Any, lowered: Lowered, cap: int | None) -> None:
    """The planner's Pareto front: arena vs extra MACs, the built plan marked."""
    choice = lowered.choice
    total = max(sum(layer.macs for layer in lowered.layers), 1)
    xs = [100 * p.extra_macs / total for p in choice.front]
    ys = [p.arena_bytes / 1024 for p in choice.front]
    ax.step(xs, ys, where="post", color="#9aa9bd")
    ax.scatter(xs, ys, s=14, color="#2e6fbf", zorder=3)
    for p, px, py in zip(choice.front, xs, ys, strict=True):
        if p.extra_macs == choice.extra_macs and p.grid == choice.plan.grid and p.split == len(choice.plan.stage):
            ax.scatter([px], [py], s=60, facecolors="none", edgecolors="#c0392b", zorder=4)
            ax.annotate(f"built: {p.split} layers, {p.grid[0]}x{p.grid[1]}", (px, py), textcoords="offset points",
                        xytext=(6, 6), fontsize=7, color="#c0392b")  # fmt: skip
    if cap is not None:
        ax.axhline(cap / 1024, color="#c0392b", linestyle="--")
    ax.set_xlabel("extra MACs (% of the model)")
    ax.set_ylabel("planned arena (KiB)")
    ax.set_title("planner's Pareto front", fontsize=9)
