"""GroupKernels: partition `main` into kernels that each store exactly one small tensor.

Relax's FuseOps fuses an anchor (conv2d) with every elementwise op after it, so in the
int8 models it runs conv -> add -> quantize -> clip -> *dequantize* and hands the next
kernel a float32 tensor: four times the bytes that need to be stored. On a
microcontroller the tensors between kernels are what fills SRAM, so this pass decides
the cut points itself:

1. Anchors are the ops that reduce (conv2d, matmul, pooling, mean, softmax, ...); every
   kernel holds at most one anchor.
2. From each anchor, follow its single-consumer chain of non-anchor ops forward. If the
   chain feeds the next anchor, cut it at the *smallest* tensor along the chain (ties: the
   latest), giving the ops before the cut to this anchor and the rest to the next one.
   A chain that ends at a model output or at a tensor with several consumers stays whole.
   Before that, a dequantize with several consumers is copied once per consumer (it is one
   multiply-add per element), so a residual connection carries the int8 tensor, not a
   float32 one four times its size (ONNX QDQ models share one DequantizeLinear this way).
3. Ops no chain reached join their single consumer's kernel, else form their own.
4. Each kernel becomes a `Primitive` Relax function; LegalizeOps + FuseTIR later turn it
   into one PrimFunc. Weights (non-scalar constants) become parameters, as FuseOps does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tvm
from tvm import relax

from tvm_patch_core.graph import shape_bytes
from tvm_patch_core.names import sanitize

ANCHOR_OPS = frozenset(
    {
        "relax.nn.conv1d",
        "relax.nn.conv2d",
        "relax.nn.conv2d_transpose",
        "relax.matmul",
        "relax.nn.max_pool2d",
        "relax.nn.avg_pool2d",
        "relax.nn.adaptive_avg_pool2d",
        "relax.mean",
        "relax.sum",
        "relax.max",
        "relax.min",
        "relax.nn.softmax",
        "relax.nn.log_softmax",
        "relax.argmax",
    }
)


def op_name(value: relax.Expr) -> str:
    op = getattr(value, "op", None)
    return op.name if isinstance(op, tvm.ir.Op) else type(value).__name__


def tensor_bytes(ty: relax.TensorType) -> int:
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        return 1 << 62  # unknown: never the preferred cut
    return shape_bytes(shape.values, str(ty.dtype))


@dataclass(frozen=True)
class Group:
    """Binding indices of one kernel, in program order."""

    members: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.members[0]


def plan_groups(bindings: Sequence[relax.Binding], outputs: set[relax.Var]) -> list[Group]:
    """Return the kernels as groups of binding indices (see the module docstring)."""
    index = {b.var: i for i, b in enumerate(bindings)}
    consumers: dict[int, list[int]] = {i: [] for i in range(len(bindings))}
    for i, b in enumerate(bindings):
        for arg in _var_args(b.value):
            if arg in index:
                consumers[index[arg]].append(i)
    is_anchor = [op_name(b.value) in ANCHOR_OPS for b in bindings]
    owner: dict[int, int] = {}  # binding -> id of its group leader

    def single_consumer(i: int) -> int | None:
        cons = consumers[i]
        if len(cons) == 1 and bindings[i].var not in outputs:
            return cons[0]
        return None

    for a in range(len(bindings)):
        if not is_anchor[a] or owner.get(a, a) != a:
            continue
        owner[a] = a
        chain = [a]
        nxt = single_consumer(a)
        while nxt is not None and not is_anchor[nxt] and nxt not in owner:
            chain.append(nxt)
            nxt = single_consumer(chain[-1])
        feeds_anchor = nxt is not None and is_anchor[nxt] and nxt not in owner
        cut = len(chain) - 1
        if feeds_anchor:
            sizes = [tensor_bytes(bindings[c].var.ty) for c in chain]
            cut = min(range(len(chain)), key=lambda k: (sizes[k], -k))
        for c in chain[1 : cut + 1]:
            owner[c] = a
        for c in chain[cut + 1 :]:
            owner[c] = nxt

    for i in reversed(range(len(bindings))):
        if i in owner:
            continue
        c = single_consumer(i)
        owner[i] = owner[c] if c is not None and c in owner else i

    members: dict[int, list[int]] = {}
    for i in range(len(bindings)):
        members.setdefault(owner[i], []).append(i)
    return _topological([Group(tuple(m)) for m in members.values()], bindings, index)


def unshare_dequantize(bindings: list[relax.Binding], outputs: set[relax.Var]) -> list[relax.Binding]:
    """Give every consumer of a shared dequantize its own copy (step 2 of the docstring)."""
    users: dict[relax.Var, list[int]] = {}
    for i, b in enumerate(bindings):
        for v in dict.fromkeys(_var_args(b.value)):
            users.setdefault(v, []).append(i)
    copies: dict[int, list[relax.Binding]] = {}
    renames: dict[int, dict] = {}
    for b in bindings:
        if op_name(b.value) != "relax.dequantize" or b.var in outputs or len(users.get(b.var, [])) < 2:
            continue
        for k, c in enumerate(users[b.var][1:], start=1):
            copy = relax.DataflowVar(f"{b.var.name}_{k}", b.var.ty)
            copies.setdefault(c, []).append(relax.VarBinding(copy, b.value))
            renames.setdefault(c, {})[b.var] = copy
    out: list[relax.Binding] = []
    for i, b in enumerate(bindings):
        out += copies.get(i, [])
        out.append(relax.VarBinding(b.var, substitute(b.value, renames[i])) if i in renames else b)
    return out


def _topological(groups: list[Group], bindings: Sequence[relax.Binding], index: dict) -> list[Group]:
    """Order kernels so each runs after the kernels it reads from (ties: program order)."""
    group_of = {i: g for g in groups for i in g.members}
    deps = {
        g: {group_of[index[a]] for i in g.members for a in _var_args(bindings[i].value) if a in index} - {g}
        for g in groups
    }
    done: list[Group] = []
    pending = sorted(groups, key=lambda g: g.members[-1])
    while pending:
        ready = next((g for g in pending if deps[g] <= set(done)), None)
        if ready is None:
            raise ValueError(f"kernel grouping has a cycle among {[g.members for g in pending]}")
        done.append(ready)
        pending.remove(ready)
    return done


def _var_args(value: relax.Expr) -> list[relax.Var]:
    args = getattr(value, "args", None)
    if args is None:
        fields = getattr(value, "fields", None) or []
        return [f for f in fields if isinstance(f, relax.Var)]
    out = []
    for a in args:
        if isinstance(a, relax.Var):
            out.append(a)
        elif isinstance(a, relax.Tuple):
            out.extend(f for f in a.fields if isinstance(f, relax.Var))
    return out


def _weight_args(value: relax.Expr) -> list[relax.Expr]:
    """Constants a kernel takes as parameters: every tensor constant handed to an existing
    call_tir (FuseTIR accepts no tensor constants inside), and non-scalar ones elsewhere
    (scalars such as a quantize scale stay inline and legalize into immediates)."""
    out = []
    is_call_tir = op_name(value) == "relax.call_tir"
    for a in getattr(value, "args", []):
        if isinstance(a, relax.Tuple) and is_call_tir:
            out.extend(f for f in a.fields if isinstance(f, tvm.ir.Constant))
        elif _is_weight(a):
            out.append(a)
    return out


def _is_weight(expr: relax.Expr) -> bool:
    """A tensor constant of rank >= 1 (even one element: a 1-channel bias): FuseTIR accepts
    no tensor constants inside a kernel. Rank-0 scalars stay inline as immediates."""
    if not isinstance(expr, tvm.ir.Constant):
        return False
    return len(getattr(expr.value, "shape", ())) > 0


@tvm.transform.module_pass(opt_level=0, name="GroupKernels")
class GroupKernels:
    """Wrap each kernel of `main` into a Primitive function (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        func = mod["main"]
        body = func.body
        blocks = body.blocks
        if len(blocks) != 1 or not isinstance(blocks[0], relax.DataflowBlock):
            return mod  # only the frontends' single-dataflow-block form is grouped
        outputs = {v for v in _collect_vars(body.body)}
        bindings = unshare_dequantize(list(blocks[0].bindings), outputs)
        groups = plan_groups(bindings, outputs)

        rest = {gv: f for gv, f in mod.functions.items() if gv.name_hint != "main"}
        bb = relax.BlockBuilder(tvm.IRModule(rest, attrs=mod.attrs))
        with bb.function("main", list(func.params), attrs=dict(func.attrs) if func.attrs else None):
            with bb.dataflow():
                vmap: dict[relax.Var, relax.Expr] = {}
                for n, g in enumerate(groups):
                    members = [bindings[i] for i in g.members]
                    if len(members) == 1 and not isinstance(members[0].value, relax.Call):
                        b = members[0]
                        vmap[b.var] = bb.emit(substitute(b.value, vmap), name_hint=b.var.name)
                        continue
                    self._emit_group(bb, n, members, vmap, outputs, bindings)
                out = bb.emit_output(substitute(body.body, vmap))
            bb.emit_func_output(out)
        return bb.get()

    @staticmethod
    def _emit_group(
        bb: relax.BlockBuilder,
        n: int,
        members: list[relax.Binding],
        vmap: dict,
        outputs: set[relax.Var],
        bindings: list[relax.Binding],
    ) -> None:
        inside = {b.var for b in members}
        later_uses: set[relax.Var] = set(outputs)
        for b in bindings:
            if b.var not in inside:
                later_uses.update(_var_args(b.value))
        ext: list[relax.Expr] = []
        for b in members:
            args = list(_var_args(b.value)) + _weight_args(b.value)
            for a in args:
                if a not in inside and not any(a.same_as(e) for e in ext):
                    ext.append(a)
        results = [b.var for b in members if b.var in later_uses] or [members[-1].var]
        name = f"kernel{n}_{sanitize(results[-1].name, 'v')}"
        params = [relax.Var(f"p{i}", a.ty) for i, a in enumerate(ext)]
        inner_map: dict[relax.Expr, relax.Expr] = dict(zip(ext, params, strict=False))
        ibb = relax.BlockBuilder()
        with ibb.function(name, params, attrs={"Primitive": 1}):
            with ibb.dataflow():
                for b in members:
                    inner_map[b.var] = ibb.emit(substitute(b.value, inner_map), name_hint=b.var.name)
                rets = [inner_map[v] for v in results]
                ret = ibb.emit_output(rets[0] if len(rets) == 1 else relax.Tuple(rets))
            ibb.emit_func_output(ret)
        gv = bb.add_func(ibb.get()[name], name)
        res = bb.emit(relax.Call(gv, [substitute(a, vmap) for a in ext]), name_hint=results[-1].name)
        if len(results) == 1:
            vmap[results[0]] = res
        else:
            for k, v in enumerate(results):
                vmap[v] = bb.emit(relax.TupleGetItem(res, k), name_hint=v.name)


def _collect_vars(expr: relax.Expr) -> list[relax.Var]:
    if isinstance(expr, relax.Var):
        return [expr]
    if isinstance(expr, relax.Tuple):
        return [v for f in expr.fields for v in _collect_vars(f)]
    return []


def substitute(expr: relax.Expr, vmap: dict) -> relax.Expr:
    """Replace vars (and weight constants) by their mapped expressions, one level deep."""

    def one(e: relax.Expr) -> relax.Expr:
        if e in vmap:
            return vmap[e]
        if isinstance(e, relax.Tuple):
            return relax.Tuple([one(f) for f in e.fields])
        return e

    if isinstance(expr, relax.Call):
        return relax.Call(expr.op, [one(a) for a in expr.args], expr.attrs, expr.ty_args)
    if isinstance(expr, relax.TupleGetItem):
        return relax.TupleGetItem(one(expr.tuple_value), expr.index)
    return one(expr)
