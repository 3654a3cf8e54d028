"""Exception types. Every message carries the numbers and, where there is one, the way out."""


class TvmPatchError(Exception):
    """Base class: the CLI prints `error: <message>` and exits non-zero for these."""


class ModelLoadError(TvmPatchError):
    """The model file is missing, unreadable, or not an ONNX/TFLite model."""


class UnsupportedOperator(TvmPatchError):
    """The model uses an operator the importer or the C emitter cannot handle."""


class DynamicShapeError(TvmPatchError):
    """An input or intermediate tensor has a shape that is not known at compile time."""


class ArenaTooLarge(TvmPatchError):
    """The planned arena does not fit the board's RAM."""


class ToolchainMissing(TvmPatchError):
    """A compiler or emulator the build or run needs is not installed."""


class BuildError(TvmPatchError):
    """Compiling or linking the generated C failed."""


class RunError(TvmPatchError):
    """The program crashed, hung, or finished without printing its sentinel line."""


class NonFiniteWeights(ModelLoadError):
    """A weight holds NaN or Inf (refused unless --allow-nonfinite-weights)."""


class OutputDirError(TvmPatchError):
    """OUT cannot be written or replaced safely (not ours, a protected folder, no permission)."""


class BadRunInputs(TvmPatchError):
    """The inputs given to `tvmc run` cannot be read or do not fit the model."""


class DamagedOutput(TvmPatchError):
    """An OUT folder whose report.json or files were changed or truncated after tvmc wrote them."""
