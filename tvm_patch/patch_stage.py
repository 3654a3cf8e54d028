"""Lower a patch stage: the first K layers run patch by patch, each patch recomputing its halo.

For every patch of the grid (over the stage's last output) and every layer of the stage,
the layer's own Relax group function is re-instantiated for that patch: its activation
inputs are the buffers the patch has (the full stage input, or an earlier layer's
per-patch scratch window), sliced to the window it needs (`strided_slice`, inlined into the
kernel), and its conv/pool padding becomes the part of the original padding that falls on
this patch (border patches pad exactly like the whole layer; interior ones not at all).
Patches with the same shapes and paddings share a kernel. Weights stay shared.

The result replaces the stage's K kernel calls of the per-layer program by one stage call:
per patch, K kernel calls on scratch buffers, then a copy of the last window into the
stage output. Scratch buffer l is sized to layer l's largest window and reused by every
patch, so the full early feature maps never exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import tvm
from tvm import relax

from .layers import Layer
from .lower import KernelCall, Program, Tensor, lower_to_program
from .passes.group_kernels import ANCHOR_OPS, op_name, substitute
from .patch_analysis import (
    UnsupportedStageLayer,
    Window,
    input_windows,
    spatial_axes,
    stage_layout,
    stage_windows,
)


@dataclass(frozen=True)
class PatchPlan:
    """The stage (layer indices 0..K-1) and the tiles of its last output, per axis."""

    stage: tuple[int, ...]
    tiles_h: tuple[tuple[int, int], ...]
    tiles_w: tuple[tuple[int, int], ...]

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.tiles_h), len(self.tiles_w)


@dataclass(frozen=True)
class PatchCopy:
    """Copy scratch view `src` into full tensor `dst` at spatial origin (y0, x0)."""

    src: str
    dst: str
    y0: int
    x0: int


@dataclass(frozen=True)
class PatchStage:
    plan: PatchPlan
    layout: str
    input_names: tuple[str, ...]  # full tensors the stage reads (model input, ...)
    output: str  # the full tensor the stage writes
    scratch: dict[str, int]  # storage name -> bytes (largest window of that layer)
    scratch_layer: dict[str, int]  # storage name -> position of its layer in the stage
    patches: tuple[tuple[KernelCall, ...], ...]  # per patch: the K kernel calls
    copies: tuple[PatchCopy, ...]  # per patch: last window -> stage output
    windows: tuple[dict[int, tuple[Window, Window]], ...]  # per patch: layer -> (in, out)


STAGE_KERNEL = "__patch_stage__"
WINDOWED = frozenset({"nn.conv2d", "nn.max_pool2d", "nn.avg_pool2d"})


def _shape_with_window(shape: tuple[int, ...], axes: tuple[int, int], win: Window) -> tuple[int, ...]:
    out = list(shape)
    out[axes[0]], out[axes[1]] = win.height, win.width
    return tuple(out)


def _anchor(func: relax.Function) -> relax.Call | None:
    calls = [b.value for blk in func.body.blocks for b in blk.bindings if isinstance(b.value, relax.Call)]
    anchors = [c for c in calls if op_name(c) in ANCHOR_OPS]
    return anchors[0] if anchors else None


def _rebuild_anchor(call: relax.Call, args: list, pad: tuple[int, int, int, int]) -> relax.Expr:
    a = call.attrs
    name = op_name(call)
    data = args[0]
    if name == "relax.nn.conv2d":
        return relax.op.nn.conv2d(
            data, args[1], strides=a.strides, padding=pad, dilation=a.dilation, groups=a.groups,
            data_layout=a.data_layout, kernel_layout=a.kernel_layout, out_layout=a.out_layout,
            out_dtype=a.out_dtype if str(a.out_dtype) else None,
        )
    pool = relax.op.nn.max_pool2d if name == "relax.nn.max_pool2d" else relax.op.nn.avg_pool2d
    return pool(
        data, pool_size=a.pool_size, strides=a.strides, padding=pad, dilation=a.dilation,
        ceil_mode=bool(a.ceil_mode), count_include_pad=bool(a.count_include_pad),
        layout=a.layout, out_layout=a.out_layout,
    )


def _patch_padding(layer: Layer, out: Window, in_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of the layer's padding that falls on this output window (top, left, bottom, right)."""
    (kh, kw), (sh, sw) = layer.kernel, layer.strides
    dh, dw = layer.dilation or (1, 1)
    pt, pl = layer.padding[0], layer.padding[1]
    top = max(0, pt - out.y0 * sh)
    left = max(0, pl - out.x0 * sw)
    bottom = max(0, (out.y1 - 1) * sh - pt + (kh - 1) * dh + 1 - in_hw[0])
    right = max(0, (out.x1 - 1) * sw - pl + (kw - 1) * dw + 1 - in_hw[1])
    return top, left, bottom, right


def _feeds_anchor(func: relax.Function, anchor: relax.Call | None) -> set:
    """The bindings on the anchor's data input path (they read the input window; the rest of
    the group, after the anchor, reads at the output window)."""
    if anchor is None:
        return set()
    defs = {b.var: b.value for blk in func.body.blocks for b in blk.bindings}
    path, x = set(), anchor.args[0]
    while x in defs:
        path.add(x)
        x = defs[x].args[0]
    return path


def emit_patch_layer(
    bb: relax.BlockBuilder, lp: LayerPatch, params: list[relax.Expr]
) -> relax.Expr:
    """Emit layer `lp.layer` for one patch into `bb`, reading `params` (one per group parameter,
    shaped `lp.shapes`): sliced where the anchor path and the residual read them, with the
    patch's share of the padding. Returns the patch's output window of the layer."""
    func = lp.func
    anchor = _anchor(func)
    pre = _feeds_anchor(func, anchor)
    views: dict[tuple[int, str], relax.Expr] = {}

    def view(j: int, role: str) -> relax.Expr:
        win = (lp.in_slices if role == "in" else lp.out_slices).get(j)
        if win is None:
            return params[j]
        if (j, role) not in views:
            views[(j, role)] = bb.emit(relax.op.strided_slice(
                params[j], axes=list(lp.axes), begin=[win.y0, win.x0], end=[win.y1, win.x1]))
        return views[(j, role)]

    index = {p: j for j, p in enumerate(func.params)}
    vmap: dict[relax.Expr, relax.Expr] = {}
    last = None
    for blk in func.body.blocks:
        for b in blk.bindings:
            v = b.value
            role = "in" if (b.var in pre or v.same_as(anchor)) else "out"
            local = dict(vmap)
            for a in _args_of(v):
                if a in index:
                    local[a] = view(index[a], role)
            if v.same_as(anchor):
                new = _rebuild_anchor(v, [local.get(a, a) for a in v.args], lp.pad)
            else:
                new = substitute(v, local)
            last = vmap[b.var] = bb.emit(new, name_hint=b.var.name)
    return vmap.get(func.body.body, last)


def _variant(lp: LayerPatch, prims: tvm.IRModule) -> tvm.IRModule:
    """A module whose `main` is layer `lp.layer` for one patch (one kernel after lowering).
    `prims` holds the PrimFuncs the group may call (ONNX Clip's TE kernels)."""
    params = [relax.Var(p.name, relax.TensorType(shape, str(p.ty.dtype))) for p, shape in zip(lp.func.params, lp.shapes)]
    bb = relax.BlockBuilder(prims)
    with bb.function("main", params):
        with bb.dataflow():
            ret = bb.emit_output(emit_patch_layer(bb, lp, params))
        bb.emit_func_output(ret)
    return bb.get()


def _params_read_after_anchor(func: relax.Function) -> set[int]:
    """Indices of the parameters that ops after the anchor read (residual inputs)."""
    anchor = _anchor(func)
    pre = _feeds_anchor(func, anchor)
    index = {p: j for j, p in enumerate(func.params)}
    found = set()
    for blk in func.body.blocks:
        for b in blk.bindings:
            if b.var in pre or b.value.same_as(anchor):
                continue
            found.update(index[a] for a in _args_of(b.value) if a in index)
    return found


def _args_of(v: relax.Expr) -> list:
    out = []
    for a in getattr(v, "args", []):
        out.extend(a.fields if isinstance(a, relax.Tuple) else [a])
    return out


def _local(need: Window, buf: Window) -> Window | None:
    """`need` in the coordinates of a buffer holding window `buf`; None if it is all of it."""
    if need.y0 < buf.y0 or need.y1 > buf.y1 or need.x0 < buf.x0 or need.x1 > buf.x1:
        raise UnsupportedStageLayer(f"window {need} is not inside the computed window {buf}")
    local = Window(need.y0 - buf.y0, need.y1 - buf.y0, need.x0 - buf.x0, need.x1 - buf.x0)
    return None if (local.height, local.width) == (buf.height, buf.width) else local


@dataclass(frozen=True)
class LayerPatch:
    """One layer of one patch: what its kernel variant reads and writes."""

    patch: int
    out: Window  # the patch's window of the stage output
    windows: dict  # layer index -> (input window, output window) for this patch
    layer: Layer
    func: relax.Function  # the layer's group function
    args: tuple[str, ...]  # per group parameter: a tensor name, or the view of an earlier layer
    shapes: tuple[tuple[int, ...], ...]  # per group parameter: the buffer shape the variant takes
    in_slices: dict  # parameter -> window of it the anchor path reads (None: all)
    out_slices: dict  # parameter -> window of it read after the anchor (residuals)
    lout: Window
    in_hw: tuple[int, int]
    axes: tuple[int, int]
    pad: tuple[int, int, int, int]
    storage: str  # scratch buffer of this layer
    view: str  # name of this patch's output window of that buffer
    out_shape: tuple[int, ...]
    dtype: str

    @property
    def key(self) -> tuple:
        return (self.layer.index, self.shapes, tuple(sorted(self.in_slices.items())),
                tuple(sorted(self.out_slices.items())), self.pad, (self.lout.height, self.lout.width))


def layer_patches(program: Program, layers: list[Layer], plan: PatchPlan):
    """Every (patch, layer) of the stage in execution order, with its windows and slices."""
    grouped = program.grouped
    stage = list(plan.stage)
    members = [layers[i] for i in stage]
    layout = stage_layout(layers, stage)
    main_calls = [
        b.value for blk in grouped["main"].body.blocks for b in blk.bindings
        if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.GlobalVar)
    ]
    by_name = {layer.name: layer for layer in layers}
    call_of = {i: program.calls[i] for i in stage}
    full_of = {layer.name: call_of[layer.index].outputs[0] for layer in members}
    funcs = {layer.index: grouped[main_calls[layer.index].op] for layer in members}
    is_weight = {i: [program.tensors[call_of[i].inputs[j]].kind == "weight" for j in range(len(f.params))]
                 for i, f in funcs.items()}
    read_after_anchor = {i: _params_read_after_anchor(f) for i, f in funcs.items()}
    n = 0
    for ty in plan.tiles_h:
        for tx in plan.tiles_w:
            out = Window(ty[0], ty[1], tx[0], tx[1])
            wins = stage_windows(layers, stage, out)
            for layer in members:
                _, lout = wins[layer.index]
                func = funcs[layer.index]
                needed = input_windows(layer, lout, layout)
                pcall = call_of[layer.index]
                axes = spatial_axes(layer, layout)
                shapes, in_slices, out_slices, args = [], {}, {}, []
                act = 0
                for j, p in enumerate(func.params):
                    full = pcall.inputs[j]
                    if is_weight[layer.index][j]:
                        shapes.append(tuple(int(d) for d in p.ty.shape.values))
                        args.append(full)
                        continue
                    src_name, need = layer.inputs[act], needed[act]
                    act += 1
                    if src_name in by_name and by_name[src_name].index in wins:
                        src = by_name[src_name]
                        src_win = wins[src.index][1]
                        args.append(f"scratch{stage.index(src.index)}_{src_win.y0}_{src_win.y1}_{src_win.x0}_{src_win.x1}")
                        shape = _shape_with_window(program.tensors[full_of[src_name]].shape, spatial_axes(src, layout), src_win)
                    else:
                        shape = program.tensors[full].shape
                        src_win = Window(0, shape[axes[0]], 0, shape[axes[1]])
                        args.append(full)
                    shapes.append(tuple(shape))
                    in_slices[j] = _local(need, src_win)
                    if j in read_after_anchor[layer.index]:  # a residual: read at the output window
                        out_slices[j] = _local(lout, src_win)
                in_full = program.tensors[pcall.inputs[0]].shape
                in_hw = (in_full[axes[0]], in_full[axes[1]])
                storage = f"scratch{stage.index(layer.index)}"
                full_out = program.tensors[full_of[layer.name]]
                yield LayerPatch(
                    patch=n, out=out, windows=wins, layer=layer, func=func, args=tuple(args), shapes=tuple(shapes),
                    in_slices=in_slices, out_slices=out_slices, lout=lout, in_hw=in_hw, axes=axes,
                    pad=_patch_padding(layer, lout, in_hw) if layer.op in WINDOWED else (0, 0, 0, 0),
                    storage=storage, view=f"{storage}_{lout.y0}_{lout.y1}_{lout.x0}_{lout.x1}",
                    out_shape=_shape_with_window(full_out.shape, axes, lout), dtype=full_out.dtype,
                )
            n += 1


def build_patch_stage(program: Program, layers: list[Layer], plan: PatchPlan, dry_run: bool = False) -> Program:
    """Replace the per-layer program's first K calls by a patch stage (see module docstring).

    With `dry_run` no kernel is lowered (the planner only needs the buffers and their sizes)."""
    grouped = program.grouped
    stage = list(plan.stage)
    members = [layers[i] for i in stage]
    call_of = {i: program.calls[i] for i in stage}
    full_of = {layer.name: call_of[layer.index].outputs[0] for layer in members}
    tensors = dict(program.tensors)
    kernels = dict(program.kernels.functions.items())
    prims = tvm.IRModule({gv: f for gv, f in grouped.functions.items() if isinstance(f, tvm.tirx.PrimFunc)})
    variants: dict[tuple, tuple[str, tuple[str, ...]]] = {}
    per_patch: dict[int, list[KernelCall]] = {}
    outs: dict[int, Window] = {}
    all_windows: dict[int, dict] = {}
    scratch: dict[str, int] = {}
    stage_inputs: set[str] = set()
    for lp in layer_patches(program, layers, plan):
        param_names = [p.name for p in lp.func.params]
        if lp.key not in variants and dry_run:
            variants[lp.key] = (f"dry_l{lp.layer.index}_{len(variants)}", tuple(param_names))
        if lp.key not in variants:
            sub = lower_to_program(_variant(lp, prims))
            ((_, prim),) = sub.kernels.functions.items()
            name = f"patch_l{lp.layer.index}_v{len([k for k in variants if k[0] == lp.layer.index])}"
            kernels[tvm.ir.GlobalVar(name)] = prim.with_attr("global_symbol", name)
            variants[lp.key] = (name, sub.calls[0].inputs)  # the kernel's own argument order
        kernel, order = variants[lp.key]
        by_param = dict(zip(param_names, lp.args))
        stage_inputs.update(a for a in lp.args if a in program.tensors and program.tensors[a].kind != "weight")
        tensors[lp.view] = Tensor(lp.view, lp.out_shape, lp.dtype, "scratch", storage=lp.storage)
        scratch[lp.storage] = max(scratch.get(lp.storage, 0), tensors[lp.view].nbytes)
        per_patch.setdefault(lp.patch, []).append(KernelCall(kernel, tuple(by_param[n] for n in order), (lp.view,)))
        outs[lp.patch], all_windows[lp.patch] = lp.out, lp.windows
    patches = [tuple(per_patch[p]) for p in sorted(per_patch)]
    copies = [PatchCopy(calls[-1].outputs[0], full_of[members[-1].name], outs[p].y0, outs[p].x0)
              for p, calls in enumerate(patches)]
    layout = stage_layout(layers, stage)
    for t in [call_of[i].outputs[0] for i in stage[:-1]]:
        tensors.pop(t, None)  # the full early feature maps never exist
    stage_output = full_of[members[-1].name]
    weights = sorted({a for p in patches for c in p for a in c.inputs if program.tensors.get(a) and program.tensors[a].kind == "weight"})
    stage_call = KernelCall(STAGE_KERNEL, tuple(sorted(stage_inputs)) + tuple(weights), (stage_output,))
    used = {c.kernel for c in program.calls[len(stage):]} | {k for k, _ in variants.values()}
    kept = {gv: f for gv, f in kernels.items() if gv.name_hint in used}
    ps = PatchStage(
        plan=plan,
        layout=layout,
        input_names=tuple(sorted(stage_inputs)),
        output=stage_output,
        scratch=scratch,
        scratch_layer={f"scratch{k}": k for k in range(len(stage))},
        patches=tuple(patches),
        copies=tuple(copies),
        windows=tuple(all_windows[p] for p in sorted(all_windows)),
    )
    return replace(
        program,
        kernels=tvm.IRModule(kept),
        calls=(stage_call, *program.calls[len(stage):]),
        tensors=tensors,
        stage=ps,
    )
