"""Make the int8 TFLite test models in tests/data/models/ (run once; CI does not need TensorFlow).

Each model has random weights (fixed seeds), batch-norm statistics taken from random data so
activations stay in range, and full-integer quantization calibrated on random data: int8
weights (per-channel for convolutions), int32 bias, int8 activations, int8 input and output.

Made with TensorFlow 2.21.0 (Keras 3.15.1) from PyPI, in a venv of its own so it cannot touch
the project's numpy or protobuf:

    python -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow==2.21.0
    /work/venv-tf/bin/python scripts/make_int8_models.py            # all models + README.md
    /work/venv-tf/bin/python scripts/make_int8_models.py --only mobilenet_v2_035_96_int8

The same TensorFlow version gives the same bytes (checked by running it twice); another
version may quantize differently, which is why the .tflite files are committed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from tensorflow.lite.python import schema_py_generated as schema

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "models"
CLASSES = 10
CALIBRATION_SAMPLES = 64  # random inputs for the converter's min/max calibration


def _divisible(v: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding (make_divisible): multiple of 8, at most 10% below v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv_bn(x, filters: int, kernel: int = 1, stride: int = 1, act: str | None = "relu6"):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation(act)(x) if act else x


def _dw_bn(x, stride: int = 1, kernel: int = 3, act: str | None = "relu6"):
    x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation(act)(x) if act else x


# MobileNetV2's inverted residual stages (expansion t, channels c, repeats n, first stride s).
MBV2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(alpha: float, size: int, head: int, stages: int = len(MBV2_STAGES)) -> keras.Model:
    """MobileNetV2 (Sandler et al. 2018, the Keras applications' layout: ReLU6, residual add when
    stride 1 and channels match) with its first `stages` stages; the last 1x1 conv has `head`
    channels instead of 1280 so the file stays small."""
    inp = keras.Input((size, size, 3), batch_size=1, name="input")
    x = _conv_bn(inp, _divisible(32 * alpha), 3, 2)
    cin = x.shape[-1]
    for t, c, n, s in MBV2_STAGES[:stages]:
        cout = _divisible(c * alpha)
        for i in range(n):
            y = _conv_bn(x, cin * t) if t != 1 else x
            y = _dw_bn(y, s if i == 0 else 1)
            y = _conv_bn(y, cout, act=None)
            x = layers.Add()([x, y]) if cin == cout and (s == 1 or i > 0) else y
            cin = cout
    x = _conv_bn(x, head)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(CLASSES)(x), name=f"mobilenet_v2_{alpha}")


def _squeeze_excite(x, ratio: float = 0.25):
    """MobileNetV3's SE: global mean, 1x1 conv, ReLU, 1x1 conv, hard-sigmoid, multiply."""
    c = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = layers.Conv2D(_divisible(c * ratio), 1, activation="relu")(s)
    s = layers.Conv2D(c, 1, activation="hard_sigmoid")(s)
    return layers.Multiply()([x, s])


# MobileNetV3-small's first blocks (kernel, expanded, out, SE, activation, stride), narrowed.
MBV3_BLOCKS = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hard_swish", 2),
    (5, 240, 40, True, "hard_swish", 1),
    (5, 120, 48, True, "hard_swish", 1),
    (5, 144, 48, True, "hard_swish", 1),
]


def mobilenet_v3_style(size: int) -> keras.Model:
    """MobileNetV3-small style (Howard et al. 2019): hard-swish, squeeze-excite with
    hard-sigmoid, 5x5 depthwise, residual adds; the first 7 blocks and a small head."""
    inp = keras.Input((size, size, 3), batch_size=1, name="input")
    x = _conv_bn(inp, 16, 3, 2, act="hard_swish")
    for k, exp, out, se, act, stride in MBV3_BLOCKS:
        y = _conv_bn(x, exp, act=act) if exp != x.shape[-1] else x
        y = _dw_bn(y, stride, k, act=act)
        if se:
            y = _squeeze_excite(y)
        y = _conv_bn(y, out, act=None)
        x = layers.Add()([x, y]) if stride == 1 and x.shape[-1] == out else y
    x = _conv_bn(x, 288, act="hard_swish")
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Conv2D(256, 1, activation="hard_swish")(x)
    x = layers.Flatten()(x)
    return keras.Model(inp, layers.Dense(CLASSES)(x), name="mobilenet_v3_style")


def concat_mean_pad(size: int) -> keras.Model:
    """Inception-like branches joined by CONCATENATION, explicit PADs that are not a conv's
    SAME padding (so the converter keeps them), MEAN in the middle and at the end."""
    inp = keras.Input((size, size, 3), batch_size=1, name="input")
    x = _conv_bn(inp, 16, 3, 2, act="relu")
    a = _conv_bn(x, 8, 1, act="relu")
    b = layers.ZeroPadding2D(((2, 0), (0, 2)))(x)  # asymmetric: kept as PAD
    b = layers.Conv2D(12, 3, padding="valid", activation="relu")(b)
    c = _dw_bn(x, act="relu")
    x = layers.Concatenate()([a, b, c])  # 8 + 12 + 16 channels
    x = _conv_bn(x, 32, 3, 2, act="relu")
    m = layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))(x)  # MEAN, kept 4-D
    x = layers.Multiply()([x, layers.Activation("sigmoid")(m)])
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(x)  # not SAME for stride 2 on an even size: PAD
    x = layers.Conv2D(32, 3, strides=2, padding="valid")(x)  # no ReLU: the PAD below pads a signed tensor
    x = layers.Concatenate(axis=1)([x, layers.Conv2D(32, 1)(x)])  # along height
    x = layers.ZeroPadding2D(((0, 1), (1, 0)))(x)  # a PAD feeding MEAN: the zeros count
    x = layers.GlobalAveragePooling2D()(x)  # MEAN to 2-D
    return keras.Model(inp, layers.Dense(CLASSES)(x), name="concat_mean_pad")


def op_coverage(size: int) -> keras.Model:
    """The int8 ops the other models miss: SUB, MUL, MAX_POOL_2D, AVERAGE_POOL_2D, grouped conv,
    LOGISTIC, TANH, TRANSPOSE, RESHAPE, FULLY_CONNECTED, SOFTMAX."""
    inp = keras.Input((size, size, 3), batch_size=1, name="input")
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = layers.MaxPooling2D(2)(x)
    g = layers.Conv2D(16, 3, padding="same", groups=4)(x)  # grouped: 4 groups of 4 channels
    a = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    d = layers.Subtract()([g, a])
    gate = layers.Multiply()([layers.Activation("sigmoid")(d), layers.Activation("tanh")(g)])
    x = layers.AveragePooling2D(2)(gate)
    x = layers.Permute((3, 1, 2))(x)  # NHWC -> NCHW: TRANSPOSE
    x = layers.Reshape((16, -1))(x)
    x = layers.Dense(8, activation="tanh")(x)  # FULLY_CONNECTED on a 3-D tensor
    x = layers.Reshape((-1,))(x)
    x = layers.Dense(CLASSES)(x)
    return keras.Model(inp, layers.Activation("softmax")(x), name="op_coverage")


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable[[], keras.Model]
    seed: int
    what: str


MODELS = [
    Spec(
        "mobilenet_v2_035_96_int8",
        lambda: mobilenet_v2(0.35, 96, head=256),
        1,
        "MobileNetV2 alpha 0.35, 96x96, all 7 stages (17 inverted-residual blocks, 10 residual adds), head 256",
    ),
    Spec(
        "mobilenet_v2_050_64_int8",
        lambda: mobilenet_v2(0.5, 64, head=256, stages=5),
        2,
        "MobileNetV2 alpha 0.5, 64x64, its first 5 stages (13 blocks, 8 residual adds, output "
        "stride 16), head 256: all 7 stages at this width take 789 KB",
    ),
    Spec(
        "mobilenet_v3_style_96_int8",
        lambda: mobilenet_v3_style(96),
        3,
        "MobileNetV3-small style, 96x96: hard-swish, "
        "squeeze-excite (mean, 1x1 conv, ReLU, 1x1 conv, hard-sigmoid, mul)",
    ),
    Spec(
        "concat_mean_pad_64_int8",
        lambda: concat_mean_pad(64),
        4,
        "branches joined by CONCATENATION (channels and height), explicit PADs, MEAN",
    ),
    Spec(
        "op_coverage_32_int8",
        lambda: op_coverage(32),
        5,
        "SUB, MUL, pools, grouped conv, LOGISTIC, TANH, TRANSPOSE, RESHAPE, FULLY_CONNECTED, SOFTMAX",
    ),
]


def _randomize(model: keras.Model, rng: np.random.Generator, size: int) -> None:
    """Random biases and batch-norm scale/shift, then batch-norm statistics measured on random
    inputs (one forward pass in training mode with momentum 0), so every layer sees unit-scale
    activations as in a trained network rather than values that vanish or blow up with depth."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
            layer.beta.assign(rng.normal(0.0, 0.25, c).astype(np.float32))
            layer.momentum = 0.0
        elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    model(_images(rng, 32, size), training=True)


def _images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (n, size, size, 3)).astype(np.float32)


def convert(spec: Spec) -> bytes:
    keras.backend.clear_session()  # layer names (kept in the file) restart, so --only gives the same bytes
    keras.utils.set_random_seed(spec.seed)
    model = spec.build()
    size = model.input_shape[1]
    rng = np.random.default_rng(spec.seed)
    _randomize(model, rng, size)
    calibration = _images(rng, CALIBRATION_SAMPLES, size)

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def describe(data: bytes) -> dict:
    """Op list (builtin names, in execution order), input/output tensors, and the bytes of the
    constant tensors by type (int8 weights, int32 bias) of a .tflite model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_content=data)

    def tensors(details):
        return [
            {
                "shape": list(map(int, d["shape"])),
                "dtype": np.dtype(d["dtype"]).name,
                "scale": float(d["quantization"][0]),
                "zero_point": int(d["quantization"][1]),
            }
            for d in details
        ]

    model = schema.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    const = Counter()
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        const[t.Type()] += model.Buffers(t.Buffer()).DataLength()
    return {
        "ops": [op["op_name"] for op in it._get_ops_details()],
        "inputs": tensors(it.get_input_details()),
        "outputs": tensors(it.get_output_details()),
        "int8_bytes": const[schema.TensorType.INT8],
        "int32_bytes": const[schema.TensorType.INT32],
    }


README_HEAD = """\
# int8 TFLite test models

Made once by `scripts/make_int8_models.py` (TensorFlow {tf} from PyPI, Keras {keras}; how to
run it is at the top of the script); this file is written by the same script. Random weights
with fixed seeds, batch-norm statistics from random data, full-integer quantization calibrated
on {n} random inputs uniform in [-1, 1]: int8 input and output, int8 weights (per-channel for
conv and depthwise), int32 bias. They are test inputs, not classifiers: outputs mean nothing,
but every op runs with TFLite's int8 arithmetic. CI reads these files and needs no TensorFlow.

| model | bytes | constant bytes: int8 (weights) / int32 (bias, axes, paddings, shapes) | input (shape, scale, zero point) | output (shape, scale, zero point) | ops |
|---|---|---|---|---|---|
"""


README_NOTES = """
What the converter did with the Keras layers (read back from the files):

- Batch norm is folded into the convolutions (int32 bias); ReLU and ReLU6 are fused into the
  producing op (`fused_activation_function`), so no RELU op appears.
- Grouped convolution (`Conv2D(groups=4)` in `op_coverage_32_int8`) stays one `CONV_2D` whose
  filter is `[16, 3, 3, 4]` on a 16-channel input: TFLite infers the groups from the filter.
- Hard-sigmoid has no TFLite op: `relu6(x + 3) / 6` becomes the SE's second `CONV_2D` (the +3
  folded into its bias, RELU6 fused) and a `MUL` by a constant 1/6; then `MUL` by the features.
  Hard-swish becomes the `HARD_SWISH` op.
- A `ZeroPadding2D` that equals a conv's SAME padding is folded into the conv; the `PAD`s in
  `concat_mean_pad_64_int8` are the ones that are not (asymmetric, or (1, 1) before a stride-2
  conv on an even size, or before a MEAN). A PAD pads with the tensor's zero point.
- The converter gives every input of a `CONCATENATION` the output's scale and zero point, so
  concatenation is a byte copy; the producers requantize.
- The files are larger than their constants: the flatbuffer stores per-channel quantization
  (a float32 scale and an int64 zero point per channel, for each filter and its bias), tensor
  names and op options.
- `LOGISTIC` and `SOFTMAX` outputs are fixed at scale 1/256, zero point -128; `TANH` at 1/128, 0.

TVM 0.27's TFLite frontend (`from_tflite`) imports the two MobileNetV2s and the MobileNetV3-style
model. It refuses `concat_mean_pad_64_int8` (quantized `PAD`) and `op_coverage_32_int8`
(quantized `TRANSPOSE`) in its up-front check (`_SUPPORTED_QUANTIZED_OPS`), though its PAD
converter pads with the zero point: with both names added to that set the two models import,
and run on the Relax VM within 1 LSB of TFLite Micro.
"""


def _tensor_cell(ts: list[dict]) -> str:
    return "<br>".join(f"{t['dtype']} {t['shape']}, {t['scale']:.6g}, {t['zero_point']}" for t in ts)


def write_readme(rows: list[tuple[Spec, int, dict]]) -> None:
    text = README_HEAD.format(tf=tf.__version__, keras=keras.__version__, n=CALIBRATION_SAMPLES)
    for spec, nbytes, info in rows:
        ops = ", ".join(f"{op} x{k}" for op, k in sorted(Counter(info["ops"]).items()))
        text += (
            f"| `{spec.name}.tflite` | {nbytes:,} | {info['int8_bytes']:,} / {info['int32_bytes']:,} | "
            f"{_tensor_cell(info['inputs'])} | "
            f"{_tensor_cell(info['outputs'])} | {ops} |\n"
        )
    text += "\nWhat each model is for:\n\n"
    text += "".join(f"- `{spec.name}`: {spec.what}.\n" for spec, _, _ in rows)
    text += "\nOps in execution order:\n\n"
    text += "".join(f"- `{spec.name}`: {' '.join(info['ops'])}\n" for spec, _, info in rows)
    (OUT / "README.md").write_text(text + README_NOTES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[s.name for s in MODELS], help="make just this model")
    parser.add_argument("--out", type=Path, default=OUT, help="where the .tflite files go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in MODELS:
        if args.only and spec.name != args.only:
            path = args.out / f"{spec.name}.tflite"
            data = path.read_bytes() if path.is_file() else convert(spec)
        else:
            data = convert(spec)
            (args.out / f"{spec.name}.tflite").write_bytes(data)
        info = describe(data)
        rows.append((spec, len(data), info))
        print(f"{spec.name}.tflite  {len(data):,} B  sha256 {hashlib.sha256(data).hexdigest()[:16]}")
        print(f"  constants int8 {info['int8_bytes']:,} B, int32 {info['int32_bytes']:,} B")
        print(f"  in  {_tensor_cell(info['inputs'])}\n  out {_tensor_cell(info['outputs'])}")
        print(f"  ops {' '.join(info['ops'])}")
    if args.out == OUT:
        write_readme(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
