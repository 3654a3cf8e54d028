"""The same model and options give byte-identical OUT contents wherever OUT is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models import tiny
from tvm_patch.cli import main


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("target, extra", [("cortex-m4", ["--output-format", "mlf"]), ("host", ["--pass", "patch"])])
def test_two_compiles_give_the_same_bytes(tmp_path, target, extra):
    model = tiny.chain(tmp_path / "chain.onnx", layers=3, size=16)
    a, b = tmp_path / "a", tmp_path / "deeper" / "folder" / "b"
    for out in (a, b):
        assert main(["compile", str(model), "--target", target, "-o", str(out), *extra]) == 0
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    differ = [name for name in fa if fa[name] != fb[name]]
    assert differ == [], differ
    assert "model.elf" in fa and "model.elf.map" in fa
