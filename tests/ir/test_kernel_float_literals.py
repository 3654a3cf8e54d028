"""The C kernels keep every float32 constant exact.

TVM's C codegen prints float immediates with 7 significant digits (std::scientific); float32
needs 9. A quantize scale of 3/255 became 1.176471e-02f, 3e-7 away, and the host build rounded
int8 ties differently from the LLVM build and onnxruntime (fuzzer seed 392). build_kernels
rewrites each literal from the kernels' own constants.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import te

from tvm_patch.targets.kernels import exact_float_literals

SCALE = float(np.float32(3 / 255))  # 0.0117647061124444: int8 scale of a [0, 3] range


def quantize_kernel() -> tvm.IRModule:
    x = te.placeholder((8,), name="x")
    q = te.compute((8,), lambda i: tvm.te.round(x[i] / tvm.tirx.const(SCALE, "float32")), name="q")
    return tvm.IRModule({"k": te.create_prim_func([x, q]).with_attr("global_symbol", "k")})


def test_tvm_prints_seven_digits():
    """What the rewrite is for: if TVM ever prints round-trip digits, it can go."""
    src = tvm.tirx.build(quantize_kernel(), tvm.target.Target({"kind": "c"})).inspect_source()
    assert "1.176471e-02f" in src and np.float32(1.176471e-02) != np.float32(SCALE)


def test_literals_are_rewritten_exactly():
    mod = quantize_kernel()
    src = exact_float_literals(tvm.tirx.build(mod, tvm.target.Target({"kind": "c"})).inspect_source(), mod)
    assert "1.176471e-02f" not in src and "1.17647061e-02f" in src
    assert np.float32(1.17647061e-02) == np.float32(SCALE)


def test_a_literal_two_constants_share_is_left_alone():
    """Two float32 values that print alike in 7 digits: nothing tells which one a literal is."""
    a, b = float(np.float32(SCALE)), float(np.nextafter(np.float32(SCALE), np.float32(1)))
    x = te.placeholder((8,), name="x")
    y = te.compute((8,), lambda i: x[i] * tvm.tirx.const(a, "float32") + tvm.tirx.const(b, "float32"), name="y")
    mod = tvm.IRModule({"k": te.create_prim_func([x, y]).with_attr("global_symbol", "k")})
    src = tvm.tirx.build(mod, tvm.target.Target({"kind": "c"})).inspect_source()
    assert exact_float_literals(src, mod) == src
