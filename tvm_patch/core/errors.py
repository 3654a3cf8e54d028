"""Every exception tvm-patch raises: all subclasses of TvmPatchError, whose message carries the
numbers and, where there is one, the way out. The CLI prints `error: <Type>: <message>` on
one line and exits 1 for these; anything else is a bug."""


class TvmPatchError(Exception):
    """Base class of every error tvm-patch raises on purpose."""


# --- the model -------------------------------------------------------------------------------


class ModelLoadError(TvmPatchError):
    """The model file is missing, unreadable, not an ONNX/TFLite model, or asks for a file
    outside its folder; or an option names the model's inputs wrongly."""


class NonFiniteWeights(ModelLoadError):
    """A weight holds NaN or Inf (refused unless --allow-nonfinite-weights)."""


class UnsupportedOperator(TvmPatchError):
    """The model uses an operator the importer, TVM's lowering or the C emitter cannot handle."""


class DynamicShapeError(TvmPatchError):
    """An input or intermediate tensor has a shape that is not known at compile time."""


# --- planning --------------------------------------------------------------------------------


class ArenaTooLarge(TvmPatchError):
    """The planned arena does not fit the board's RAM or the --sram-cap."""


class FlashTooLarge(TvmPatchError):
    """The weights (and kernels) cannot fit the board's flash."""


class ArenaOverlapError(TvmPatchError):
    """A plan puts two simultaneously live buffers on the same bytes, or a buffer out of bounds."""


class SramCapExceeded(TvmPatchError):
    """No patch plan fits the SRAM cap."""


class NoPatchStage(TvmPatchError):
    """The model has no prefix a patch stage can hold (the build stays per-layer)."""


class UnsupportedStageLayer(TvmPatchError):
    """A layer whose windows cannot be derived (it must end the patch stage)."""


class PatchTIRError(TvmPatchError):
    """The stage PrimFunc is not a chain of loop nests PatchTIR can tile."""


class NotInplaceable(TvmPatchError):
    """A kernel does not have the shape the in-place schedule rewrites."""


# --- targets ---------------------------------------------------------------------------------


class UnknownBoard(TvmPatchError):
    """A target or board name that is not known."""


class ToolchainMissing(TvmPatchError):
    """A compiler or emulator the build or run needs is not installed."""


class BuildError(TvmPatchError):
    """Compiling or linking the generated C failed."""


class RunError(TvmPatchError):
    """The program crashed, hung, or finished without printing its sentinel line."""


# --- files the user hands us -----------------------------------------------------------------


class OutputDirError(TvmPatchError):
    """OUT cannot be written or replaced safely (not ours, a protected folder, no permission)."""


class BadRunInputs(TvmPatchError):
    """The inputs given to `tvmc run` cannot be read or do not fit the model."""


class DamagedOutput(TvmPatchError):
    """An OUT folder whose report.json or files were changed or truncated after tvmc wrote them."""


# --- tuning ----------------------------------------------------------------------------------


class TuneError(TvmPatchError):
    """The model cannot be tuned as asked (nothing to tune, or already over the cap)."""


class ForeignRecords(TvmPatchError):
    """The records were tuned for another model or target."""


class BadRecords(TvmPatchError):
    """The file is not a tvm-patch records file, or its records are damaged."""
