"""In-place kernels are built apart, so the others keep LLVM's noalias (TVM drops it module-wide)."""

from __future__ import annotations

import tvm

from tests.models import zoo
from tvm_patch.frontend import load_model
from tvm_patch.layer_graph import layer_graph
from tvm_patch.lower import lower_to_program
from tvm_patch.rewrite import apply_inplace
from tvm_patch.targets.kernels import alias_groups


def test_inplace_kernels_do_not_cost_the_others_noalias(tmp_path):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8, groups=8)], 3, 16), tmp_path / "c.onnx")
    per_layer = lower_to_program(load_model(model).mod)
    program = apply_inplace(per_layer, layer_graph(per_layer.grouped))
    groups = dict(alias_groups(program.kernels))
    assert set(groups) == {"", "_inplace"}
    target = tvm.target.Target(
        {"kind": "llvm", "mtriple": "thumbv7em-none-eabi", "mcpu": "cortex-m4", "mfloat-abi": "hard"}
    )
    ll = tvm.tirx.build(groups[""], target).inspect_source("ll")
    conv = next(gv.name_hint for gv in groups[""].functions)
    assert any(
        line.startswith("define") and f"@{conv}_compute_(" in line and "noalias" in line for line in ll.splitlines()
    )
