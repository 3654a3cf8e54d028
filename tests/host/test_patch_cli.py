"""`tvmc compile --pass patch` from the command line: the cap is honoured or refused clearly."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.conftest import mlperf_model
from tvm_patch.cli import main


@pytest.mark.slow
def test_cap_is_honoured_and_report_has_the_patch_fields(tmp_path, capsys):
    out = tmp_path / "out"
    # 40 KiB: below the per-layer arena of vww_96_int8 (55,296 B), above the best patch plans.
    rc = main(
        [
            "compile",
            str(mlperf_model("vww_96_int8.tflite")),
            "--target",
            "host",
            "--pass",
            "patch",
            "--sram-cap",
            "40KiB",
            "--plot",
            str(tmp_path / "profile.png"),
            "-o",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = json.loads((out / "report.json").read_text())
    assert r["schedule"] == "patch"
    assert r["peak_sram_bytes"] <= 40 * 1024 < r["layer_peak_sram_bytes"]
    for key in (
        "layer_macs",
        "peak_sram_bytes_excl_input",
        "layer_peak_sram_bytes_excl_input",
        "predicted_peak_sram_bytes",
    ):
        assert key in r, key
    stage = r["patch_stages"][0]
    assert stage["layers"] and stage["grid"] and stage["tiles_h"] and stage["tiles_w"]
    assert all("input_window_max" in row and "halo_rows_max" in row for row in stage["per_layer"])


def test_impossible_cap_is_one_line_with_the_numbers(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "compile",
            str(mlperf_model("kws_ref_model.tflite")),
            "--target",
            "host",
            "--pass",
            "patch",
            "--sram-cap",
            "1KiB",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert "SramCapExceeded" in err and "1,024 B" in err and "patches" in err
    assert not out.exists()


def test_explicit_grid_and_split_are_honoured(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "compile",
            str(mlperf_model("vww_96_int8.tflite")),
            "--target",
            "host",
            "--pass",
            "patch",
            "--split",
            "3",
            "--patches",
            "3x2",
            "-o",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    stage = json.loads((out / "report.json").read_text())["patch_stages"][0]
    assert stage["grid"] == [3, 2] and len(stage["layers"]) == 3


def test_model_without_a_stage_stays_per_layer_and_says_why(tmp_path, capsys):
    """A dense-only model has no spatial prefix to patch: built per layer, the report says why."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [16, 4], [0.1] * 64)
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, [4, 4], [0.2] * 16)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w, w2])
    path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "host", "--pass", "patch", "-o", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["schedule"] == "layer"
    assert "matmul" in r["patch_refused"]
    assert "patch pass refused" in capsys.readouterr().out


@pytest.mark.slow
def test_pareto_prints_the_front_and_max_extra_macs_picks_from_it(tmp_path, capsys):
    """`--pareto` prints every front plan with the built one starred; the report holds the same
    front; `--max-extra-macs` builds a plan within the bound, and the front draws beside the profile."""
    model = str(mlperf_model("vww_96_int8.tflite"))
    out = tmp_path / "auto"
    assert main(["compile", model, "--target", "host", "--pass", "patch", "--pareto", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    stage = json.loads((out / "report.json").read_text())["patch_stages"][0]
    front = stage["front"]
    assert f"Pareto front ({len(front)} plans of {stage['plans_considered']:,}" in text
    starred = [line for line in text.splitlines() if line.lstrip().startswith("* ") and " B " in line]
    (chosen,) = [p for p in front if p["chosen"]]
    assert len(starred) == 1 and f"{chosen['arena_bytes']:,} B" in starred[0]
    assert [p["extra_macs"] for p in front] == sorted(p["extra_macs"] for p in front)
    assert all(a["arena_bytes"] > b["arena_bytes"] for a, b in itertools.pairwise(front))  # each step buys SRAM

    bound = chosen["extra_fraction_of_model"] / 2
    out2 = tmp_path / "bounded"
    png = tmp_path / "front.png"
    args = ["compile", model, "--target", "host", "--pass", "patch", "--max-extra-macs", f"{100 * bound:.3f}%"]
    assert main([*args, "--plot", str(png), "-o", str(out2)]) == 0, capsys.readouterr().err
    r = json.loads((out2 / "report.json").read_text())
    assert r["patch_stages"][0]["extra_macs"] <= bound * r["layer_macs"] + 1
    assert r["peak_sram_bytes"] >= json.loads((out / "report.json").read_text())["peak_sram_bytes"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_extra_macs_that_is_not_a_percentage_is_one_line(tmp_path, capsys):
    rc = main(
        [
            "compile",
            str(mlperf_model("vww_96_int8.tflite")),
            "--pass",
            "patch",
            "--max-extra-macs",
            "lots",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "--max-extra-macs 'lots'" in err, err
    assert not (tmp_path / "o").exists()
