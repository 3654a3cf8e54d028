"""PatchStage (Relax) and the registered pipeline: `tvm.compile(mod, target, relax_pipeline="patch")`.

PatchStage composes the lowering, the planner and two passes (FuseStage, PatchTIR: their own
Before/Expected tests are test_fuse_stage.py and test_patch_tir.py), so it is checked here by
what it must keep: the rest of the model, the function computed, the planner's windows.

Before: a conv chain as the ONNX frontend imports it, one kernel call per layer. After: the
first K calls replaced by ONE call_tir of the fused stage PrimFunc, tiled by PatchTIR (per
patch loops, one scratch pool); the function computed must not change.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

import tvm_patch  # noqa: F401  (registers the "patch" pipeline)
from tests.models import zoo
from tvm_patch.frontend import load_model
from tvm_patch.layer_graph import layer_graph
from tvm_patch.lower import lower_to_program
from tvm_patch.pipelines import PatchStage
from tvm_patch.rewrite import build_stage
from tvm_patch_core.stage import PatchPlan, plan_windows, stage_scratch


def chain(tmp_path):
    specs = [
        zoo.ConvSpec(8, stride=2),
        zoo.ConvSpec(8, groups=8),
        zoo.ConvSpec(12, kernel=1),
        zoo.ConvSpec(12, residual=True),
    ]
    return load_model(zoo.save(zoo.conv_chain(specs, 3, 20), tmp_path / "chain.onnx")).mod


def kernel_calls(mod: tvm.IRModule) -> list[str]:
    return [
        b.value.args[0].name_hint
        for blk in mod["main"].body.blocks
        for b in blk.bindings
        if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.call_tir"
    ]


def test_stage_becomes_one_call_of_a_tiled_kernel(tmp_path):
    mod = chain(tmp_path)
    before = kernel_calls(lower_to_program(mod).lowered)
    after = PatchStage(split=3, patches=(2, 2))(mod)
    calls = kernel_calls(after)
    assert calls[0] == "patch_stage" and "patch_stage" not in calls[1:]
    assert calls[1:] == before[3:]  # the rest of the model as it was
    stage = after["patch_stage"]
    assert bool(stage.attrs["patch_tiled"])
    assert [list(map(list, t)) for t in stage.attrs["patch_rows"]][-1] == [[0, 5], [5, 10]]  # output tiles
    # layers 0 and 1 write 8-channel fp32 maps of 10x10 (3,200 B each in full); per patch the 3x3
    # depthwise needs a 6x6 window of layer 0 and the 1x1 conv a 5x5 one of layer 1, both live
    assert int(stage.attrs["patch_scratch_bytes"]) == (6 * 6 + 5 * 5) * 8 * 4


def test_registered_pipeline_computes_the_same(tmp_path):
    mod = chain(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 3, 20, 20)).astype("float32")
    outs = []
    for pipeline in ("default", "patch"):
        ex = tvm.compile(mod, target="llvm", relax_pipeline=pipeline)
        outs.append(relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)


def test_tir_windows_and_pool_are_the_planners(tmp_path):
    """PatchTIR finds its windows in the IR; the planner predicts them from the layer graph.
    With unequal tiles both must give the same windows and the same scratch pool."""
    program = lower_to_program(chain(tmp_path))
    layers = layer_graph(program.grouped)
    plan = PatchPlan((0, 1, 2), ((0, 4), (4, 10)), ((0, 3), (3, 7), (7, 10)))
    built = build_stage(program, layers, plan)
    func = built.kernels["patch_stage"]
    windows = plan_windows(layers, plan)
    nw = len(plan.tiles_w)
    for layer, rows, cols in zip(plan.stage, func.attrs["patch_rows"], func.attrs["patch_cols"], strict=True):
        assert [list(r) for r in rows] == [
            [windows[t * nw][layer][1].y0, windows[t * nw][layer][1].y1] for t in range(2)
        ]
        assert [list(c) for c in cols] == [[windows[t][layer][1].x0, windows[t][layer][1].x1] for t in range(nw)]
    assert built.stage.pool_bytes == stage_scratch(program.graph, layers, plan, windows, inplace=True)[1]
    alone = build_stage(program, layers, plan, inplace=False)  # every map in a region of its own
    assert alone.stage.pool_bytes == stage_scratch(program.graph, layers, plan, windows)[1] >= built.stage.pool_bytes


def test_streamed_input_pool_is_the_planners():
    """Issue 12 (streamed input): with the model input streamed, the stage kernel's pool also
    holds the input's largest window; the planner's prediction (stage_scratch with
    stream_input) equals the built kernel's pool, on VWW int8."""
    from tests.conftest import mlperf_model

    program = lower_to_program(load_model(mlperf_model("vww_96_int8.tflite")).mod)
    layers = layer_graph(program.grouped)
    plan = PatchPlan(tuple(range(8)), ((0, 6), (6, 12)), ((0, 5), (5, 12)))  # unequal columns
    windows = plan_windows(layers, plan)
    built = build_stage(program, layers, plan, stream_input=True)
    func = built.kernels["patch_stage"]
    assert bool(func.attrs["patch_input_streamed"])
    assert "tvmp_stream_read" in func.script()
    predicted = stage_scratch(program.graph, layers, plan, windows, stream_input=True, inplace=True)[1]
    assert built.stage.pool_bytes == predicted
    # without pairs the input window (live at layer 0 only) only adds bytes; with them the
    # greedy choice may even do better streamed (the window itself can be written over)
    alone = build_stage(program, layers, plan, stream_input=True, inplace=False).stage.pool_bytes
    assert alone == stage_scratch(program.graph, layers, plan, windows, stream_input=True)[1]
    assert alone >= build_stage(program, layers, plan, inplace=False).stage.pool_bytes
