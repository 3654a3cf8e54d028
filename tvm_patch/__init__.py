"""tvm-patch: patch-based inference for microcontrollers on Apache TVM.

The public surface:

- `compile_model(path, out_dir, CompileOptions(...))` and `run_compiled(out_dir, device=...)`:
  what `tvmc compile` / `tvmc run` do;
- `PatchStage`: the patch stage as a Relax pass; importing this package also registers the
  Relax pipeline "patch", so `tvm.compile(mod, target, relax_pipeline="patch")` works;
- `PatchTIR`: per-patch tiling of one conv-chain PrimFunc; registered as the TIR pipeline
  "patch", so `tvm.build(prim_mod, target, pipeline="patch")` works.
"""

from __future__ import annotations

from tvm.relax import pipeline as _relax_pipeline
from tvm.tirx import compilation_pipeline as _tir_pipeline

from .compile import CompileResult, compile_model
from .errors import TvmPatchError
from .options import CompileOptions
from .passes.patch_relax import PatchStage, patch_pipeline
from .passes.patch_tir import PatchTIR, patch_tir_pipeline
from .run import run_compiled

if "patch" not in _relax_pipeline.PIPELINE_MAP:
    _relax_pipeline.register_pipeline("patch")(patch_pipeline)
if "patch" not in _tir_pipeline.PIPELINE_MAP:
    _tir_pipeline.register_tir_pipeline("patch", patch_tir_pipeline)

__all__ = [
    "CompileOptions", "CompileResult", "PatchStage", "PatchTIR", "TvmPatchError", "compile_model", "run_compiled",
]
