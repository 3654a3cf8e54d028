"""int8 models are integer programs whose outputs equal TFLite Micro's, byte for byte (host).

Every int8 TFLite model we have (the MLPerf Tiny three in ../shared/models, the generated
ones in tests/data/models), both schedules, five seeded random inputs each, against TFLite
Micro's reference kernels (tests/reference/tflm.py). The same on Cortex-M4 in QEMU:
tests/qemu/test_int8_tflm_qemu.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax

from tests.conftest import MLPERF_TINY, REPO
from tests.reference.tflm import random_inputs, tflm_outputs_many
from tvm_patch.run import run_compiled

SEEDS = range(5)
INT8_MODELS = [MLPERF_TINY / f"{n}.tflite" for n in ("vww_96_int8", "kws_ref_model", "pretrainedResnet_quant")]
INT8_MODELS += sorted((REPO / "tests" / "data" / "models").glob("*.tflite"))
IDS = [p.stem for p in INT8_MODELS]
# issue 10's flash target for vww_96_int8 on cortex-m4 (TFLM's reference kernels: 465,980 B)
VWW_FLASH_LIMIT = 400_000
# rodata beyond the weights and tables (bench/int8.py: 7,664 B on vww_96_int8): per tensor a
# DLTensor (40 B) and its shape (8 B a dimension, at most 4), per constant up to 15 B of 16-byte
# alignment, per kernel call its argument array (4 B an argument), and the runtime's own
# strings (fault names, hex digits: under 2 KiB)
DESCRIPTOR_BYTES = 40 + 8 * 4
ALIGNMENT_BYTES = 15
RUNTIME_RODATA_BYTES = 2_048


def model_path(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    return path


def as_tflm(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """`got` in TFLite's output shape. TVM's TFLite frontend keeps FULLY_CONNECTED's leading
    dimensions (mobilenet_v3_style: [1, 1, 1, 10] where TFLite says [1, 10]); the bytes are
    what is compared."""
    assert got.size == want.size, (got.shape, want.shape)
    return got.reshape(want.shape)


def assert_equals_tflm(out_dir: Path, model: Path) -> None:
    inputs = [random_inputs(model, seed) for seed in SEEDS]
    want = tflm_outputs_many(model, inputs)
    for seed, x, w in zip(SEEDS, inputs, want, strict=True):
        got = run_compiled(out_dir, device="host", inputs=x).outputs[0]
        np.testing.assert_array_equal(as_tflm(got, w[0]), w[0], err_msg=f"{model.name}, seed {seed}")


@pytest.mark.parametrize("model", INT8_MODELS, ids=IDS)
def test_no_float_left_in_the_lowered_model(model):
    """After load_model every weight is an int8 / int32 constant and no op computes in float
    (no dequantize / float op / quantize survives)."""
    from tvm_patch.frontend import load_model

    mod = load_model(model_path(model)).mod
    floats = []
    for b in mod["main"].body.blocks[0].bindings:
        if str(getattr(b.var.ty, "dtype", "")).startswith("float"):
            floats.append(b.var.name)
        for a in getattr(b.value, "args", []):
            fields = a.fields if isinstance(a, relax.Tuple) else [a]
            floats += [
                str(f.ty) for f in fields if isinstance(f, tvm.ir.Constant) and str(f.ty.dtype).startswith("float")
            ]
    assert not floats, f"{model.name}: float values or constants left: {floats[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["layer", "patch"])
@pytest.mark.parametrize("model", INT8_MODELS, ids=IDS)
def test_host_equals_tflite_micro(model, schedule, compiled):
    result = compiled(model_path(model), target="host", schedule=schedule)
    assert_equals_tflm(result.out_dir, model)


@pytest.mark.slow
def test_vww_int8_flash_and_rodata(compiled):
    """flash <= 400,000 B on cortex-m4, and rodata is the int8 weights, the int32
    [bias; multiplier; shift] tables and lookup tables, plus a stated overhead per constant."""
    result = compiled(model_path(MLPERF_TINY / "vww_96_int8.tflite"), target="cortex-m4")
    assert result.report.flash_bytes <= VWW_FLASH_LIMIT, result.report.flash_bytes
    from tvm_patch.targets.toolchain import elf_sizes

    src = result.out_dir / "src"
    weights = next(src.glob("tvmgen_*_weights.c")).read_text()
    calls = next(p for p in src.glob("tvmgen_*.c") if not p.name.endswith("_weights.c")).read_text()
    consts = [int(n) for n in re.findall(r"/\* w\d+: [a-z0-9]+\[[^\]]*\], (\d+) bytes \*/", weights)]
    tensors = calls.count("static const DLTensor t_")
    arguments = sum(len(a.split(",")) for a in re.findall(r"static const DLTensor\* const a\[\] = \{([^}]*)\}", calls))
    bound = tensors * DESCRIPTOR_BYTES + len(consts) * ALIGNMENT_BYTES + 4 * arguments + RUNTIME_RODATA_BYTES
    overhead = elf_sizes(result.elf)["rodata"] - sum(consts)
    assert 0 < overhead <= bound, (overhead, bound, tensors, len(consts), arguments)
