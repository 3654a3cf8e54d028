"""SramCap on real kernels: the workspace estimate bounds what the C backend asks for."""

from __future__ import annotations

import sys

import tvm

from tests.models import zoo
from tvm_patch.frontend import load_model
from tvm_patch.lower import lower_to_program
from tvm_patch.targets.workspace import workspaces
from tvm_patch.tune.postproc import Rejections, SramCap, workspace_bytes
from tvm_patch.tune.tasks import task_module
from tvm_patch.tune.tuner import _without_tensor_intrinsics


def _kernels(tmp_path):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8)], 3, 16), tmp_path / "c.onnx")
    return lower_to_program(load_model(model).mod)


def test_workspace_estimate_bounds_the_c_backend(tmp_path):
    program = _kernels(tmp_path)
    for gv in program.kernels.functions:
        for func in (program.fused[gv.name_hint], program.kernels[gv.name_hint]):  # unscheduled, InlineKernels
            mod = task_module(func)
            assert workspaces(mod).get("main", 0) <= workspace_bytes(mod)
        # FuseTIR's kernels hold full-size temporaries; InlineKernels' hold (almost) none
        assert workspace_bytes(task_module(program.kernels[gv.name_hint])) < workspace_bytes(
            task_module(program.fused[gv.name_hint])
        )


def test_sram_cap_rejects_and_counts(tmp_path):
    program = _kernels(tmp_path)
    func = next(iter(program.fused.functions.values()))
    need = workspace_bytes(task_module(func))
    seen = Rejections()
    assert SramCap("k", need, seen).apply(tvm.s_tir.Schedule(task_module(func)))
    tight = SramCap("k", need - 1, seen)
    assert not tight.apply(tvm.s_tir.Schedule(task_module(func)))
    assert not tight.clone().apply(tvm.s_tir.Schedule(task_module(func)))  # clones share the count
    assert seen.counts == {"k": 2} and seen.total == 2


def test_tensor_intrinsic_stand_in_is_removed_afterwards():
    name = "tvm.s_tir.tensor_intrin"
    had = name in sys.modules
    with _without_tensor_intrinsics():
        assert name in sys.modules
    assert (name in sys.modules) == had
