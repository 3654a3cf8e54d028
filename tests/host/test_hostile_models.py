"""A model file must not run code or read files: model strings never become C identifiers.

Each payload is an ONNX input name (TVM's importer keeps input names as they are). The model
must compile, compute what onnxruntime computes, and the payload must not run."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.models import tiny
from tvm_patch.compile import compile_model
from tvm_patch.run import run_compiled
from tvm_patch_core.options import CompileOptions

MARK = "tvmp_pwned_marker"
OUR_INCLUDES = {
    "stdint.h",
    "string.h",
    "dlpack/dlpack.h",
    "tvm/ffi/c_api.h",
    "tvmp_runtime.h",
    "tvmp_model.h",
    "tvmgen_m.h",
}

NAMES = {
    # Preprocessor and C lines: before the fix they compiled (rc 0) and ran on `tvmc run`.
    "constructor": 'x[1];}\n__attribute__((constructor)) static void p(void){system("touch MARK");}\nstatic int y',
    "include": "a\n#include </etc/hostname>\n",
    "comment_end": "*/ int evil; /*",
    # Ordinary names that broke the build after a full compile.
    "tflite": "serving_default_input:0",
    "dash": "a-b",
    "space": "my input",
    # Names of our own internal tensors, arena and C keywords: must not alias anything.
    "gv1": "gv1",
    "lv3": "lv3",
    "w0": "w0",
    "ws0": "ws0",
    "in0": "in0",
    "t0": "t0",
    "arena": "tvmp_arena",
    "keyword": "int",
    "main": "main",
}


def _run(path, out_dir, inputs, target="host"):
    built = compile_model(path, out_dir, CompileOptions(target=target))
    return built, run_compiled(built.out_dir, device="host", inputs=inputs).outputs


@pytest.mark.parametrize("case", sorted(NAMES))
def test_hostile_input_name_compiles_and_computes_the_model(tmp_path, case):
    name = NAMES[case].replace("MARK", str(tmp_path / MARK))
    path = tiny.conv(tmp_path / "m.onnx", input_names=(name,))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype("float32")
    built, got = _run(path, tmp_path / "out", [x])
    want = tiny.reference(path, [x])[0]
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
    assert not (tmp_path / MARK).exists(), "the payload ran"
    assert built.report.inputs[0].name == name  # people still see the model's own name
    for src in (built.out_dir / "src").glob("*.[ch]"):
        text = src.read_text()
        assert "system(" not in text and "/etc/hostname" not in text, src.name
        if src.name.startswith(("tvmgen_", "tvmp_")):  # ours: only the includes we write
            includes = {m.group(1) for m in re.finditer(r"^\s*#\s*include\s*[<\"]([^>\"]+)", text, re.MULTILINE)}
            assert includes <= OUR_INCLUDES, (src.name, includes - OUR_INCLUDES)


def test_names_that_collide_after_sanitizing_stay_two_inputs(tmp_path):
    """`a-b` and `a_b` sanitize alike; they are still two inputs, summed before the conv."""
    path = tiny.conv(tmp_path / "m.onnx", input_names=("a-b", "a_b", "a b"))
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 3, 8, 8)).astype("float32") for _ in range(3)]
    built, got = _run(path, tmp_path / "out", xs)
    np.testing.assert_allclose(got[0], tiny.reference(path, xs)[0], rtol=1e-5, atol=1e-5)
    assert [i.name for i in built.report.inputs] == ["a-b", "a_b", "a b"]
    assert len({i.tensor for i in built.report.inputs}) == 3


def test_hostile_name_on_cortex_m_project_has_no_payload(tmp_path):
    """The same C lands in OUT/project and the firmware: no payload there either."""
    name = NAMES["constructor"].replace("MARK", str(tmp_path / MARK))
    path = tiny.conv(tmp_path / "m.onnx", input_names=(name,))
    built = compile_model(path, tmp_path / "out", CompileOptions(target="cortex-m4"))
    text = "".join(p.read_text(errors="replace") for p in (built.out_dir / "project" / "model").glob("*.[ch]"))
    assert "system(" not in text and "((constructor))" not in text


@pytest.mark.parametrize("cout", [1, 4])
def test_one_output_channel_conv_with_bias(tmp_path, cout):
    """Conv(x[1,1,16,16], W[1,1,3,3], B[1]) crashed in FuseTIR ("Tensor constants are not
    supported in primitive functions"): a one-element bias must be a kernel parameter too."""
    path = tiny.conv(tmp_path / "m.onnx", cout=cout, cin=1, size=16)
    x = np.random.default_rng(2).standard_normal((1, 1, 16, 16)).astype("float32")
    _, got = _run(path, tmp_path / "out", [x])
    np.testing.assert_allclose(got[0], tiny.reference(path, [x])[0], rtol=1e-5, atol=1e-5)


def test_relax_pipeline_patch_on_a_module_straight_from_from_onnx(tmp_path):
    """A TVM user's module (no FoldConstant, one-channel bias) through relax_pipeline="patch"."""
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    import tvm_patch  # noqa: F401 - registers the pipeline

    path = tiny.conv(tmp_path / "m.onnx", cout=1, cin=1, size=16)
    mod = from_onnx(onnx.load(path), keep_params_in_input=False)
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm", relax_pipeline="patch"), tvm.cpu())
    x = np.random.default_rng(3).standard_normal((1, 1, 16, 16)).astype("float32")
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, tiny.reference(path, [x])[0], rtol=1e-5, atol=1e-5)
