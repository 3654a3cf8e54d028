"""DspKernels: int8 conv kernels become calls of the C micro-kernels in targets/runtime.

TVM's loops for an int8 conv multiply one int8 pair per instruction; Cortex-M4/M7/M33 have
SMLAD (two 16-bit multiply-accumulates). The micro-kernel `tvmp_s8_conv2d`
(tvmp_kernels_s8.c) runs two pixels x two filters per inner step on SMLAD, with a portable
C path for cores without the DSP extension and the host, identical in every byte.

The rule, per kernel of the program (after the in-place rewrite and any tuning records):

1. Its grouped Relax function is exactly IntegerConvDense's conv: astype(x, int32)
   [- x_zp] -> conv2d NHWC / HWIO, groups 1, batch 1, int8 weights -> call_tir(requantize)
   with TFLM rounding (the requantize PrimFunc carries its numbers as `tvmp.requantize`).
2. The kernel runs once, writes no input (not in place), and its column (kh * kw * cin)
   fits the micro-kernel's stack buffer unless the window is 1x1 without padding.
3. Then at compile time: the weights are laid out for the micro-kernel (OHWI rows, filter
   pairs interleaved by four terms; tvmp_kernels_s8.h), the input zero point is folded into
   the bias (bias - x_zp * sum(w)), and the per-tensor multiplier and shift, if any, are
   spread per channel: one int32 table [C, 6]. The kernel becomes one `T.call_extern` with
   the layer's geometry; the graph's weight tensors are replaced by the new ones.

Anything else keeps TVM's kernel: depthwise and grouped convs, dense, NCHW, the patch stage,
ONNX rounding, tuned kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import relax, te, tirx

from tvm_patch_core.graph import Call, Tensor, TensorKind
from tvm_patch_core.stage import STAGE_KERNEL

from ..lower import Program
from .group_kernels import op_name

COLUMN_MAX = 1152  # TVMP_S8_COLUMN_MAX in tvmp_kernels_s8.h
DW_ROW_MAX = 1024  # TVMP_S8_DW_ROW_MAX
REQUANTIZE_ATTR = "tvmp.requantize"  # set by IntegerConvDense on its requantize PrimFunc
DSP_ATTR = "tvmp.dsp"  # the micro-kernel a replaced kernel calls


@dataclass(frozen=True)
class ConvLayer:
    """What the micro-kernel needs of one int8 conv kernel (read off its grouped function)."""

    x: int  # argument positions in the call
    w: int
    table: int | None
    x_zp: int
    strides: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    requantize: dict  # zero_point, lo, hi, multiplier, shift (None when per channel)
    kernel_hw: tuple[int, int] = (0, 0)  # from the weights (use_dsp_kernels fills it in)
    skip: int | None = None  # argument position of a residual ADD / SUB's other operand
    add: tuple[int, ...] = ()  # conv_first, then IntegerElementwise's `tvmp.add` numbers
    depthwise: bool = False  # groups == channels, channel multiplier 1 (HWOI weights)


def match_conv(fn: relax.Function, mod: tvm.IRModule) -> ConvLayer | None:
    """Step 1 of the module docstring, or None."""
    bindings = [b for blk in fn.body.blocks for b in blk.bindings]
    result = fn.body.body
    while bindings and isinstance(bindings[-1].value, relax.Var) and bindings[-1].var.same_as(result):
        result = bindings.pop().value  # `gv = lv` at the end
    values = [b.value for b in bindings]
    if not values or not all(isinstance(v, relax.Call) for v in values):
        return None
    params = list(fn.params)
    k = 0
    cast = values[k]
    if op_name(cast) != "relax.astype" or str(cast.ty.dtype) != "int32" or cast.args[0] not in params:
        return None
    x = params.index(cast.args[0])
    if str(cast.args[0].ty.dtype) != "int8":
        return None
    prev, k, x_zp = bindings[0].var, 1, 0
    if k < len(values) and op_name(values[k]) == "relax.subtract":
        sub = values[k]
        if not sub.args[0].same_as(prev) or not isinstance(sub.args[1], tvm.ir.Constant):
            return None
        zp = sub.args[1].value.numpy()
        if zp.ndim != 0:
            return None
        x_zp, prev, k = int(zp), bindings[k].var, k + 1
    add = ()
    skip = None
    if k + 3 == len(values):  # a residual ADD / SUB after the requantize
        add_call = values[k + 2]
        fields = list(add_call.args[1].fields) if op_name(add_call) == "relax.call_tir" else []
        prim = mod[add_call.args[0]] if fields else None
        numbers = prim.attrs.get(ADD_ATTR) if prim is not None and prim.attrs is not None else None
        req_var = bindings[k + 1].var
        if numbers is None or len(fields) != 2 or sum(f.same_as(req_var) for f in fields) != 1:
            return None
        other = fields[1] if fields[0].same_as(req_var) else fields[0]
        if other not in params or _shape(other) != _shape(req_var):
            return None
        numbers = [int(v) for v in numbers]
        if any(not -31 <= s <= 30 for s in (numbers[4], numbers[6], numbers[8])):
            return None
        add, skip = (int(fields[0].same_as(req_var)), *numbers), params.index(other)
    elif k + 2 != len(values):
        return None
    conv, req = values[k], values[k + 1]
    if op_name(conv) != "relax.nn.conv2d" or not conv.args[0].same_as(prev) or conv.args[1] not in params:
        return None
    a = conv.attrs
    w_shape = _shape(conv.args[1])
    channels = int(conv.ty.shape.values[3])
    depthwise = int(a.groups) > 1 and str(a.kernel_layout) == "HWOI" and w_shape[2:] == (channels, 1)
    depthwise = depthwise and int(a.groups) == channels == _shape(conv.args[0])[3]
    if (
        str(a.data_layout) != "NHWC"
        or not (depthwise or (str(a.kernel_layout) == "HWIO" and int(a.groups) == 1))
        or (depthwise and add)
        or str(a.out_layout) != "NHWC"
        or str(conv.args[1].ty.dtype) != "int8"
        or str(conv.ty.dtype) != "int32"
        or int(conv.ty.shape.values[0]) != 1
    ):
        return None
    if op_name(req) != "relax.call_tir" or not req.args[1].fields[0].same_as(bindings[k].var):
        return None
    prim = mod[req.args[0]]
    spec = prim.attrs.get(REQUANTIZE_ATTR) if prim.attrs is not None else None
    if spec is None or str(spec["rounding"]) != "tflm" or int(spec["axis"]) != 3:
        return None
    rest = list(req.args[1].fields[1:])
    if len(rest) > 1 or any(r not in params for r in rest):
        return None
    if not result.same_as(bindings[-1].var):
        return None
    numbers = {key: (None if spec[key] is None else int(spec[key])) for key in REQUANTIZE_KEYS}
    return ConvLayer(
        x=x,
        w=params.index(conv.args[1]),
        table=params.index(rest[0]) if rest else None,
        x_zp=x_zp,
        strides=tuple(int(s) for s in a.strides),
        padding=tuple(int(p) for p in a.padding),
        dilation=tuple(int(d) for d in a.dilation),
        requantize=numbers,
        skip=skip,
        add=add,
        depthwise=depthwise,
    )


REQUANTIZE_KEYS = ("zero_point", "lo", "hi", "multiplier", "shift")
ADD_ATTR = "tvmp.add"  # set by IntegerElementwise on its int8 add / sub PrimFunc


def _shape(v: relax.Expr) -> tuple[int, ...]:
    return tuple(int(d) for d in v.ty.shape.values)


def dsp_weights(w_hwio: np.ndarray) -> np.ndarray:
    """HWIO int8 weights in the micro-kernel's layout (tvmp_kernels_s8.h), flat."""
    kh, kw, cin, cout = w_hwio.shape
    rows = np.ascontiguousarray(w_hwio.transpose(3, 0, 1, 2).reshape(cout, kh * kw * cin))
    k = rows.shape[1]
    quads = k // 4 * 4
    out = []
    for n in range(0, cout - 1, 2):
        a, b = rows[n], rows[n + 1]
        body = np.stack([a[:quads].reshape(-1, 4), b[:quads].reshape(-1, 4)], axis=1).reshape(-1)
        out += [body, a[quads:], b[quads:]]
    if cout % 2:
        out.append(rows[-1])
    return np.concatenate(out).astype(np.int8)


def dsp_table(layer: ConvLayer, w_hwio: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """[C, 6] int32, per channel: bias (the input zero point folded in, but for depthwise, whose
    kernel subtracts it), multiplier, left shift (shift > 0, at most 30) and right shift e (-shift,
    at most 31), clamped as the TIR kernel clamps a run-time shift, and the rounding nudge
    2^30 + 2^(30 + e) as its low and high 32-bit words (tvmp_kernels_s8.h)."""
    cout = w_hwio.shape[2] if layer.depthwise else w_hwio.shape[3]
    bias = np.zeros(cout, np.int64) if table is None else np.broadcast_to(table[0], (cout,)).astype(np.int64)
    if not layer.depthwise:
        bias = bias - layer.x_zp * w_hwio.astype(np.int64).sum(axis=(0, 1, 2))
    rq = layer.requantize
    if rq["multiplier"] is None:
        mult, shift = table[1].astype(np.int64), table[2].astype(np.int64)
    else:
        mult, shift = np.full(cout, rq["multiplier"]), np.full(cout, rq["shift"])
    left, right = np.clip(shift, 0, 30), np.clip(-shift, 0, 31)
    nudge = (1 << 30) + np.left_shift(np.int64(1), 30 + right)
    rows = [bias, mult, left, right, nudge & 0xFFFFFFFF, nudge >> 32]
    wrapped = (np.stack(rows, axis=1) + (1 << 31)) % (1 << 32) - (1 << 31)  # as int32 words
    return wrapped.astype(np.int32)


def dsp_conv_func(layer: ConvLayer, x_shape: tuple, y_shape: tuple, w_size: int) -> tirx.PrimFunc:
    """The replacement kernel: one call of tvmp_s8_conv2d."""
    _, in_h, in_w, in_c = x_shape
    _, out_h, out_w, out_c = y_shape
    k_h, k_w = layer.kernel_hw
    x = te.placeholder(x_shape, "int8", "x")
    w = te.placeholder((w_size,), "int8", "w")
    t = te.placeholder((out_c, 6), "int32", "table")
    rq = layer.requantize
    geometry = (in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, *layer.strides, *layer.padding[:2], *layer.dilation)
    numbers = (layer.x_zp, rq["zero_point"], rq["lo"], rq["hi"], *layer.add)
    ins = [x, w, t]
    if layer.skip is not None:
        ins.append(te.placeholder(y_shape, "int8", "skip"))
    symbol = "tvmp_s8_conv2d" if layer.skip is None else "tvmp_s8_conv2d_add"
    if layer.depthwise:
        symbol, geometry = "tvmp_s8_depthwise", (in_h, in_w, in_c, out_h, out_w, *geometry[6:])

    def body(ins: list[tirx.Buffer], outs: list[tirx.Buffer]) -> tirx.Expr:
        args = [b.data for b in (*ins, *outs)] + [tirx.const(v, "int32") for v in (*geometry, *numbers)]
        return tirx.call_extern("int32", symbol, *args)

    y = te.extern(y_shape, ins, body, dtype="int8", name="s8_conv2d")
    return te.create_prim_func([*ins, y]).with_attr(DSP_ATTR, symbol)


def fits(layer: ConvLayer, kernel_hw: tuple[int, int], in_c: int) -> bool:
    """Step 2: the column of a window that is not 1x1 without padding fits the stack buffer."""
    direct = kernel_hw == (1, 1) and layer.padding[:2] == (0, 0)
    return direct or kernel_hw[0] * kernel_hw[1] * in_c <= COLUMN_MAX


def depthwise_fits(layer: ConvLayer, x_shape: tuple, y_shape: tuple, in_place: bool) -> bool:
    """tvmp_s8_depthwise keeps two output rows on the stack and stores each one row late;
    in place (y over x) that is enough when no row after the next reads input that the
    stored row overwrites."""
    _, _, in_w, c = x_shape
    _, out_h, out_w, _ = y_shape
    if out_w * c > DW_ROW_MAX:
        return False
    if not in_place:
        return True
    s, pad = layer.strides[0], layer.padding[0]
    return all((r + 1) * out_w <= max(0, (r + 2) * s - pad) * in_w for r in range(out_h - 2))


def use_dsp_kernels(program: Program, keep: frozenset[str] = frozenset()) -> Program:
    """The program with every conv kernel that matches the rule (module docstring) replaced;
    `keep`: kernels left as they are (tuned ones)."""
    graph = program.graph
    tensors = dict(graph.tensors)
    calls = list(graph.calls)
    kernels = dict(program.kernels.functions.items())
    by_name = {gv.name_hint: gv for gv in kernels}
    users: dict[str, int] = {}
    readers: dict[str, int] = {}
    for c in calls:
        users[c.kernel] = users.get(c.kernel, 0) + 1
        for t in c.inputs:
            readers[t] = readers.get(t, 0) + 1
    grouped = {gv.name_hint: gv for gv in program.grouped.functions}
    for i, call in enumerate(calls):
        name = call.kernel
        gv = by_name.get(name)
        if gv is None or name == STAGE_KERNEL or name in keep or users[name] != 1 or name not in grouped:
            continue
        func = kernels[gv]
        noalias = func.attrs is None or bool(func.attrs.get("tirx.noalias", True))
        fn = program.grouped[grouped[name]]
        if not isinstance(fn, relax.Function) or len(fn.params) != len(call.inputs) or len(call.outputs) != 1:
            continue
        layer = match_conv(fn, program.grouped)
        if layer is None or (not noalias and layer.skip is None and not layer.depthwise):
            continue  # in place: over a residual's skip input (read before it is written), depthwise
        w_t = tensors[call.inputs[layer.w]]
        t_t = tensors[call.inputs[layer.table]] if layer.table is not None else None
        if w_t.kind is not TensorKind.WEIGHT or (t_t is not None and t_t.kind is not TensorKind.WEIGHT):
            continue
        w_hwio = np.asarray(w_t.data)
        kh, kw, in_c, _ = w_hwio.shape
        x_shape = tensors[call.inputs[layer.x]].shape
        y_shape = tensors[call.outputs[0]].shape
        if layer.depthwise and not depthwise_fits(layer, x_shape, y_shape, not noalias):
            continue
        if not layer.depthwise and not fits(layer, (kh, kw), in_c):
            continue
        layer = replace(layer, kernel_hw=(kh, kw))
        new_w = w_hwio.reshape(-1).copy() if layer.depthwise else dsp_weights(w_hwio)
        new_t = dsp_table(layer, w_hwio, None if t_t is None else np.asarray(t_t.data))
        w_id = _fresh(tensors, w_t, readers, new_w)
        t_id = _fresh(tensors, t_t, readers, new_t)
        skip = () if layer.skip is None else (call.inputs[layer.skip],)
        calls[i] = Call(name, (call.inputs[layer.x], w_id, t_id, *skip), call.outputs)
        new = dsp_conv_func(layer, x_shape, y_shape, new_w.size).with_attr("global_symbol", name)
        kernels[gv] = new if noalias else new.with_attr("tirx.noalias", False)
    used = {t for c in calls for t in (*c.inputs, *c.outputs)} | set(graph.inputs) | set(graph.outputs)
    tensors = {k: v for k, v in tensors.items() if v.kind is not TensorKind.WEIGHT or k in used}
    new_graph = replace(graph, tensors=tensors, calls=tuple(calls))
    return replace(program, graph=new_graph, kernels=tvm.IRModule(kernels))


def _fresh(tensors: dict[str, Tensor], old: Tensor | None, readers: dict[str, int], data: np.ndarray) -> str:
    """A weight tensor holding `data`: `old`'s id when only this call reads it, else a new id."""
    if old is not None and readers.get(old.name, 0) == 1:
        name = old.name
    else:
        k = len(tensors)
        while f"w{k}" in tensors:
            k += 1
        name = f"w{k}"
    label = old.label if old is not None and name == old.name else name
    tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), TensorKind.WEIGHT, label, data)
    return name
