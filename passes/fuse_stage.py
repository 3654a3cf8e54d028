"""FuseStage: the first K kernel calls of a lowered module become ONE call_tir of one PrimFunc.

Input: a Relax module after FuseTIR + InlineKernels (`main` calls one scheduled PrimFunc per
layer). The stage's K PrimFuncs are concatenated into a single PrimFunc (`patch_stage`):
each layer's body runs in order, a tensor one layer writes and the next reads becomes an
internal buffer (full size here: PatchTIR tiles it down to patch windows), the tensors the
stage reads from outside (model input, weights) and its last output are the parameters.
The plan travels with the function as attributes for PatchTIR: `patch_tiles_h`,
`patch_tiles_w`, `patch_layout`. The rest of `main` is left as it was.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import relax, s_tir, tirx
from tvm.ir.expr import Var

from tvm_patch_core.errors import PatchTIRError
from tvm_patch_core.stage import STAGE_KERNEL


def _call_bindings(func: relax.Function) -> list:
    return [
        b
        for blk in func.body.blocks
        for b in blk.bindings
        if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op) and b.value.op.name == "relax.call_tir"
    ]


def _args(call: relax.Call) -> list:
    a = call.args[1]
    return list(a.fields) if isinstance(a, relax.Tuple) else [a]


def compose(prims: list[tirx.PrimFunc], args: list[list], outputs: list) -> tuple[tirx.PrimFunc, list]:
    """One PrimFunc running `prims` in order. args[k]: the values kernel k reads (any
    hashable identity: a Relax var or constant), outputs[k]: the value it writes. Returns the
    function and the outside values in parameter order (its last parameter is outputs[-1])."""
    buffer_of: dict = {}  # value -> the PrimFunc buffer that holds it in the fused function
    outside: list = []
    for k, (f, ins) in enumerate(zip(prims, args, strict=True)):
        for v, p in zip(ins, f.params, strict=False):
            if v not in buffer_of:
                buffer_of[v] = p
                outside.append(v)
        buffer_of[outputs[k]] = f.params[len(ins)]
    bodies, allocs = [], []
    for k, (f, ins) in enumerate(zip(prims, args, strict=True)):
        remap = {p: buffer_of[v] for v, p in zip(ins, f.params, strict=False) if not p.same_as(buffer_of[v])}

        def sub(var: Var, remap: dict = remap) -> Var:
            return remap.get(var, var)

        body = tvm_ffi.structural_map(f.body, [(Var, sub)]) if remap else f.body
        root = body.block
        allocs.extend(root.alloc_buffers)
        bodies.append(root.body)
        if k < len(prims) - 1:
            allocs.append(f.params[len(ins)])  # an intermediate: lives inside the stage
    params = [buffer_of[v] for v in outside] + [buffer_of[outputs[-1]]]
    root = s_tir.SBlock([], [], [], "root", tirx.SeqStmt(bodies), None, allocs)
    func = tirx.PrimFunc(params, s_tir.SBlockRealize([], True, root))
    return func.with_attrs({"global_symbol": STAGE_KERNEL, "tirx.noalias": True, "s_tir": True}), outside


def _stream_attr(main: relax.Function, calls: list, stage_func: tirx.PrimFunc, outside: list) -> dict:
    """{"patch_stream_input": the stage parameter that holds the model input}, checked: the
    input is read by the stage only (PatchTIR then reads it window by window)."""
    if len(main.params) != 1:
        raise PatchTIRError(f"cannot stream the input: the model has {len(main.params)} inputs, streaming takes one")
    inp = main.params[0]
    if inp not in outside:
        raise PatchTIRError("cannot stream the input: the patch stage does not read the model input")
    stage = set(calls)
    for b in _call_bindings(main):
        if b not in stage and inp in _args(b.value):
            raise PatchTIRError(
                f"cannot stream the input: layer {b.var.name} after the patch stage reads it too; "
                "a streamed input may be read by the stage only"
            )
    return {"patch_stream_input": stage_func.params[outside.index(inp)].name}


def fuse_stage(mod: tvm.IRModule, k: int, attrs: dict | None = None, stream_input: bool = False) -> tvm.IRModule:
    """`mod` with main's first `k` call_tir bindings replaced by one call of the fused stage;
    `stream_input`: the stage reads the model input window by window (PatchTIR's
    patch_stream_input)."""
    main = mod["main"]
    calls = _call_bindings(main)[:k]
    produced = {b.var for b in calls}
    prims = [mod[b.value.args[0]] for b in calls]
    stage_func, outside = compose(prims, [_args(b.value) for b in calls], [b.var for b in calls])
    if any(v in produced for v in outside):
        raise PatchTIRError("a stage layer reads a tensor produced later in the stage")
    stream = _stream_attr(main, calls, stage_func, outside) if stream_input else {}
    stage_func = stage_func.with_attrs({**(attrs or {}), **stream})
    rest = {g: f for g, f in mod.functions.items() if g.name_hint != "main"}
    bb = relax.BlockBuilder(tvm.IRModule(rest, attrs=mod.attrs))
    gv = bb.add_func(stage_func, STAGE_KERNEL)  # a GlobalVar that carries the function's type
    last = calls[-1]
    leaked = _used_after(main, {b.var for b in calls[:-1]}, set(calls))
    if leaked:
        raise PatchTIRError(f"tensors {leaked} of the stage are read after it; only its last output may be")
    new_call = bb.normalize(relax.call_tir(gv, relax.Tuple(outside), out_ty=last.var.ty))
    drop = set(calls[:-1])
    blocks = []
    for blk in main.body.blocks:
        bindings = []
        for b in blk.bindings:
            if b in drop:
                continue
            bindings.append(relax.VarBinding(b.var, new_call) if b.same_as(last) else b)
        blocks.append(
            relax.DataflowBlock(bindings) if isinstance(blk, relax.DataflowBlock) else relax.BindingBlock(bindings)
        )
    new_main = relax.Function(main.params, relax.SeqExpr(blocks, main.body.body), main.ret_ty, main.is_pure, main.attrs)
    out = bb.get()
    out["main"] = new_main
    out = relax.transform.Normalize()(out)
    used = {b.value.args[0].name_hint for b in _call_bindings(new_main)}
    for g in list(out.functions):
        if isinstance(out[g], tirx.PrimFunc) and g.name_hint not in used:
            del out[g]
    return out


def _used_after(main: relax.Function, inner: set, stage: set) -> list[str]:
    found = []
    for blk in main.body.blocks:
        for b in blk.bindings:
            if b in stage:
                continue
            v = b.value
            is_call = isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op) and v.op.name == "relax.call_tir"
            for a in _args(v) if is_call else []:
                if a in inner:
                    found.append(a.name)
    return found


@tvm.transform.module_pass(opt_level=0, name="FuseStage")
class FuseStage:
    """Fuse main's first `layers` kernel calls into one call of `patch_stage`, carrying the
    tiles (per axis, [lo, hi) of the stage's last output), the layout and the planner's
    in-place pairs for PatchTIR."""

    def __init__(
        self,
        layers: int,
        tiles_h: tuple[tuple[int, int], ...],
        tiles_w: tuple[tuple[int, int], ...],
        layout: str = "NHWC",
        stream_input: bool = False,
        inplace: tuple[tuple[int, int, int, int], ...] = (),
    ) -> None:
        self.layers, self.stream_input = layers, stream_input
        self.attrs = {
            "patch_tiles_h": [list(t) for t in tiles_h],
            "patch_tiles_w": [list(t) for t in tiles_w],
            "patch_layout": layout,
        }
        if inplace:  # (nest, source nest or -1 for the streamed input, shift bytes, backwards): PatchTIR's pairs
            self.attrs["patch_inplace"] = [list(p) for p in inplace]

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return fuse_stage(mod, self.layers, self.attrs, self.stream_input)
