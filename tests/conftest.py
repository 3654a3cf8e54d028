"""Shared fixtures: where the bundled MLPerf Tiny models are (../shared/models beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MLPERF_TINY = REPO.parent / "shared" / "models" / "mlperf_tiny"
MLPERF_MODELS = [  # every bundled MLPerf Tiny model
    "vww_96_int8.tflite",
    "vww_96_float.tflite",
    "pretrainedResnet.tflite",
    "pretrainedResnet_quant.tflite",
    "kws_ref_model.tflite",
]


def mlperf_model(name: str) -> Path:
    path = MLPERF_TINY / name
    if not path.is_file():
        pytest.skip(f"{path} is not there (the MLPerf Tiny models live in ../shared/models)")
    return path


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """compile_model, once per (model, target, kernels) in the whole session."""
    from tvm_patch.compile import compile_model  # here, not at the top: the unit tier imports no TVM
    from tvm_patch_core.options import CompileOptions, PatchOptions

    cache: dict = {}

    def get(model: Path, target: str = "cortex-m4", kernels: str = "auto", **options):
        """`split`, `patches` and `stream_input` go into PatchOptions, the rest as they are."""
        key = (str(model), target, kernels, tuple(sorted(options.items())))
        if key not in cache:
            patch = PatchOptions(
                grid=options.pop("patches", None),
                split=options.pop("split", None),
                stream_input=options.pop("stream_input", False),
            )
            out = tmp_path_factory.mktemp(Path(model).stem) / f"{target}-{kernels}"
            cache[key] = compile_model(
                model, out, CompileOptions(target=target, kernels=kernels, patch=patch, **options)
            )
        return cache[key]

    return get


@pytest.fixture(scope="session")
def relax_vm():
    """TVM's own host run (Relax VM, LLVM) of the same imported model: the int8 reference."""
    import tvm
    from tvm import relax

    from tvm_patch.frontend import load_model

    cache: dict = {}

    def run(model: Path, inputs):
        if str(model) not in cache:
            mod = load_model(model).mod
            cache[str(model)] = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
        out = cache[str(model)]["main"](*[tvm.runtime.tensor(x) for x in inputs])
        outs = (
            out if isinstance(out, (list, tuple)) or (hasattr(out, "__len__") and not hasattr(out, "numpy")) else [out]
        )
        return [o.numpy() for o in outs]

    return run


def model_inputs(report: dict, seed: int = 0):
    """Deterministic inputs of the model's own shapes and dtypes (int8: full range)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xs = []
    for spec in report.inputs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind in "iu":
            xs.append(rng.integers(np.iinfo(dtype).min, int(np.iinfo(dtype).max) + 1, spec.shape).astype(dtype))
        else:
            xs.append(rng.uniform(-1, 1, spec.shape).astype(dtype))
    return xs


def tflite_reference(model: Path, inputs):
    """The TFLite interpreter (ai-edge-litert): outputs for the given inputs."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), inputs, strict=False):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def assert_matches(got, want, dtype: str, what: str) -> None:
    """fp32: within 1e-4 absolute after normalising by the reference's largest magnitude;
    int8: within 1 LSB."""
    import numpy as np

    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if np.dtype(dtype).kind == "f":
        scale = max(float(np.abs(want).max()), 1e-12)
        err = float(np.abs(got - want).max()) / scale
        assert err <= 1e-4, f"{what}: normalised max error {err:.2e} > 1e-4"
    else:
        lsb = int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max())
        assert lsb <= 1, f"{what}: {lsb} LSB off"


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/data/golden/ from the current emitter's output"
    )
