"""Differential fuzzer, the cases: seeded random conv chains and their ONNX models.

    random_case(seed) -> Case            the layers, input size and dtype a seed stands for
    build_model(case) -> onnx.ModelProto fp32 ONNX (onnx.helper), int8 QDQ via zoo.quantize_int8
    (tests/models/fuzz_run.py compiles them per layer and patched and compares with onnxruntime)

The cases and their generation are in tests/models/fuzz_cases.py, the ONNX models in
tests/models/fuzz_onnx.py. This module holds the comparison tolerances and the known bugs, and
the fuzzer's names (those of the cases and models included) are imported from here.

A case covers what issue 8 item 10 lists: Conv with kernels 1..7 (square or not), strides 1..2,
dilations 1..2, explicit symmetric and asymmetric padding or auto_pad, groups (depthwise with
channel multipliers, grouped, one output channel), bias or not, Relu / Clip(0, 6) / Clip with
other or one-sided bounds, residual adds of any earlier tensor of the same shape (the model
input included, operands in either order, an activation after the add or not), MaxPool and
AveragePool (padded or not, count_include_pad), sometimes a GlobalAveragePool tail (which no
patch stage may hold); NCHW as ONNX is, fp32 or int8 QDQ (onnxruntime's static quantization).

An outcome is `ok`, `refused` (a TvmPatchError that refuses on purpose, or the patch schedule's
`patch_refused` reason when it fell back to per layer; the reason text is kept, and an empty or
"None" reason is a crash), `mismatch` (patched vs per-layer: int8 identical, fp32 within 1e-6
normalised; each vs onnxruntime: fp32 within 1e-4 normalised, int8 within 1 LSB of the output
scale) or `crash` (anything else: a TVM error, a BuildError or RunError, a silent fallback).
The per-layer build is checked against onnxruntime even when the patch schedule refuses.
"""

from __future__ import annotations

from .fuzz_cases import Case, InvalidCase, LayerSpec, random_case
from .fuzz_cases import _order_dependent_ties as _order_dependent_ties
from .fuzz_cases import _out_shape as _out_shape
from .fuzz_onnx import build_model, case_input, case_model, output_scale

__all__ = [
    "FP32_VS_ORT",
    "FP32_VS_PATCHED",
    "INT8_VS_ORT_LSB",
    "KNOWN_BUGS",
    "RUN_TIMEOUT_S",
    "STATUSES",
    "Case",
    "InvalidCase",
    "LayerSpec",
    "build_model",
    "case_input",
    "case_model",
    "known_bug",
    "output_scale",
    "random_case",
]

FP32_VS_PATCHED = 1e-6  # patched vs per-layer, fp32: the same sums, float rounding only
FP32_VS_ORT = 1e-4  # vs onnxruntime, fp32: normalised by the reference's largest magnitude
# vs onnxruntime, int8: one step of the output scale. The reference is onnxruntime running the
# QDQ graph as written (graph optimizations off: DQ -> float op -> Q, what TVM's importer
# compiles). Its default session fuses QDQ into integer kernels that round .5 ties their own
# way, and a layer after a tie (an average of two int8 values at one scale is a tie half the
# time) turns one step into several: 5 LSB from the graph as written on fuzz cases. That
# difference is recorded in the checks, not compared.
INT8_VS_ORT_LSB = 1
RUN_TIMEOUT_S = 60.0  # a case's program runs in well under a second
STATUSES = ("ok", "refused", "mismatch", "crash")

# Known bugs the fuzzer may hit, labelled in its report; the one-element-constant crash in
# FuseTIR (GroupKernels' _is_weight) it found is fixed: tests/host/test_hostile_models.py.
KNOWN_BUGS: tuple = ()  # (label, substring of the crash, the case shape): none open


def known_bug(case: Case) -> str:
    """The label of the known bug this case is expected to crash on, or ""."""
    return next((label for label, _text, shape in KNOWN_BUGS if shape(case)), "")
