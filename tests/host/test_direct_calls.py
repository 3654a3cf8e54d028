"""The call sequence calls each kernel directly: typed data pointers, no TVMFFIAny packing.

The default build passes `(int8_t*)(tvmp_arena + offset)` and weight pointers straight to
`int32_t <kernel>(...)`; its arguments are checked once, when the C is emitted.
`--kernel-calls packed` (a debug build) keeps TVM's packed API with its per-call argument
asserts. Both must compute the same outputs, byte for byte.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import model_inputs
from tvm_patch.run import run_compiled
from tvm_patch.targets.direct_api import KernelSignature
from tvm_patch.targets.emit_c import emit_model
from tvm_patch_core import liveness
from tvm_patch_core.errors import UnsupportedOperator
from tvm_patch_core.graph import Call, Graph, Tensor, TensorKind

# int8, 11 op kinds (pools, grouped conv, tables, transpose, softmax): tests/data/models/README.md
MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "op_coverage_32_int8.tflite"
NAME = "op_coverage_32_int8"
PACKED_CALL = re.compile(r"\b(TVMFFIAny|DLTensor|__tvm_ffi_\w+\()")


def test_direct_build_passes_pointers_not_packed_arguments(compiled):
    built = compiled(MODEL, target="host")
    src = built.out_dir / "src"
    model_c = (src / f"tvmgen_{NAME}.c").read_text()
    kernels_c = (src / "kernels.c").read_text()
    assert PACKED_CALL.search(model_c) is None, PACKED_CALL.search(model_c)
    assert re.search(r"int32_t __tvm_ffi_\w+\(", kernels_c) is None  # no packed wrapper is even built
    calls = re.findall(r"rc = (\w+)\((.*)\);", model_c)
    assert calls and all(re.fullmatch(r"t_\w+(, t_\w+)*", args) for _, args in calls)
    for kernel in {k for k, _ in calls}:
        assert re.search(rf"int32_t {kernel}\(int8_t\* \w+", kernels_c) or re.search(
            rf"int32_t {kernel}\((u?int\d+_t|float)\* ", kernels_c
        ), kernel


def test_direct_and_packed_builds_compute_the_same_outputs(compiled):
    direct = compiled(MODEL, target="host")
    packed = compiled(MODEL, target="host", kernel_calls="packed")
    assert "TVMFFIAny" in (packed.out_dir / "src" / f"tvmgen_{NAME}.c").read_text()  # the debug path is kept
    inputs = model_inputs(direct.report, seed=5)
    got = run_compiled(direct.out_dir, device="host", inputs=inputs).outputs
    want = run_compiled(packed.out_dir, device="host", inputs=inputs).outputs
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert direct.report.peak_sram_bytes == packed.report.peak_sram_bytes
    assert direct.report.flash_bytes < packed.report.flash_bytes


@pytest.mark.skipif(shutil.which("arm-none-eabi-nm") is None, reason="arm-none-eabi-nm not installed")
def test_llvm_objects_define_each_kernel_under_its_own_name(compiled):
    """Cortex-M4 LLVM objects: one global text symbol per kernel the calls name, no packed
    wrapper in the objects or the ELF."""
    built = compiled(MODEL, target="cortex-m4")
    src = built.out_dir / "src"
    kernels = set(re.findall(r"rc = (\w+)\(", (src / f"tvmgen_{NAME}.c").read_text()))
    defined = set()
    for obj in sorted(src.glob("kernels*.o")):
        listing = subprocess.run(["arm-none-eabi-nm", "--defined-only", str(obj)], capture_output=True, text=True)
        defined |= {line.split()[2] for line in listing.stdout.splitlines() if line.split()[1] == "T"}
    assert defined == kernels
    elf = subprocess.run(["arm-none-eabi-nm", str(built.elf)], capture_output=True, text=True).stdout
    assert "__tvm_ffi_" not in elf


def test_a_call_that_does_not_match_its_kernel_is_refused(tmp_path):
    """The check the packed API made on the board, made once by the emitter."""
    tensors = {
        "in0": Tensor("in0", (1, 8), "int8", TensorKind.INPUT),
        "t0": Tensor("t0", (1, 8), "int8", TensorKind.ACTIVATION),
    }
    graph = Graph(tensors, (Call("k", ("in0",), ("t0",)),), ("in0",), ("t0",))
    plan = liveness.plan(graph, {})
    ok = {"k": KernelSignature((("int8", (1, 8)), ("int8", (1, 8))))}
    emit_model(graph, plan, {}, "m", tmp_path / "ok", signatures=ok)
    wrong = {"k": KernelSignature((("int8", (1, 8)), ("int32", (1, 8))))}
    with pytest.raises(UnsupportedOperator, match=r"argument 1 is t0 int8\[1, 8\], the kernel takes int32\[1, 8\]"):
        emit_model(graph, plan, {}, "m", tmp_path / "wrong", signatures=wrong)
    with pytest.raises(UnsupportedOperator, match=r"passes 2 tensors, the kernel takes 1"):
        emit_model(graph, plan, {}, "m", tmp_path / "few", signatures={"k": KernelSignature((("int8", (1, 8)),))})
    assert not (tmp_path / "wrong").exists()
