"""Reading the frontends' quantize/dequantize form, shared by the integer passes.

TVM's TFLite and ONNX frontends import an int8 model as `dequantize -> float op -> quantize`
in one dataflow block, before FoldConstant: activations are int8 vars wrapped in
`R.dequantize(x, scale, zero_point, axis)`, weights are small expression trees over int8
constants (`dequantize` of the constant, then `reshape` / `permute_dims` into the layout the
op wants). This module reads that form; the passes (int8_conv.py, int8_elementwise.py,
int8_pool.py, int8_activation.py) rewrite it:

- `QParams`: the scale(s) (float32, as the model stores them) and zero point(s) of a
  quantize or dequantize whose parameters are constants.
- `Graph`: main's bindings as the frontend wrote them, who uses what, and two readers:
  `dequantized(expr)` -> the int8 source and its QParams, and `weight(expr)` -> the integer
  constant in the layout the op sees, with the axis its per-channel scale runs along (found by
  applying the tree's reshapes and transposes to the broadcast scale as well).
- `QdqRewriter`: a PyExprMutator that offers each call of main to `rewrite(call)`; what it
  returns replaces the call (bindings it emits first come along), None keeps it. Operands
  are mapped to the rewritten graph with `self.new(expr)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax import PyExprMutator

from .group_kernels import op_name


def const_array(expr: relax.Expr) -> np.ndarray | None:
    """The value of a Relax constant as numpy, else None."""
    if isinstance(expr, tvm.ir.Constant):
        v = expr.value
        return v.numpy() if hasattr(v, "numpy") else np.asarray(v)
    return None


@dataclass(frozen=True)
class QParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along `axis`."""

    scale: np.ndarray  # float32, shape (1,) or (channels,)
    zero_point: np.ndarray  # int64, same shape
    axis: int

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1 and self.zero_point.size == 1

    @property
    def s(self) -> np.float32:
        """The one scale of a per-tensor quantization."""
        if not self.per_tensor:
            raise ValueError(f"per-channel quantization ({self.scale.size} scales) where one was expected")
        return np.float32(self.scale.reshape(-1)[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point.reshape(-1)[0])

    def same_as(self, other: QParams) -> bool:
        return self.per_tensor and other.per_tensor and float(self.s) == float(other.s) and self.zp == other.zp


def qparams(call: relax.Call) -> QParams | None:
    """The parameters of an R.quantize / R.dequantize call, if they are constants."""
    scale, zp = const_array(call.args[1]), const_array(call.args[2])
    if scale is None or zp is None:
        return None
    return QParams(
        np.asarray(scale, dtype=np.float32).reshape(-1),
        np.asarray(zp, dtype=np.int64).reshape(-1),
        int(call.attrs.axis),
    )


def dtype_of(expr: relax.Expr) -> str:
    return str(getattr(expr.ty, "dtype", ""))


def shape_of(expr: relax.Expr) -> tuple[int, ...]:
    return tuple(int(d) for d in expr.ty.shape.values)


@dataclass(frozen=True)
class Weight:
    """An integer constant in the layout its op reads, with its quantization per element."""

    data: np.ndarray  # int8 (weights) or int32 (bias)
    scale: np.ndarray  # float32, data's shape (1.0 where no dequantize applied)
    zero_point: np.ndarray  # int64, data's shape
    quantized: bool = True  # False: a bare integer constant, no dequantize on the way

    def channel_axis(self) -> int | None:
        """The one axis the scale and zero point vary along (None: per tensor).

        Raises ValueError when they vary along more than one axis."""
        varying = [
            a
            for a in range(self.data.ndim)
            if not (
                np.all(self.scale == self.scale.take([0], axis=a))
                and np.all(self.zero_point == self.zero_point.take([0], axis=a))
            )
        ]
        if len(varying) > 1:
            raise ValueError(f"weight quantization varies along axes {varying}; one channel axis expected")
        return varying[0] if varying else None

    def along(self, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(scales, zero points) along `axis` (one entry when per tensor)."""
        if axis is None:
            return self.scale.reshape(-1)[:1], self.zero_point.reshape(-1)[:1]
        index = [0] * self.data.ndim
        index[axis] = slice(None)
        return self.scale[tuple(index)], self.zero_point[tuple(index)]


class Graph:
    """main's bindings as the frontend wrote them (before any rewrite)."""

    def __init__(self, func: relax.Function) -> None:
        self.value: dict[relax.Var, relax.Expr] = {}
        self.users: dict[relax.Var, list[relax.Var]] = {}
        self.var_of: dict[relax.Expr, relax.Var] = {}
        self.outputs: set[relax.Var] = set()
        for block in func.body.blocks:
            for b in block.bindings:
                self.value[b.var] = b.value
                self.var_of[b.value] = b.var
                for v in _vars_in(b.value):
                    self.users.setdefault(v, []).append(b.var)
        self.outputs = set(_vars_in(func.body.body))

    def resolve(self, expr: relax.Expr) -> relax.Expr:
        """Follow var-to-var bindings to the expression a var stands for."""
        while isinstance(expr, relax.Var) and expr in self.value:
            expr = self.value[expr]
        return expr

    def call(self, expr: relax.Expr, *names: str) -> relax.Call | None:
        """`expr` as a call of one of the ops `names` ("relax.nn.conv2d"), through bindings."""
        e = self.resolve(expr)
        return e if isinstance(e, relax.Call) and op_name(e) in names else None

    def only_user(self, var: relax.Var) -> relax.Var | None:
        users = self.users.get(var, [])
        return users[0] if len(users) == 1 and var not in self.outputs else None

    def dequantized(self, expr: relax.Expr, dtypes: tuple[str, ...] = ("int8",)) -> tuple[relax.Expr, QParams] | None:
        """(int8 source, its QParams) when `expr` is R.dequantize of a non-constant int8 tensor."""
        call = self.call(expr, "relax.dequantize")
        if call is None or dtype_of(call.args[0]) not in dtypes:
            return None
        q = qparams(call)
        return None if q is None else (call.args[0], q)

    def weight(self, expr: relax.Expr) -> Weight | None:
        """Evaluate a tree of dequantize / reshape / permute_dims over an integer constant."""
        e = self.resolve(expr)
        data = const_array(e)
        if data is not None:
            if data.dtype.kind not in "iu":
                return None
            return Weight(
                data,
                np.ones(data.shape, np.float32),
                np.zeros(data.shape, np.int64),
                quantized=False,
            )
        if not isinstance(e, relax.Call):
            return None
        name = op_name(e)
        inner = self.weight(e.args[0])
        if inner is None:
            return None
        if name == "relax.dequantize":
            q = qparams(e)
            if q is None:
                return None
            shape = [1] * inner.data.ndim
            if q.scale.size > 1 or q.zero_point.size > 1:
                shape[q.axis % max(inner.data.ndim, 1)] = -1
            scale = np.broadcast_to(q.scale.reshape(shape), inner.data.shape).astype(np.float32)
            zp = np.broadcast_to(q.zero_point.reshape(shape), inner.data.shape).astype(np.int64)
            return Weight(inner.data, scale, zp) if not inner.quantized else None  # dequantized twice
        if name == "relax.reshape":
            shape = shape_of(e)
            return Weight(
                inner.data.reshape(shape),
                inner.scale.reshape(shape),
                inner.zero_point.reshape(shape),
                inner.quantized,
            )
        if name == "relax.permute_dims":
            axes = None if e.attrs.axes is None else [int(a) for a in e.attrs.axes]
            return Weight(
                np.transpose(inner.data, axes),
                np.transpose(inner.scale, axes),
                np.transpose(inner.zero_point, axes),
                inner.quantized,
            )
        return None


def _vars_in(expr: relax.Expr) -> list[relax.Var]:
    if isinstance(expr, relax.Var):
        return [expr]
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _vars_in(f)]
    if isinstance(expr, relax.TupleGetItem):
        return _vars_in(expr.tuple_value)
    if isinstance(expr, relax.Call):
        return [v for a in expr.args for v in _vars_in(a)]
    return []


class QdqRewriter(PyExprMutator):
    """Offers every call bound in main to `rewrite`; subclasses implement it and are
    decorated with `@relax.expr_functor.mutator` (TVM binds the overrides there)."""

    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.graph = Graph(mod["main"])

    def rewrite(self, call: relax.Call) -> relax.Expr | None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement rewrite(call)")

    def new(self, expr: relax.Expr) -> relax.Expr:
        """An operand of the original graph, as it is in the rewritten one."""
        return self.visit_expr(expr)

    def emit(self, expr: relax.Expr, name: str = "") -> relax.Var:
        return self.builder_.emit(expr, name_hint=name)

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        if call in self.graph.var_of:
            new = self.rewrite(call)
            if new is not None:
                return new
        return super().visit_call_(call)

    def run(self, mod: tvm.IRModule) -> tvm.IRModule:
        """Rewrite main; functions the rewrite added come along; the dead QDQ goes."""
        func = self.visit_expr(mod["main"])
        self.builder_.update_func(mod.get_global_var("main"), func)
        return relax.transform.DeadCodeElimination(["main"])(self.builder_.get())
