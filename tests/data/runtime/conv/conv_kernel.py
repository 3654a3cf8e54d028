"""Builds the TVM kernel behind the "conv" test model, and its numpy reference.

Used by the host and QEMU runtime tests: C-backend source (``kind="c"``) or an
LLVM object for a Cortex-M target dict (``Board.llvm_target``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N, C, H, W, K = 1, 3, 8, 8, 4


def _module():
    import tvm
    from tvm import te

    a = te.placeholder((N, C, H, W), name="A")
    w = te.placeholder((K, C, 3, 3), name="W")

    def inside(h, w_):
        return tvm.tirx.all(h >= 1, h <= H, w_ >= 1, w_ <= W)

    pad = te.compute(
        (N, C, H + 2, W + 2),
        lambda n, c, h, x: tvm.tirx.if_then_else(inside(h, x), a[n, c, h - 1, x - 1], 0.0),
        name="pad",
    )
    rc, ry, rx = te.reduce_axis((0, C)), te.reduce_axis((0, 3)), te.reduce_axis((0, 3))
    b = te.compute(
        (N, K, H, W),
        lambda n, k, h, x: te.sum(pad[n, rc, h + ry, x + rx] * w[k, rc, ry, rx], axis=[rc, ry, rx]),
        name="B",
    )
    func = te.create_prim_func([a, w, b]).with_attr("global_symbol", "conv")
    return tvm.IRModule({"conv": func})


def build_kernel(target: dict, out_dir: Path) -> Path:
    """kernels.c for {"kind": "c"}, kernels.o for an LLVM target dict."""
    import tvm

    lib = tvm.tirx.build(_module(), tvm.target.Target(dict(target)))
    if target["kind"] == "c":
        path = out_dir / "kernels.c"
        path.write_text(lib.inspect_source())
    else:
        path = out_dir / "kernels.o"
        lib.write_to_file(str(path))
    return path


def inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    return a, w


def reference(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    padded = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((N, K, H, W), np.float32)
    for ky in range(3):
        for kx in range(3):
            window = padded[:, :, ky : ky + H, kx : kx + W]
            out += np.einsum("nchw,kc->nkhw", window, w[:, :, ky, kx])
    return out
