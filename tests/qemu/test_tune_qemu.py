"""`tvmc tune --runner qemu`: candidates measured by instruction count on the Cortex-M4 board."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.models import zoo
from tvm_patch.cli import main
from tvm_patch.run import run_compiled


@pytest.mark.qemu
@pytest.mark.slow
def test_tune_in_qemu_then_compile_and_run(tmp_path, capsys):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8)], 3, 16), tmp_path / "chain.onnx")
    records = tmp_path / "records.json"
    assert (
        main(
            [
                "tune",
                str(model),
                "--target",
                "cortex-m4",
                "--runner",
                "qemu",
                "--trials",
                "16",
                "--sram-cap",
                "6KiB",
                "-o",
                str(records),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "instr" in printed and "over the cap rejected" in printed
    doc = json.loads(records.read_text())
    assert doc["runner"] == "qemu" and doc["target"]["board"] == "mps2-an386"
    # instruction counts are whole numbers (stored as count x 1e-9 s)
    times = [t for r in doc["records"] for t in r[1][1]]
    assert times and all(abs(t * 1e9 - round(t * 1e9)) < 1e-3 for t in times)

    for out, extra in (("tuned", ["--tuning-records", str(records)]), ("untuned", [])):
        assert main(["compile", str(model), "--target", "cortex-m4", "-o", str(tmp_path / out), *extra]) == 0
    report = json.loads((tmp_path / "tuned" / "report.json").read_text())
    assert report["peak_sram_bytes"] <= 6 * 1024
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype("float32")
    tuned = run_compiled(tmp_path / "tuned", device="qemu", inputs=[x])
    untuned = run_compiled(tmp_path / "untuned", device="qemu", inputs=[x])
    np.testing.assert_allclose(
        tuned.outputs[0], untuned.outputs[0], rtol=1e-5, atol=1e-5 * float(np.abs(untuned.outputs[0]).max())
    )
    # only records faster than InlineKernels' schedule are applied
    assert tuned.report.instructions <= untuned.report.instructions


@pytest.mark.qemu
def test_measure_kernel_counts_are_deterministic(tmp_path):
    import tvm
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from tvm_patch.frontend import load_model
    from tvm_patch.lower import lower_to_program
    from tvm_patch.tune.runners import InProcessBuilder, measure_kernel, tuning_target
    from tvm_patch_core.boards import board_for

    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(4, stride=2)], 3, 8), tmp_path / "one.onnx")
    program = lower_to_program(load_model(model).mod)
    func = next(iter(program.kernels.functions.values()))
    board = board_for("cortex-m4")
    mod = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
    built = InProcessBuilder("object")._one(mod, tuning_target("qemu", board))
    assert built.error_msg is None, built.error_msg
    args = [(tuple(int(d) for d in a.shape), str(a.dtype)) for a in ArgInfo.from_prim_func(func)]
    counts = {measure_kernel(board, Path(built.artifact_path), args) for _ in range(2)}
    assert len(counts) == 1 and next(iter(counts)) > 0
