"""Every user mistake gets one `error:` line with the numbers and the way out, exit 1, and
no OUT folder; TVM's own warnings stay out of the way unless -v."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.models import tiny
from tvm_patch.cli import main


def one_error(argv: list[str], capsys, *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny.conv(tmp_path_factory.mktemp("m") / "m.onnx")


@pytest.fixture(scope="module")
def built(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "out"
    assert main(["compile", str(model), "--target", "host", "-o", str(out)]) == 0
    return out


def test_out_is_a_file(model, tmp_path, capsys):
    f = tmp_path / "out"
    f.write_text("mine")
    one_error(["compile", str(model), "--target", "host", "-o", str(f)], capsys, "not a folder")
    assert f.read_text() == "mine"


def test_out_in_a_folder_that_cannot_be_written(model, capsys):
    """/proc refuses new folders even to root (chmod does not stop root)."""
    one_error(["compile", str(model), "--target", "host", "-o", "/proc/tvmp-out/x"], capsys, "cannot create")


def test_out_with_user_files_is_refused_and_kept(model, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    one_error(["compile", str(model), "--target", "host", "-o", str(out)], capsys, "not written by tvmc")
    assert (out / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("out", [".", ".."])
def test_out_is_the_cwd_or_a_parent(model, tmp_path, monkeypatch, capsys, out):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    one_error(["compile", str(model), "--target", "host", "-o", out], capsys, "current folder")
    assert (work / "keep.txt").read_text() == "x"


def test_out_is_the_models_folder(model, capsys):
    one_error(["compile", str(model), "--target", "host", "-o", str(model.parent)], capsys, "holds the model")
    assert model.is_file()


@pytest.fixture(scope="module")
def chain3(tmp_path_factory) -> Path:
    return tiny.chain(tmp_path_factory.mktemp("c") / "c.onnx", layers=3)


@pytest.mark.parametrize("split", ["1", "999", "0", "x"])
def test_bad_split(chain3, tmp_path, capsys, split):
    err = one_error(
        ["compile", str(chain3), "--target", "host", "--pass", "patch", "--split", split, "-o", str(tmp_path / "o")],
        capsys,
        "--split",
    )
    assert len(err) < 200 and ("2 to 3" in err or "positive" in err), err


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--input-shapes", "x:[1,0,8,8]"], ("dimension 0",)),
        (["--input-shapes", "x:[1,3,8]"], ("rank 3", "rank 4")),
        (["--input-shapes", "nope:[1,3,8,8]"], ("'nope'", "inputs: 'x'")),
    ],
)
def test_bad_compile_options(model, tmp_path, capsys, args, needles):
    one_error(["compile", str(model), "--target", "host", "-o", str(tmp_path / "o"), *args], capsys, *needles)
    assert not (tmp_path / "o").exists()


def test_zero_dimension_in_the_model_is_not_called_dynamic(tmp_path, capsys):
    import onnx

    path = tiny.conv(tmp_path / "z.onnx")
    m = onnx.load(path)
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 0
    onnx.save(m, path)
    err = one_error(["compile", str(path), "--target", "host", "-o", str(tmp_path / "o")], capsys, "dimension 0")
    assert "dynamic" not in err


def test_topk_is_refused_by_name(tmp_path, capsys):
    path = tiny.topk(tmp_path / "t.onnx")
    one_error(
        ["compile", str(path), "--target", "host", "-o", str(tmp_path / "o")], capsys, "UnsupportedOperator", "topk"
    )


def test_nonfinite_weights_are_refused_with_the_name(tmp_path, capsys):
    w = np.ones((4, 3, 3, 3), "float32")
    w[1, 0, 0, 0] = np.nan
    w[2, 0, 0, 0] = np.inf
    path = tiny.conv(tmp_path / "nan.onnx", weight=w)
    one_error(
        ["compile", str(path), "--target", "host", "-o", str(tmp_path / "o")],
        capsys,
        "'W'",
        "2 non-finite",
        "--allow-nonfinite-weights",
    )
    assert main(["compile", str(path), "--target", "host", "-o", str(tmp_path / "o"), "--allow-nonfinite-weights"]) == 0


def test_patch_refusal_never_says_none(tmp_path, capsys):
    path = tiny.conv(tmp_path / "one.onnx")
    assert main(["compile", str(path), "--target", "host", "--pass", "patch", "-o", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "None" not in report["patch_refused"] and "1 layer" in report["patch_refused"]


# --- tvmc run ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: np.save(p, np.zeros((1, 3, 8, 8), "float32")), "single .npy"),
        (lambda p: Path(p).write_text("hello"), "not a .npz"),
        (lambda p: np.savez(p, x=np.array([object()], dtype=object)), "cannot read its arrays"),
        (lambda p: None, "no such file"),
        (lambda p: np.savez(p, y=np.zeros(3), z=np.zeros(3)), "no array named 'x'"),
        (lambda p: np.savez(p, x=np.zeros((1, 3, 8, 8), "float64")), "expected float32"),
    ],
)
def test_bad_run_inputs(built, tmp_path, capsys, make, needle):
    path = tmp_path / "in.npz"
    make(path)
    if not path.exists() and (tmp_path / "in.npz.npy").exists():
        (tmp_path / "in.npz.npy").rename(path)
    one_error(["run", str(built), "--device", "host", "--inputs", str(path)], capsys, needle)


def test_outputs_into_a_missing_folder_is_refused_before_the_run(built, tmp_path, capsys):
    one_error(
        ["run", str(built), "--device", "host", "--outputs", str(tmp_path / "no" / "y.npz")], capsys, "does not exist"
    )


@pytest.mark.parametrize("timeout", ["nan", "0", "-1", "inf"])
def test_bad_timeout(built, capsys, timeout):
    one_error(["run", str(built), "--device", "host", "--timeout", timeout], capsys, "--timeout")


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (lambda r: "{", "not JSON"),
        (lambda r: json.dumps({k: v for k, v in r.items() if k != "inputs"}), "inputs is missing"),
        (lambda r: json.dumps({**r, "outputs": [{**r["outputs"][0], "dtype": "int8"}]}), "do not match"),
        (lambda r: json.dumps({**r, "inputs": [{**r["inputs"][0], "dtype": "object"}]}), "dtype 'object'"),
        (lambda r: json.dumps({**r, "inputs": [{**r["inputs"][0], "shape": [1, -3]}]}), "positive integers"),
    ],
)
def test_tampered_report(built, tmp_path, capsys, tamper, needle):
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    report = json.loads((copy / "report.json").read_text())
    (copy / "report.json").write_text(tamper(report))
    one_error(["run", str(copy), "--device", "host"], capsys, "DamagedOutput", needle)


def test_build_error_is_one_line_with_a_log(tmp_path):
    from tvm_patch.targets.toolchain import build_elf, log_dir
    from tvm_patch_core.boards import board_for
    from tvm_patch_core.errors import BuildError

    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return undeclared_name; }\n")
    with pytest.raises(BuildError) as err:
        build_elf(board_for("host"), [bad], [], tmp_path / "x.elf")
    message = str(err.value)
    assert "\n" not in message and "undeclared_name" in message and "full log:" in message
    log = Path(message.rsplit("full log: ", 1)[1])
    assert log.parent == log_dir() and "undeclared_name" in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.c"]  # nothing left beside the ELF


def test_tvm_warnings_only_with_verbose(model, tmp_path):
    tvmc = str(Path(sys.executable).parent / "tvmc")
    quiet = subprocess.run(
        [tvmc, "compile", str(model), "--target", "cortex-m4", "-o", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run(
        [tvmc, "compile", str(model), "--target", "cortex-m4", "-v", "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loud.returncode == 0 and "vector bits" in loud.stderr


def test_weights_over_the_boards_flash_are_refused_before_the_build(tmp_path, capsys):
    """4.6 MB of float32 weights (500 x 256 x 3 x 3) cannot fit mps2-an386's 4 MiB of code
    memory: refused with both sizes before any kernel is generated, not by the linker."""
    w = np.zeros((500, 256, 3, 3), "float32")
    path = tiny.conv(tmp_path / "big.onnx", cin=256, cout=500, size=4, weight=w)
    err = one_error(["compile", str(path), "--target", "cortex-m4", "-o", str(tmp_path / "o")], capsys,
                    "FlashTooLarge", "4,194,304 B of flash", "mps2-an386")  # fmt: skip
    assert "weights need 4,61" in err and "kernels" not in err.split("flash")[0], err
