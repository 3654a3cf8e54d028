"""Read the layer graph (tvm_patch_core.layers.Layer) off the grouped Relax module."""

from __future__ import annotations

from collections.abc import Iterable

import tvm
from tvm import relax

from tvm_patch_core.layers import Layer

from .passes.group_kernels import ANCHOR_OPS, op_name, tensor_bytes


def _shape(ty: relax.TensorType) -> tuple[int, ...]:
    return tuple(int(d) for d in ty.shape.values)


def _prod(xs: Iterable[int]) -> int:
    n = 1
    for x in xs:
        n *= int(x)
    return n


def _anchor_info(call: relax.Call) -> dict:
    name = op_name(call)
    attrs = call.attrs
    out = _shape(call.ty)
    info: dict = {"op": name.removeprefix("relax.")}
    if name in ("relax.nn.conv2d", "relax.nn.conv1d"):
        w = _shape(call.args[1].ty)
        layout = str(attrs.kernel_layout)
        ksp = tuple(w[layout.index(c)] for c in "HW" if c in layout)
        cin_per_group = w[layout.index("I")]
        info.update(
            kernel=ksp,
            strides=tuple(int(s) for s in attrs.strides),
            padding=tuple(int(p) for p in attrs.padding),
            dilation=tuple(int(d) for d in attrs.dilation),
            groups=int(attrs.groups),
            layout=str(attrs.data_layout),
            macs=_prod(out) * cin_per_group * _prod(ksp),
        )
    elif name == "relax.matmul":
        k = _shape(call.args[0].ty)[-1]
        info.update(macs=_prod(out) * k)
    elif name in ("relax.nn.max_pool2d", "relax.nn.avg_pool2d"):
        info.update(
            kernel=tuple(int(s) for s in attrs.pool_size),
            strides=tuple(int(s) for s in attrs.strides),
            padding=tuple(int(p) for p in attrs.padding),
            layout=str(attrs.layout),
        )
    return info


def _data_input(grouped: tvm.IRModule, call: relax.Call, head: relax.Call) -> str:
    """The argument of `call` that reaches the anchor op's data operand (its first argument)
    through the kernel's elementwise prologue (casts, zero-point subtraction, pad)."""
    if not head.args:
        return ""
    x = head.args[0]
    if isinstance(call.op, tvm.ir.GlobalVar):
        fn = grouped[call.op]
        value_of = {b.var: b.value for blk in fn.body.blocks for b in blk.bindings}
        while x in value_of:
            value = value_of[x]
            if not isinstance(value, relax.Call) or not value.args:
                return ""
            x = value.args[0]
        x = dict(zip(fn.params, call.args, strict=True)).get(x)
    return x.name if isinstance(x, relax.Var) else ""


def layer_graph(grouped: tvm.IRModule) -> list[Layer]:
    """One Layer per kernel call of the grouped `main`, in execution order."""
    layers: list[Layer] = []
    main = grouped["main"]
    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if not isinstance(v, relax.Call) or isinstance(v.ty, relax.TupleType):
                continue
            if isinstance(v.op, tvm.ir.GlobalVar):
                inner = [x.value for blk in grouped[v.op].body.blocks for x in blk.bindings]
            else:
                inner = [v]
            calls = [c for c in inner if isinstance(c, relax.Call)]
            anchors = [c for c in calls if op_name(c) in ANCHOR_OPS]
            head = anchors[0] if anchors else calls[0]
            info = _anchor_info(head)
            if len(anchors) > 1:
                info["macs"] = sum(_anchor_info(a).get("macs", 0) for a in anchors)
            ins = tuple(_shape(a.ty) for a in v.args if isinstance(a, relax.Var) and hasattr(a.ty, "shape"))
            in_bytes = sum(tensor_bytes(a.ty) for a in v.args if isinstance(a, relax.Var))
            layers.append(
                Layer(
                    index=len(layers),
                    name=b.var.name,
                    inputs=tuple(a.name for a in v.args if isinstance(a, relax.Var)),
                    input_shapes=ins,
                    output_shape=_shape(b.var.ty),
                    dtype=str(b.var.ty.dtype),
                    activation_bytes=in_bytes + tensor_bytes(b.var.ty),
                    data_input=_data_input(grouped, v, head) if anchors else "",
                    **info,
                )
            )
    return layers
