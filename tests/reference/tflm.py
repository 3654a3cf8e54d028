"""TFLite Micro as the bit-exact int8 oracle: a .tflite model's outputs from TFLite Micro's
reference kernels (the `tflite-micro` package from PyPI), the arithmetic that tvm-patch's int8
outputs must equal byte for byte.

How a call runs:

1. The model's input and output tensors are read from the flatbuffer (the `tflite` package);
   inputs of the wrong count, dtype or shape are refused here with `TflmInputError`, before
   any child process starts. Nothing is cast: a float image or an int64 array from
   `rng.integers` is a bug in the caller, not something to round silently.
2. TFLite Micro always runs in a child process (this file run as a script), because an arena
   that is too small can crash the process rather than raise.
3. The arena size is probed once per model file (path, size, mtime) and cached for the
   session: a first guess from the activation bytes, doubled until a child allocates and
   invokes on zero inputs, up to 1 GiB.
4. The child sets the inputs, invokes, and hands the outputs back in an .npz file; any failure
   in it (non-zero exit or a signal) is raised here as `TflmError` with its stderr.

Not done: models with several subgraphs beyond the main one are run but only subgraph 0's
inputs and outputs are checked; custom ops are not registered.
"""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIRST_ARENA_MIN = 64 * 1024  # smallest first guess: TFLM's persistent structures need some KiB
ARENA_MAX = 1 << 30  # beyond this a model is not a microcontroller model: stop probing
CHILD_TIMEOUT_S = 600  # one child's wall-clock limit (a large model on the reference kernels)
# What TFLM prints when the arena is too small ("Failed to allocate tail memory. Requested: 672,
# available 320, missing: 352"); any other failure is not retried with a larger arena.
_ARENA_WORDS = re.compile(r"Failed to allocate|missing: \d+")


class TflmError(RuntimeError):
    """TFLite Micro failed (or crashed) in its child process."""


class TflmInputError(ValueError):
    """The inputs do not match the model's input tensors."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int | None

    def describe(self) -> str:
        q = f", scale {self.scale:.6g}, zero point {self.zero_point}" if self.scale else ""
        return f"{self.dtype.name} {list(self.shape)}{q}"


def _numpy_dtype(tensor_type: int) -> np.dtype:
    import tflite

    names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    name = names.get(tensor_type, f"type {tensor_type}")
    known = {"BOOL": "bool"}
    try:
        return np.dtype(known.get(name, name.lower()))
    except TypeError:
        raise TflmInputError(f"tensor type {name} has no numpy dtype") from None


def model_io(model_path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The model's input and output tensors (subgraph 0), in the model's order."""
    import tflite

    model = tflite.Model.GetRootAsModel(Path(model_path).read_bytes(), 0)
    graph = model.Subgraphs(0)

    def spec(index: int) -> TensorSpec:
        t = graph.Tensors(index)
        q = t.Quantization()
        quantized = q is not None and q.ScaleLength() > 0
        return TensorSpec(
            name=t.Name().decode(),
            shape=tuple(int(d) for d in t.ShapeAsNumpy()),
            dtype=_numpy_dtype(t.Type()),
            scale=float(q.Scale(0)) if quantized else None,
            zero_point=int(q.ZeroPoint(0)) if quantized else None,
        )

    inputs = [spec(int(i)) for i in graph.InputsAsNumpy()]
    outputs = [spec(int(i)) for i in graph.OutputsAsNumpy()]
    return inputs, outputs


def check_inputs(model_path: str | Path, inputs: list[np.ndarray]) -> None:
    """Raise TflmInputError unless `inputs` match the model's input tensors exactly."""
    specs, _ = model_io(model_path)
    name = Path(model_path).name
    if not isinstance(inputs, (list, tuple)):
        raise TflmInputError(f"{name}: inputs must be a list of arrays, got {type(inputs).__name__}")
    if len(inputs) != len(specs):
        raise TflmInputError(
            f"{name} has {len(specs)} input(s) ({'; '.join(s.describe() for s in specs)}), got {len(inputs)} array(s)"
        )
    for i, (x, s) in enumerate(zip(inputs, specs, strict=False)):
        if not isinstance(x, np.ndarray):
            raise TflmInputError(f"{name} input {i}: expected a numpy array, got {type(x).__name__}")
        if x.dtype != s.dtype:
            hint = ""
            if s.scale:
                hint = (
                    f"; quantize first: q = clip(round(x / {s.scale:.6g}) + {s.zero_point}), "
                    f"or .astype({s.dtype.name}) if the values are already {s.dtype.name}"
                )
            raise TflmInputError(
                f"{name} input {i} ({s.name}): dtype {x.dtype.name}, the model wants {s.describe()}{hint}"
            )
        if tuple(x.shape) != s.shape:
            raise TflmInputError(f"{name} input {i} ({s.name}): shape {list(x.shape)}, the model wants {s.describe()}")


def _child(args: list) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), *map(str, args)],
            check=False,  # the caller reads the exit code and stderr
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise TflmError(f"TFLite Micro ({args[0]} {Path(args[1]).name}) took over {CHILD_TIMEOUT_S} s") from None


def _arena_too_small(proc: subprocess.CompletedProcess) -> bool:
    """A crash, or TFLM's own words for an arena that is too small."""
    return proc.returncode < 0 or bool(_ARENA_WORDS.search(proc.stderr or ""))


def _failure(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        how = f"crashed with {signal.Signals(-proc.returncode).name}"
    else:
        how = f"exited with code {proc.returncode}"
    said = [  # TFLM's own lines and the exception, without the Python traceback around them
        line for line in (proc.stderr or "").splitlines() if line.strip() and not line.startswith((" ", "Traceback"))
    ]
    tail = "\n".join(said[-4:])
    return f"{how}: {tail}" if tail else how


def _first_guess(model_path: Path) -> int:
    """Twice the bytes of all non-constant tensors: TFLM's planner never needs more than their
    sum, and the rest covers its persistent structures on ordinary models."""
    import tflite

    model = tflite.Model.GetRootAsModel(model_path.read_bytes(), 0)
    total = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            if model.Buffers(t.Buffer()).DataLength() == 0:
                n = int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
                total += n * _numpy_dtype(t.Type()).itemsize + 16  # 16: TFLM's alignment
    return max(FIRST_ARENA_MIN, 1 << int(np.ceil(np.log2(2 * total))))


@functools.cache
def _probe(path: str, size: int, mtime_ns: int) -> int:
    n_inputs = len(model_io(path)[0])
    arena = _first_guess(Path(path))
    while arena <= ARENA_MAX:
        proc = _child(["probe", path, arena, n_inputs])
        if proc.returncode == 0:
            return arena
        if not _arena_too_small(proc):
            raise TflmError(f"{Path(path).name}: TFLite Micro (arena {arena:,} B) {_failure(proc)}")
        arena *= 2
    raise TflmError(
        f"{Path(path).name}: TFLite Micro did not run with any arena up to {ARENA_MAX:,} B; "
        f"the last try {_failure(proc)}"
    )


def tflm_arena_size(model_path: str | Path) -> int:
    """A tensor arena (bytes, a power of two) with which TFLite Micro allocates and runs the
    model; probed in child processes once per model file and cached."""
    path = Path(model_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file")
    st = path.stat()
    return _probe(str(path), st.st_size, st.st_mtime_ns)


def tflm_outputs_many(
    model_path: str | Path, input_sets: list[list[np.ndarray]], arena_size: int | None = None
) -> list[list[np.ndarray]]:
    """TFLite Micro's outputs for each list of inputs, all in one child process (the
    interpreter is reset between sets)."""
    path = Path(model_path).resolve()
    for inputs in input_sets:
        check_inputs(path, inputs)
    _, out_specs = model_io(path)
    arena = tflm_arena_size(path) if arena_size is None else int(arena_size)
    with tempfile.TemporaryDirectory(prefix="tflm-") as tmp:
        src, dst = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        arrays = {f"s{k}_i{i}": np.ascontiguousarray(x) for k, xs in enumerate(input_sets) for i, x in enumerate(xs)}
        np.savez(src, **arrays)
        n_in = len(model_io(path)[0])
        proc = _child(["run", path, arena, n_in, src, dst, len(input_sets), len(out_specs)])
        if proc.returncode != 0:
            hint = "; the arena is too small" if _arena_too_small(proc) else ""
            raise TflmError(f"{path.name}: TFLite Micro (arena {arena:,} B) {_failure(proc)}{hint}")
        with np.load(dst) as got:
            return [[got[f"s{k}_o{o}"] for o in range(len(out_specs))] for k in range(len(input_sets))]


def tflm_outputs(model_path: str | Path, inputs: list[np.ndarray], arena_size: int | None = None) -> list[np.ndarray]:
    """TFLite Micro's outputs (reference kernels) for one list of inputs, in the model's order.

    `inputs` must match the model's input tensors in count, dtype and shape (TflmInputError
    otherwise). `arena_size` overrides the probed arena (bytes)."""
    return tflm_outputs_many(model_path, [inputs], arena_size)[0]


def random_inputs(model_path: str | Path, seed: int) -> list[np.ndarray]:
    """Seeded random inputs of the model's shapes and dtypes: integers over their full range,
    floats uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    xs = []
    for s in model_io(model_path)[0]:
        if s.dtype.kind in "iu":
            info = np.iinfo(s.dtype)
            xs.append(rng.integers(info.min, int(info.max) + 1, s.shape).astype(s.dtype))
        else:
            xs.append(rng.uniform(-1.0, 1.0, s.shape).astype(s.dtype))
    return xs


def _main(argv: list[str]) -> int:
    """The child: `probe MODEL ARENA N_IN` or `run MODEL ARENA N_IN IN.npz OUT.npz SETS N_OUT`."""
    from tflite_micro import runtime

    mode, model, arena, n_in = argv[0], argv[1], int(argv[2]), int(argv[3])
    interp = runtime.Interpreter.from_file(model, arena_size=arena)
    if mode == "probe":  # zero inputs: enough to prove that allocation and invoke succeed
        for i in range(n_in):
            d = interp.get_input_details(i)
            interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), i)
        interp.invoke()
        return 0
    src, dst, sets, n_out = argv[4], argv[5], int(argv[6]), int(argv[7])
    outputs = {}
    with np.load(src) as given:
        for k in range(sets):
            if k:
                interp.reset()
            for i in range(n_in):
                interp.set_input(given[f"s{k}_i{i}"], i)
            interp.invoke()
            for o in range(n_out):
                outputs[f"s{k}_o{o}"] = np.array(interp.get_output(o), copy=True)
    np.savez(dst, **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
