"""Lower an imported Relax module to a program: kernels (PrimFuncs) and the graph of calls.

The graph (tvm_patch_core.graph) is what the planners and the C emitter read: the kernel
calls in order, each naming its argument tensors by id, and a table of every tensor (model
inputs, intermediates, outputs and constant weights).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import relax, tirx

from tvm_patch_core.errors import DynamicShapeError, UnsupportedOperator
from tvm_patch_core.graph import Call, Graph, Tensor, TensorKind
from tvm_patch_core.stage import StageInfo

from .passes.group_kernels import GroupKernels
from .passes.inline_kernels import InlineKernels


@dataclass(frozen=True)
class Program:
    """The graph (tensors and calls, tvm_patch_core.graph) with the TVM modules behind it."""

    graph: Graph
    kernels: tvm.IRModule  # PrimFuncs only, each with its global_symbol
    grouped: tvm.IRModule  # the Relax module after GroupKernels (for the layer graph)
    lowered: tvm.IRModule  # after FuseTIR + InlineKernels: `main` calls the kernels
    fused: tvm.IRModule | None = None  # the same kernels before InlineKernels (what `tvmc tune` tunes)
    stage: StageInfo | None = None  # when the first call is the patch stage


def lower_to_program(mod: tvm.IRModule) -> Program:
    """Group, legalize, fuse and schedule; then read the call sequence off `main`."""
    grouped = GroupKernels()(mod)
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
    # tuner starts from the kernels as FuseTIR left them.
    lowered = InlineKernels()(fused)  # no full-size temporaries inside kernels
    program = read_program(lowered, grouped)
    kept = {gv: fused[gv.name_hint].with_attr("global_symbol", gv.name_hint) for gv in program.kernels.functions}
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
        tensors[name] = _tensor(name, p.ty, TensorKind.INPUT, p.name)
        alias[p] = (name,)
    calls: list[Call] = []
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
            tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), TensorKind.WEIGHT, name, data)
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
                    tensors[name] = _tensor(name, ty, TensorKind.ACTIVATION, label)
                    outs.append(name)
                alias[b.var] = tuple(outs)
                calls.append(Call(kernel, ins, tuple(outs)))
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
    graph = Graph(tensors, tuple(calls), tuple(f"in{i}" for i in range(len(main.params))), outputs)
    return Program(graph=graph, kernels=tvm.IRModule(prims), grouped=grouped, lowered=mod)


def _result_vars(expr: relax.Expr) -> list[relax.Var]:
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _result_vars(f)]
    return [expr]


def _tensor(name: str, ty: relax.TensorType, kind: TensorKind, label: str) -> Tensor:
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        raise DynamicShapeError(f"tensor {label!r} has no static shape ({ty})")
    dims = []
    for d in shape.values:
        if not isinstance(d, tvm.tirx.IntImm):
            raise DynamicShapeError(f"tensor {label!r} has a dynamic shape {shape}")
        dims.append(int(d))
    return Tensor(name, tuple(dims), str(ty.dtype), kind, label)
