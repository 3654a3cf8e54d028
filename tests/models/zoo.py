"""Model zoo: real-structured CNNs as ONNX files, with deterministic random weights.

The models are built with ``onnx.helper`` only (no torch, no downloads) and are meant for tests,
the demo and benchmarks, where the numbers of a compiled model are compared with onnxruntime's:

* :func:`mobilenet_v2` -- the torchvision / paper MobileNetV2 topology (NCHW, float32), with
  batch norm folded into the convolutions (each conv has a bias) and ReLU6 as ``Clip(x, 0, 6)``.
* :func:`conv_chain` -- a chain of convolutions described by :class:`ConvSpec` records, for
  property tests of kernels, patching and arena planning.
* :func:`quantize_int8` -- any of them as an int8 ONNX QDQ model (onnxruntime's static
  quantization, calibrated on seeded inputs), the form int8 models take in ONNX.
* :func:`save` -- write a model to disk.

Weights are drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same bytes on every
call. They are "He-style": normal filter directions, each filter scaled like a folded batch norm
would scale it, so that every pre-activation has roughly zero mean and unit variance for an
N(0, 1) input. The activations then neither explode nor vanish through the network and ReLU6
neither saturates nor outputs all zeros, which keeps numerical comparisons meaningful. Every node
has a readable, unique name (``stem_conv``, ``block3_expand``, ``block3_dw_relu6``, ...), because
error messages and reports cite layers by name. The graph builder that draws the weights and
names the nodes is in tests/models/zoo_builder.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from .zoo_builder import GraphBuilder, Tensor

__all__ = ["MOBILENET_V2_SETTINGS", "ConvSpec", "conv_chain", "mobilenet_v2", "quantize_int8", "save"]

#: MobileNetV2's inverted-residual stages: (expansion t, channels c, repeats n, first stride s).
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_MOBILENET_V2_BLOCKS = sum(n for _, _, n, _ in MOBILENET_V2_SETTINGS)  # 17

_MIN_OPSET = 11  # Clip takes min/max as inputs from opset 11 on


def _make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` as torchvision's ``_make_divisible`` does."""
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:  # never round down by more than 10%
        new_value += divisor
    return new_value


def _check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as a Python int (numpy ints accepted); TypeError/ValueError if not valid."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True)
class ConvSpec:
    """One layer of :func:`conv_chain`: a 2-D convolution with bias, optional ReLU6 and residual.

    Attributes:
        out_channels: number of output channels; must be divisible by ``groups``.
        kernel: square kernel size.
        stride: stride in both spatial dimensions.
        padding: symmetric zero padding on every side; ``None`` means "same"-style
            ``dilation * (kernel // 2)`` (``kernel // 2`` when not dilated).
        dilation: kernel dilation in both spatial dimensions.
        groups: convolution groups; the layer's input channels must be divisible by it too
            (``groups == in_channels == out_channels`` is a depthwise convolution).
        relu6: follow the convolution with ReLU6 (``Clip(x, 0, 6)``); otherwise it is linear.
        residual: add the layer's input to its output (after the ReLU6, if any). The input and
            output shapes must match, else :func:`conv_chain` raises ``ValueError``.
    """

    out_channels: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None
    dilation: int = 1
    groups: int = 1
    relu6: bool = True
    residual: bool = False

    def __post_init__(self) -> None:
        """Raise TypeError for a non-int size or non-bool flag, ValueError for a bad value."""
        for name, minimum in (
            ("out_channels", 1),
            ("kernel", 1),
            ("stride", 1),
            ("padding", 0),
            ("dilation", 1),
            ("groups", 1),
        ):
            value = getattr(self, name)
            if value is not None or name != "padding":
                # Store numpy ints as Python ints (onnx.helper rejects numpy ints in shapes).
                object.__setattr__(self, name, _check_int(name, value, minimum))
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels={self.out_channels} is not divisible by groups={self.groups}")
        for name in ("relu6", "residual"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def pad(self) -> int:
        """The padding actually applied on each side."""
        return self.dilation * (self.kernel // 2) if self.padding is None else self.padding

    def output_size(self, size: int) -> int:
        """Output extent of one spatial dimension of input extent ``size`` (may be <= 0)."""
        span = self.dilation * (self.kernel - 1) + 1
        return (size + 2 * self.pad - span) // self.stride + 1


def _check_opset(opset: int) -> int:
    return _check_int("opset", opset, _MIN_OPSET)


def mobilenet_v2(
    width: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    blocks: int | None = None,
    seed: int = 0,
    opset: int = 13,
) -> onnx.ModelProto:
    """MobileNetV2 (Sandler et al. 2018; torchvision's ``mobilenet_v2``) with random weights.

    Input ``"input"`` is float32 ``[1, 3, resolution, resolution]`` (NCHW); output ``"output"`` is
    ``[1, num_classes]``. The graph is: stem 3x3/2 conv to ``_make_divisible(32 * width)``
    channels + ReLU6; the 17 inverted-residual blocks ``block1`` .. ``block17`` (1x1 expand conv +
    ReLU6, skipped when t=1; 3x3 depthwise conv with the stage stride + ReLU6; linear 1x1 project
    conv; ``Add`` of the block input when stride is 1 and channels match); a 1x1 conv to
    ``_make_divisible(1280 * max(width, 1))`` channels + ReLU6 (``last_conv``); then
    GlobalAveragePool, Flatten and Gemm (``classifier``). Batch norm is folded in (every conv has
    a bias) and dropout is omitted. Width 1.0 at 224 has 52 convs, 10 adds and ~300M MACs.

    Args:
        width: width multiplier; block channels are ``_make_divisible(c * width, 8)``.
        resolution: input height and width.
        num_classes: outputs of the classifier.
        blocks: keep only the first ``blocks`` inverted-residual blocks (0..17) and go straight
            to the pool and classifier, without ``last_conv`` (small models for fast tests).
            ``None`` builds the full network.
        seed: seed of the weight generator; the same arguments give the same bytes.
        opset: ONNX default-domain opset (>= 11, where Clip takes min/max as inputs).

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: for an out-of-range argument.
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {width!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    resolution = _check_int("resolution", resolution, 1)
    num_classes = _check_int("num_classes", num_classes, 1)
    if blocks is not None:
        blocks = _check_int("blocks", blocks, 0)
        if blocks > _MOBILENET_V2_BLOCKS:
            raise ValueError(f"blocks must be <= {_MOBILENET_V2_BLOCKS}, got {blocks}")
    seed = _check_int("seed", seed, 0)
    opset = _check_opset(opset)

    b = GraphBuilder(np.random.default_rng(seed))
    x = Tensor("input", 3, resolution, resolution)
    inp = x
    x = b.conv(x, "stem_conv", _make_divisible(32 * width), 3, stride=2)
    x = b.relu6(x, "stem_relu6")

    n_blocks = _MOBILENET_V2_BLOCKS if blocks is None else blocks
    index = 0
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        out_channels = _make_divisible(c * width)
        for i in range(n):
            if index == n_blocks:
                break
            index += 1
            stride = s if i == 0 else 1
            block_in = x
            name = f"block{index}"
            hidden = round(x.channels * t)
            if t != 1:
                x = b.relu6(b.conv(x, f"{name}_expand", hidden, 1), f"{name}_expand_relu6")
            x = b.conv(x, f"{name}_dw", hidden, 3, stride=stride, groups=hidden)
            x = b.relu6(x, f"{name}_dw_relu6")
            x = b.conv(x, f"{name}_project", out_channels, 1)
            if stride == 1 and block_in.channels == out_channels:
                x = b.add(block_in, x, f"{name}_add")
        if index == n_blocks:
            break

    if blocks is None:
        x = b.conv(x, "last_conv", _make_divisible(1280 * max(1.0, width)), 1)
        x = b.relu6(x, "last_relu6")
    out = b.classifier(x, num_classes)

    tag = f"mobilenet_v2_w{width:g}_r{resolution}" + ("" if blocks is None else f"_b{blocks}")
    doc = (
        f"MobileNetV2 width={width:g} resolution={resolution} num_classes={num_classes} "
        f"blocks={'all' if blocks is None else blocks} seed={seed}: random folded-BN weights "
        "from tests.models.zoo"
    )
    return b.model(tag, inp, out, [1, num_classes], opset, doc)


def conv_chain(
    layers: Sequence[ConvSpec],
    in_channels: int,
    resolution: int | tuple[int, int],
    seed: int = 0,
    opset: int = 13,
) -> onnx.ModelProto:
    """A chain of convolutions: input ``"input"`` [1, C, H, W] -> the layers -> ``"output"``.

    Layer ``i`` (from 1) is a Conv named ``layer{i}_conv``, then ``layer{i}_relu6`` if
    ``spec.relu6``, then ``layer{i}_add`` (of the layer's input) if ``spec.residual``. The last
    node's output is renamed ``"output"``; there is no classifier.

    Args:
        layers: the layers, at least one.
        in_channels: channels C of the input.
        resolution: H = W, or (H, W).
        seed: seed of the weight generator; the same arguments give the same bytes.
        opset: ONNX default-domain opset (>= 11).

    Raises:
        TypeError: for a layer that is not a ConvSpec or a non-int size.
        ValueError: for no layers, channels not divisible by a layer's groups, a layer whose
            output would be empty, or a residual layer whose input and output shapes differ.
    """
    if not layers:
        raise ValueError("conv_chain needs at least one layer")
    in_channels = _check_int("in_channels", in_channels, 1)
    if isinstance(resolution, tuple):
        if len(resolution) != 2:
            raise ValueError(f"resolution must be an int or (height, width), got {resolution!r}")
        height, width = resolution
    else:
        height = width = resolution
    height = _check_int("height", height, 1)
    width = _check_int("width", width, 1)
    seed = _check_int("seed", seed, 0)
    opset = _check_opset(opset)

    b = GraphBuilder(np.random.default_rng(seed))
    x = Tensor("input", in_channels, height, width)
    inp = x
    for i, spec in enumerate(layers, start=1):
        if not isinstance(spec, ConvSpec):
            raise TypeError(f"layer {i}: expected a ConvSpec, got {type(spec).__name__}")
        name = f"layer{i}"
        if x.channels % spec.groups:
            raise ValueError(f"{name}: input channels {x.channels} are not divisible by groups={spec.groups}")
        out_h, out_w = spec.output_size(x.height), spec.output_size(x.width)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"{name}: a {spec.kernel}x{spec.kernel} kernel (dilation {spec.dilation}, "
                f"stride {spec.stride}, padding {spec.pad}) on a {x.height}x{x.width} input "
                f"gives an empty {out_h}x{out_w} output"
            )
        out_shape = (1, spec.out_channels, out_h, out_w)
        if spec.residual and out_shape != x.shape:
            raise ValueError(
                f"{name}: residual needs the output shape {list(out_shape)} to equal the input shape {list(x.shape)}"
            )
        block_in = x
        x = b.conv(
            x,
            f"{name}_conv",
            spec.out_channels,
            spec.kernel,
            spec.stride,
            spec.pad,
            spec.dilation,
            spec.groups,
        )
        if spec.relu6:
            x = b.relu6(x, f"{name}_relu6")
        if spec.residual:
            x = b.add(block_in, x, f"{name}_add")

    # Rename the last tensor to "output" (node names are kept).
    last = b.nodes[-1]
    last.output[0] = "output"
    x.name = "output"
    tag = f"conv_chain_{len(layers)}x_c{in_channels}_{height}x{width}"
    doc = f"conv_chain of {len(layers)} layers on [1,{in_channels},{height},{width}] seed={seed}"
    return b.model(tag, inp, x.name, list(x.shape), opset, doc)


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (creating parent directories) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def quantize_int8(model: onnx.ModelProto, samples: int = 2, seed: int = 0) -> onnx.ModelProto:
    """``model`` quantized to int8 in QDQ form by onnxruntime's ``quantize_static``: int8
    activations and weights, per-tensor scales calibrated (min/max) on ``samples`` N(0, 1)
    inputs drawn from ``seed``. Needs onnxruntime (a test extra); the same arguments give the
    same bytes."""
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    batches = [{inp.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict | None:
            return next(self.left, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
        return onnx.load_model(str(dst))
