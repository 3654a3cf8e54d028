"""In-place kernels are built apart, so the others keep LLVM's noalias (TVM drops it module-wide)."""

from __future__ import annotations

import tvm

from tvm_patch import zoo
from tvm_patch.frontend import load_model
from tvm_patch.inplace import apply_inplace_depthwise
from tvm_patch.kernels import _alias_groups
from tvm_patch.layers import layer_graph
from tvm_patch.lower import lower_to_program


def test_inplace_kernels_do_not_cost_the_others_noalias(tmp_path):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8, groups=8)], 3, 16), tmp_path / "c.onnx")
    per_layer = lower_to_program(load_model(model).mod)
    program = apply_inplace_depthwise(per_layer, layer_graph(per_layer.grouped))
    groups = dict(_alias_groups(program.kernels))
    assert set(groups) == {"", "_inplace"}
    target = tvm.target.Target({"kind": "llvm", "mtriple": "thumbv7em-none-eabi", "mcpu": "cortex-m4", "mfloat-abi": "hard"})
    ll = tvm.tirx.build(groups[""], target).inspect_source("ll")
    conv = next(gv.name_hint for gv in groups[""].functions)
    assert any(line.startswith("define") and f"@{conv}_compute_(" in line and "noalias" in line for line in ll.splitlines())
