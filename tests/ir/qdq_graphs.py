"""Small Relax graphs in the QDQ form TVM's TFLite frontend writes (before FoldConstant), built
with a BlockBuilder, for the Before / Expected cases of the integer passes' tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax


def f32(v) -> relax.Constant:
    return relax.const(np.asarray(v, dtype=np.float32), "float32")


def i32(v) -> relax.Constant:
    return relax.const(np.asarray(v, dtype=np.int32), "int32")


def deq(x: relax.Expr, scale, zp, axis: int = 0) -> relax.Expr:
    return relax.op.dequantize(x, f32(scale), i32(zp), axis=axis, out_dtype="float32")


def quant(x: relax.Expr, scale, zp) -> relax.Expr:
    return relax.op.quantize(x, f32(scale), i32(zp), axis=0, out_dtype="int8")


def module(inputs: dict[str, tuple[tuple[int, ...], str]], body: Callable) -> tvm.IRModule:
    """main(inputs...) whose dataflow block is what `body(bb, *params)` emits; it returns the
    output expression (emitted as the block's output)."""
    bb = relax.BlockBuilder()
    params = [relax.Var(n, relax.TensorType(shape, dtype)) for n, (shape, dtype) in inputs.items()]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *params))
        bb.emit_func_output(out)
    return bb.get()


def emit_all(bb: relax.BlockBuilder, *exprs: relax.Expr) -> list[relax.Var]:
    return [bb.emit(e) for e in exprs]


def constants(mod: tvm.IRModule) -> list[np.ndarray]:
    """Every tensor constant main's calls take (call_tir argument tuples included)."""
    found = []

    def visit(e):
        if isinstance(e, relax.Tuple):
            for f in e.fields:
                visit(f)
        elif isinstance(e, tvm.ir.Constant):
            found.append(e.value.numpy())

    for block in mod["main"].body.blocks:
        for b in block.bindings:
            for a in getattr(b.value, "args", []):
                visit(a)
    return found
