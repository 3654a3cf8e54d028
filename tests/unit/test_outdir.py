"""OUT safety (tvm_patch/outdir.py): tvmc never deletes anything it did not write."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tvm_patch_core import outdir
from tvm_patch_core.errors import OutputDirError
from tvm_patch_core.outdir import MARKER, STAGING_MARKER, check_out_dir, clean_stale, staged_output


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temporary folder stands in for the home folder and for `/`."""
    fake = tmp_path / "home"
    (fake / "work" / "models").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(fake))
    monkeypatch.setattr(outdir, "ROOT", tmp_path / "root")
    (tmp_path / "root").mkdir()
    monkeypatch.chdir(fake / "work")
    model = fake / "work" / "models" / "m.onnx"
    model.write_bytes(b"model")
    return fake, model


@pytest.mark.parametrize(
    "out, why",
    [
        (".", "current folder"),
        ("..", "home folder"),  # cwd is HOME/work here
        ("models/..", "current folder"),
        ("models", "holds the model"),
        ("models/m.onnx", "not a folder"),
    ],
)
def test_refuses_protected_folders(home, out, why):
    _, model = home
    with pytest.raises(OutputDirError, match=why):
        check_out_dir(out, model)
    assert model.read_bytes() == b"model"


def test_refuses_home_and_root(home, tmp_path):
    fake, model = home
    with pytest.raises(OutputDirError, match="home folder"):
        check_out_dir(fake, model)
    with pytest.raises(OutputDirError, match="root folder"):
        check_out_dir(tmp_path / "root", model)


def test_refuses_a_folder_it_did_not_write(home):
    _, model = home
    user = home[0] / "work" / "results"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not written by tvmc"):
        check_out_dir(user, model)
    assert (user / "notes.txt").read_text() == "mine"


def test_refuses_a_symlink(home):
    _, model = home
    target = home[0] / "work" / "real"
    target.mkdir()
    (home[0] / "work" / "link").symlink_to(target)
    with pytest.raises(OutputDirError, match="symbolic link"):
        check_out_dir("link", model)


def test_accepts_a_new_folder_and_its_own_output(home):
    _, model = home
    out = check_out_dir("out", model)
    assert out.is_absolute() and not out.exists()
    out.mkdir()
    (out / MARKER).write_text("x")
    assert check_out_dir("out", model) == out


def test_replaces_its_own_output_atomically(tmp_path):
    out = tmp_path / "out"
    with staged_output(out) as staging:
        (staging / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1" and (out / MARKER).is_file()
    with staged_output(out) as staging:
        (staging / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or set-aside folder left


def test_a_failed_build_leaves_out_as_it_was(tmp_path):
    out = tmp_path / "out"
    with staged_output(out) as staging:
        (staging / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), staged_output(out) as staging:
        (staging / "half.txt").write_text("?")
        raise RuntimeError("compile failed")
    assert (out / "a.txt").read_text() == "1" and not (out / "half.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_out_gets_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with staged_output(tmp_path / "out"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


def test_stale_staging_of_a_killed_compile_is_cleaned(tmp_path):
    out = tmp_path / "out"
    dead = _dead_pid()
    stale = tmp_path / f".out.tvmc-staging-{dead}-abc"
    stale.mkdir()
    (stale / STAGING_MARKER).write_text(f"{dead}\n")
    (stale / "half.c").write_text("int x;")
    killed_early = tmp_path / f".out.tvmc-staging-{dead}-def"  # killed before its marker: empty
    killed_early.mkdir()
    live = tmp_path / f".out.tvmc-staging-{os.getppid()}-ghi"
    live.mkdir()
    (live / STAGING_MARKER).write_text(f"{os.getppid()}\n")  # a running process: another compile
    foreign = tmp_path / f".out.tvmc-staging-{dead}-user"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")  # no marker and not empty: not ours, never touched
    assert sorted(clean_stale(out)) == sorted([stale, killed_early])
    assert not stale.exists() and not killed_early.exists() and live.exists() and foreign.exists()
