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
    name: str  # program-internal id, by kind and index: in0.., t0.., w0.. (safe as a C identifier)
    shape: tuple[int, ...]
    dtype: str
    kind: str  # "input" | "activation" | "weight"
    data: np.ndarray | None = None  # weights only
    label: str = ""  # the Relax variable it came from (for people: comments, reports)

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
    legal = relax.transform.LegalizeOps()(grouped)  # high-level ops -> call_tir of TIR
    _refuse_unlowered(legal)
    fused = tvm.transform.Sequential(
        [
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),  # weight-only subgraphs computed at compile time
            relax.transform.FuseTIR(),  # each Primitive group -> one PrimFunc
            relax.transform.DeadCodeElimination(),
        ]
    )(legal)
    # MetaSchedule cannot re-schedule InlineKernels' output ("loops are not in a chain"), so the
    # tuner starts from the kernels as FuseTIR left them (InlineKernels updates `fused` in place).
    unscheduled = {gv.name_hint: f for gv, f in fused.functions.items() if isinstance(f, tirx.PrimFunc)}
    lowered = InlineKernels()(fused)  # no full-size temporaries inside kernels
    program = read_program(lowered, grouped)
    kept = {gv: unscheduled[gv.name_hint].with_attr("global_symbol", gv.name_hint) for gv in program.kernels.functions}
    return replace(program, fused=tvm.IRModule(kept))


def _refuse_unlowered(mod: tvm.IRModule) -> None:
    """Name the first operator LegalizeOps left as it was (no TIR lowering: e.g. topk)."""
    for gv, func in mod.functions.items():
        if not isinstance(func, relax.Function):
            continue
        for block in func.body.blocks:
            for b in block.bindings:
                v = b.value
                if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name not in _LOWERED:
                    where = "" if gv.name_hint == "main" else f" in kernel {gv.name_hint}"
                    raise UnsupportedOperator(
                        f"operator {v.op.name.removeprefix('relax.')} (layer {b.var.name}{where}) has no TIR "
                        "lowering in TVM, so it cannot run on the board; remove it from the model or run it "
                        "outside the compiled part"
                    )


_LOWERED = frozenset({"relax.call_tir", "relax.call_tir_inplace"})


def read_program(mod: tvm.IRModule, grouped: tvm.IRModule) -> Program:
    """The call sequence of `main`; tensors get ids by kind and index, never model strings."""
    main = mod["main"]
    tensors: dict[str, Tensor] = {}
    alias: dict[relax.Var, tuple[str, ...]] = {}
    for i, p in enumerate(main.params):
        name = f"in{i}"
        tensors[name] = _tensor(name, p.ty, "input", p.name)
        alias[p] = (name,)
    calls: list[KernelCall] = []
    used_kernels: set[str] = set()
    weight_names: dict[tvm.ir.Constant, str] = {}
    produced = 0

    def arg_name(arg: relax.Expr) -> str:
        if isinstance(arg, relax.Var):
            (name,) = alias[arg]
            return name
        if isinstance(arg, tvm.ir.Constant):
            if arg in weight_names:
                return weight_names[arg]
            name = weight_names[arg] = f"w{len(weight_names)}"
            data = arg.value.numpy() if hasattr(arg.value, "numpy") else np.asarray(arg.value)
            tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), "weight", data, name)
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
                    name, produced = f"t{produced}", produced + 1
                    label = b.var.name if len(out_tys) == 1 else f"{b.var.name}_{k}"
                    tensors[name] = _tensor(name, ty, "activation", label)
                    outs.append(name)
                alias[b.var] = tuple(outs)
                calls.append(KernelCall(kernel, ins, tuple(outs)))
                used_kernels.add(kernel)
            elif isinstance(v, relax.TupleGetItem) and isinstance(v.tuple_value, relax.Var):
                alias[b.var] = (alias[v.tuple_value][v.index],)
            else:
                what = v.op.name if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) else type(v).__name__
                raise UnsupportedOperator(
                    f"layer {b.var.name!r}: {what} does not lower to a kernel (no C emitter rule for it)"
                )
    outputs = tuple(n for v in _result_vars(main.body.body) for n in alias[v])
    prims = {}
    for gv, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc) and gv.name_hint in used_kernels:
            prims[gv] = func.with_attr("global_symbol", gv.name_hint)
    return Program(
        kernels=tvm.IRModule(prims),
        calls=tuple(calls),
        tensors=tensors,
        inputs=tuple(f"in{i}" for i in range(len(main.params))),
        outputs=outputs,
        grouped=grouped,
        lowered=mod,
    )


def _result_vars(expr: relax.Expr) -> list[relax.Var]:
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _result_vars(f)]
    return [expr]


def _tensor(name: str, ty, kind: str, label: str) -> Tensor:
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        raise DynamicShapeError(f"tensor {label!r} has no static shape ({ty})")
    dims = []
    for d in shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            raise DynamicShapeError(f"tensor {label!r} has a dynamic shape {shape}")
        dims.append(int(d))
    return Tensor(name, tuple(dims), str(ty.dtype), kind, label=label)
