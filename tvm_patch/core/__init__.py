"""tvm_patch_core: the compiler's data and planning, without TVM.

Installed as the top-level package `tvm_patch_core` (pyproject's package-dir), so the pure
floors import in milliseconds: `import tvm_patch` registers TVM pipelines and so imports
TVM, and Python runs a package's __init__ before any of its submodules.

Floor 0, data: errors, names, options, boards, graph (tensors and calls), layers, report,
progress, capture, outdir.
Floor 1, planning: arena, liveness, windows, stage, inplace_rules, plan_score, patch_planner.
"""

if __name__ != "tvm_patch_core":  # the same files imported twice would make two TvmPatchErrors
    raise ImportError(f"import tvm_patch_core, not {__name__}")
