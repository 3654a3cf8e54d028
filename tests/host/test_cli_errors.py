"""Bad input gets one clear error line, a non-zero exit, and leaves nothing in OUT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tvm_patch.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    rc = main(args)
    err = capsys.readouterr().err.strip()
    return rc, err


def tiny_onnx(path: Path, *, op: str = "Relu", dynamic: bool = False, domain: str = "") -> Path:
    dims = ["batch", 4] if dynamic else [1, 4]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    node = helper.make_node(op, ["x"], ["y"], name="layer_one", domain=domain)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)
    onnx.save(model, path)
    return path


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for n in needles:
        assert n in err, err


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "out"
    rc, err = run_cli(["compile", str(tmp_path / "nope.onnx"), "--target", "host", "-o", str(out)], capsys)
    assert_one_line_error(rc, err, "nope.onnx", "no such file")
    assert not out.exists()


def test_not_a_model(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    out = tmp_path / "out"
    rc, err = run_cli(["compile", str(junk), "--target", "host", "-o", str(out)], capsys)
    assert_one_line_error(rc, err, "junk.onnx", "not an ONNX or TFLite model")
    assert not out.exists()


def test_unsupported_operator_names_op_and_layer(tmp_path, capsys):
    model = tiny_onnx(tmp_path / "custom.onnx", op="FancyOp", domain="com.example")
    out = tmp_path / "out"
    rc, err = run_cli(["compile", str(model), "--target", "host", "-o", str(out)], capsys)
    assert_one_line_error(rc, err, "FancyOp", "layer_one")
    assert not out.exists()


def test_dynamic_shape(tmp_path, capsys):
    model = tiny_onnx(tmp_path / "dyn.onnx", dynamic=True)
    out = tmp_path / "out"
    rc, err = run_cli(["compile", str(model), "--target", "host", "-o", str(out)], capsys)
    assert_one_line_error(rc, err, "dynamic shape", "--input-shapes")
    assert not out.exists()


def test_arena_larger_than_board_ram_gives_both_sizes(tmp_path, capsys):
    """A 1x3x1024x1024 float relu needs 2 x 12 MiB live at once; mps2-an386 has 4 MiB of RAM."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1024, 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1024, 1024])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="big_relu")], "g", [x], [y])
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    out = tmp_path / "out"
    rc, err = run_cli(["compile", str(path), "--target", "cortex-m4", "-o", str(out)], capsys)
    assert_one_line_error(rc, err, "25,165,824 bytes", "4,194,304 bytes", "mps2-an386")
    assert not out.exists()


def test_bad_input_shapes_syntax(tmp_path, capsys):
    model = tiny_onnx(tmp_path / "m.onnx")
    rc, err = run_cli(
        ["compile", str(model), "--target", "host", "-o", str(tmp_path / "o"), "--input-shapes", "x=1,4"], capsys
    )
    assert_one_line_error(rc, err, "--input-shapes")


@pytest.mark.parametrize("size,expected", [("256KiB", 262144), ("1.5MiB", 1572864), ("65536", 65536), ("64kB", 64000)])
def test_parse_bytes(size, expected):
    from tvm_patch_core.options import parse_bytes

    assert parse_bytes(size) == expected
