"""tvm-patch: patch-based inference for microcontrollers on Apache TVM.

The public surface, and nothing else is promised:

- `compile_model(path, out_dir, CompileOptions(...))` and `run_compiled(out_dir, device=...)`:
  what `tvmc compile` / `tvmc run` do; `CompileOptions` with `PatchOptions`, `Schedule`,
  `KernelBackend`; `CompileReport` (report.json); `TvmPatchError`, the base of every error;
- `PatchStage`: the patch stage as a Relax pass; importing this package registers the Relax
  pipeline "patch", so `tvm.compile(mod, target, relax_pipeline="patch")` works;
- `PatchTIR`: per-patch tiling of one conv-chain PrimFunc; registered as the TIR pipeline
  "patch", so `tvm.build(prim_mod, target, pipeline="patch")` works.

Importing it changes nothing else: the two registrations are its only side effect.
"""

from __future__ import annotations

from tvm.relax import pipeline as _relax_pipeline
from tvm.tirx import compilation_pipeline as _tir_pipeline

from tvm_patch_core.errors import TvmPatchError
from tvm_patch_core.options import CompileOptions, KernelBackend, PatchOptions, Schedule
from tvm_patch_core.report import CompileReport

from .compile import CompileResult, compile_model
from .passes.patch_tir import PatchTIR
from .pipelines import PatchStage, patch_relax_pipeline, patch_tir_pipeline
from .run import run_compiled

if "patch" not in _relax_pipeline.PIPELINE_MAP:
    _relax_pipeline.register_pipeline("patch")(patch_relax_pipeline)
if "patch" not in _tir_pipeline.PIPELINE_MAP:
    _tir_pipeline.register_tir_pipeline("patch", patch_tir_pipeline)

__all__ = [
    "CompileOptions",
    "CompileReport",
    "CompileResult",
    "KernelBackend",
    "PatchOptions",
    "PatchStage",
    "PatchTIR",
    "Schedule",
    "TvmPatchError",
    "compile_model",
    "run_compiled",
]
