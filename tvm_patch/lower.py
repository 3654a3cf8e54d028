"""Lower an imported Relax module to a flat program: kernels (PrimFuncs) + a call sequence.

The program is what the C emitter and the arena planner work on: a list of kernel calls in
order, each naming its argument tensors, and a table of every tensor (model inputs,
intermediates, outputs and constant weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import tvm
from tvm import relax, tirx

from .errors import DynamicShapeError, UnsupportedOperator
from .passes.group_kernels import GroupKernels, shape_bytes
from .passes.inline_kernels import InlineKernels


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    kind: str  # "input" | "activation" | "weight"
    data: np.ndarray | None = None  # weights only

    @property
    def nbytes(self) -> int:
        return shape_bytes(self.shape, self.dtype)


@dataclass(frozen=True)
class KernelCall:
    kernel: str  # PrimFunc global symbol
    inputs: tuple[str, ...]  # tensor names, in argument order
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Program:
    kernels: tvm.IRModule  # PrimFuncs only, each with its global_symbol
    calls: tuple[KernelCall, ...]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    grouped: tvm.IRModule  # the Relax module after GroupKernels (for the layer graph)
    lowered: tvm.IRModule  # after FuseTIR + InlineKernels: `main` calls the kernels
    fused: tvm.IRModule | None = None  # the same kernels before InlineKernels (what `tvmc tune` tunes)
    stage: Any = None  # a patch_stage.PatchStage when the first call is a patch stage
    inplace: dict[str, str] = field(default_factory=dict)  # output tensor -> the input it overwrites
    inplace_temp: dict[str, int] = field(default_factory=dict)  # output -> its one-channel temp bytes


def lower_to_program(mod: tvm.IRModule, stages: Sequence[Sequence[str]] = ()) -> Program:
    """Group, legalize, fuse and schedule; then read the call sequence off `main`."""
    grouped = GroupKernels(stages)(mod)
    fused = tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(),  # high-level ops -> call_tir of TIR
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),  # weight-only subgraphs computed at compile time
            relax.transform.FuseTIR(),  # each Primitive group -> one PrimFunc
            relax.transform.DeadCodeElimination(),
        ]
    )(grouped)
    # MetaSchedule cannot re-schedule InlineKernels' output ("loops are not in a chain"), so the
    # tuner starts from the kernels as FuseTIR left them (InlineKernels updates `fused` in place).
    unscheduled = {gv.name_hint: f for gv, f in fused.functions.items() if isinstance(f, tirx.PrimFunc)}
    lowered = InlineKernels()(fused)  # no full-size temporaries inside kernels
    program = read_program(lowered, grouped)
    kept = {gv: unscheduled[gv.name_hint].with_attr("global_symbol", gv.name_hint) for gv in program.kernels.functions}
    return replace(program, fused=tvm.IRModule(kept))


def read_program(mod: tvm.IRModule, grouped: tvm.IRModule) -> Program:
    main = mod["main"]
    tensors: dict[str, Tensor] = {}
    alias: dict[relax.Var, str] = {}
    for p in main.params:
        tensors[p.name] = _tensor(p.name, p.ty, "input")
        alias[p] = p.name
    calls: list[KernelCall] = []
    used_kernels: set[str] = set()
    weight_names: dict[tvm.ir.Constant, str] = {}

    def arg_name(arg: relax.Expr) -> str:
        if isinstance(arg, relax.Var):
            return alias[arg]
        if isinstance(arg, tvm.ir.Constant):
            if arg in weight_names:
                return weight_names[arg]
            name = weight_names[arg] = f"w{len(weight_names)}"
            data = arg.value.numpy() if hasattr(arg.value, "numpy") else np.asarray(arg.value)
            tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), "weight", data)
            return name
        raise UnsupportedOperator(f"cannot pass {type(arg).__name__} to a kernel: {arg}")

    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if isinstance(v, relax.Var):
                alias[b.var] = alias[v]
            elif isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name == "relax.call_tir":
                kernel = v.args[0].name_hint
                args = v.args[1].fields if isinstance(v.args[1], relax.Tuple) else [v.args[1]]
                ins = tuple(arg_name(a) for a in args)
                out_tys = b.var.ty.fields if isinstance(b.var.ty, relax.TupleType) else [b.var.ty]
                outs = []
                for k, ty in enumerate(out_tys):
                    name = b.var.name if len(out_tys) == 1 else f"{b.var.name}_{k}"
                    tensors[name] = _tensor(name, ty, "activation")
                    outs.append(name)
                alias[b.var] = outs[0] if len(outs) == 1 else ",".join(outs)
                calls.append(KernelCall(kernel, ins, tuple(outs)))
                used_kernels.add(kernel)
            elif isinstance(v, relax.TupleGetItem) and isinstance(v.tuple_value, relax.Var):
                alias[b.var] = alias[v.tuple_value].split(",")[v.index]
            else:
                what = v.op.name if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) else type(v).__name__
                raise UnsupportedOperator(
                    f"layer {b.var.name!r}: {what} does not lower to a kernel (no C emitter rule for it)"
                )
    outputs = tuple(alias[v] for v in _result_vars(main.body.body))
    prims = {}
    for gv, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc) and gv.name_hint in used_kernels:
            prims[gv] = func.with_attr("global_symbol", gv.name_hint)
    return Program(
        kernels=tvm.IRModule(prims),
        calls=tuple(calls),
        tensors=tensors,
        inputs=tuple(p.name for p in main.params),
        outputs=outputs,
        grouped=grouped,
        lowered=mod,
    )


def _result_vars(expr: relax.Expr) -> list[relax.Var]:
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _result_vars(f)]
    return [expr]


def _tensor(name: str, ty, kind: str) -> Tensor:
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        raise DynamicShapeError(f"tensor {name!r} has no static shape ({ty})")
    dims = []
    for d in shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            raise DynamicShapeError(f"tensor {name!r} has a dynamic shape {shape}")
        dims.append(int(d))
    return Tensor(name, tuple(dims), str(ty.dtype), kind)
