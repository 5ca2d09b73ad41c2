"""Converters from Keras layers to ONNX-semantics nodes (feed-forward layers).

Each converter takes the builder, the `LayerSpec`, the input `Value`s (channels-last
logical shapes) and the call's keyword tensors, and returns the output `Value`s.
Recurrent and attention layers live in `keras_seq`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelFormatError
from ..graph import GraphBuilder
from ._keras_weights import WeightSource
from ._nhwc import Value, common_layout, const, conv_attrs

Converter = Callable[[GraphBuilder, "LayerSpec", list[Value], dict], list[Value]]
CONVERTERS: dict[str, Converter] = {}
WRAPPERS = {"Bidirectional", "TimeDistributed"}


@dataclass
class LayerSpec:
    """A Keras layer as stored: class, name, config and its weights."""

    cls: str
    name: str
    config: dict
    source: WeightSource
    keras2: bool = False  # saved by Keras 1/2 (some activations differ)

    def weights(self, expected: int | None = None) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in self.source.arrays()]
        if expected is not None and len(arrays) != expected:
            raise ModelFormatError(
                f"Keras layer {self.name!r} ({self.cls}) should have {expected} weight arrays, the file has {len(arrays)}"
            )
        return arrays


def layer(*names: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


def unsupported_config(cls: str, config: dict) -> str | None:
    """Why a supported layer class cannot be converted with this config (None if it can)."""
    if config.get("data_format", "channels_last") == "channels_first":
        return "data_format='channels_first' is not supported (only channels_last)"
    if cls == "LayerNormalization" and config.get("rms_scaling"):
        return "rms_scaling=True is not supported"
    if cls in ("LSTM", "GRU", "SimpleRNN") and config.get("stateful"):
        return "stateful RNNs are not supported"
    if cls == "UpSampling2D" and config.get("interpolation", "nearest") not in (
        "nearest",
        "bilinear",
    ):
        return f"interpolation={config.get('interpolation')!r} is not supported"
    return None


def _tuple(value: Any, n: int) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)] * n


# --------------------------------------------------------------------------------------
# activations


def activation(b: GraphBuilder, value: Value, act: Any, name: str, keras2: bool = False) -> Value:
    """Apply a Keras activation (by name) to `value`, keeping its layout (`keras2`: Keras 1/2 semantics)."""
    if isinstance(act, dict):
        act = act.get("config", {}).get("name") or act.get("class_name", "linear")
    act = (act or "linear").lower()
    x = value.stored()
    if act in ("linear", "identity"):
        return value
    simple = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "softplus": "Softplus",
        "softsign": "Softsign",
        "selu": "Selu",
        "elu": "Elu",
        "exponential": "Exp",
        "mish": "Mish",
        "hard_swish": "HardSwish",
        "hard_silu": "HardSwish",
    }
    if act in simple:
        return value.like(b.node(simple[act], [x], name=name))
    if act == "relu6":
        return value.like(
            b.node(
                "Clip",
                [x, const(b, "zero", np.float32(0)), const(b, "six", np.float32(6))],
                name=name,
            )
        )
    if act in ("swish", "silu"):
        return value.like(b.node("Mul", [x, b.node("Sigmoid", [x])], name=name))
    if act == "gelu":
        return value.like(b.node("Gelu", [x], name=name))
    if act == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6; Keras 2: clip(0.2 x + 0.5, 0, 1)
        alpha = 0.2 if keras2 else 1.0 / 6.0
        return value.like(b.node("HardSigmoid", [x], {"alpha": alpha, "beta": 0.5}, name=name))
    if act == "leaky_relu":
        return value.like(b.node("LeakyRelu", [x], {"alpha": 0.2}, name=name))
    if act in ("softmax", "log_softmax"):
        axis = 1 if value.is_first else -1
        return value.like(
            b.node("Softmax" if act == "softmax" else "LogSoftmax", [x], {"axis": axis}, name=name)
        )
    raise ModelFormatError(f"layer {name!r}: unsupported activation {act!r}")


@layer("Activation")
def _activation(b, spec, inputs, kwargs):
    return [activation(b, inputs[0], spec.config.get("activation"), spec.name, spec.keras2)]


@layer("ReLU")
def _relu(b, spec, inputs, kwargs):
    cfg, v = spec.config, inputs[0]
    max_value, slope, threshold = (
        cfg.get("max_value"),
        float(cfg.get("negative_slope", 0) or 0),
        float(cfg.get("threshold", 0) or 0),
    )
    x = v.stored()
    if threshold == 0 and slope == 0:
        y = b.node("Relu", [x], name=spec.name)
    elif threshold == 0:
        y = b.node("LeakyRelu", [x], {"alpha": slope}, name=spec.name)
    else:
        t = const(b, "threshold", np.float32(threshold))
        below = b.node("Mul", [b.node("Sub", [x, t]), const(b, "slope", np.float32(slope))])
        y = b.node("Where", [b.node("GreaterOrEqual", [x, t]), x, below], name=spec.name)
    if max_value is not None:
        y = b.node("Min", [y, const(b, "max_value", np.float32(max_value))])
    return [v.like(y)]


@layer("LeakyReLU")
def _leaky(b, spec, inputs, kwargs):
    slope = spec.config.get("negative_slope", spec.config.get("alpha", 0.3))
    return [
        inputs[0].like(
            b.node("LeakyRelu", [inputs[0].stored()], {"alpha": float(slope)}, name=spec.name)
        )
    ]


@layer("ELU")
def _elu(b, spec, inputs, kwargs):
    return [
        inputs[0].like(
            b.node(
                "Elu",
                [inputs[0].stored()],
                {"alpha": float(spec.config.get("alpha", 1.0))},
                name=spec.name,
            )
        )
    ]


@layer("ThresholdedReLU")
def _thresholded(b, spec, inputs, kwargs):
    theta = float(spec.config.get("theta", 1.0))
    return [
        inputs[0].like(
            b.node("ThresholdedRelu", [inputs[0].stored()], {"alpha": theta}, name=spec.name)
        )
    ]


@layer("Softmax")
def _softmax(b, spec, inputs, kwargs):
    v = inputs[0]
    axis = spec.config.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise ModelFormatError(
                f"layer {spec.name!r}: Softmax over several axes is not supported"
            )
        axis = axis[0]
    return [
        Value(b.node("Softmax", [v.last(b)], {"axis": int(axis)}, name=spec.name), v.shape, v.dtype)
    ]


@layer("PReLU")
def _prelu(b, spec, inputs, kwargs):
    (alpha,) = spec.weights(1)
    v = inputs[0]
    if v.is_first and v.rank >= 3:
        slope = np.ascontiguousarray(np.moveaxis(alpha, -1, 0))  # (C, *spatial) for NCHW
        y = b.node(
            "PRelu", [v.stored(), b.initializer(spec.name + "_alpha", slope)], name=spec.name
        )
        return [Value(y, v.shape, v.dtype, True)]
    y = b.node("PRelu", [v.last(b), b.initializer(spec.name + "_alpha", alpha)], name=spec.name)
    return [Value(y, v.shape, v.dtype)]


# --------------------------------------------------------------------------------------
# core


@layer("Dense")
def _dense(b, spec, inputs, kwargs):
    v = inputs[0]
    arrays = spec.weights()
    kernel = arrays[0]
    y = b.node("MatMul", [v.last(b), b.initializer(spec.name + "_kernel", kernel)], name=spec.name)
    if spec.config.get("use_bias", True):
        y = b.node("Add", [y, b.initializer(spec.name + "_bias", arrays[1])])
    shape = None if v.shape is None else (*v.shape[:-1], kernel.shape[1])
    return [
        activation(
            b,
            Value(y, shape, v.dtype),
            spec.config.get("activation"),
            spec.name + "_act",
            spec.keras2,
        )
    ]


@layer("Embedding")
def _embedding(b, spec, inputs, kwargs):
    (table,) = spec.weights(1)
    v = inputs[0]
    y = b.node(
        "Gather",
        [b.initializer(spec.name + "_embeddings", table), v.last(b)],
        {"axis": 0},
        name=spec.name,
    )
    shape = None if v.shape is None else (*v.shape, table.shape[1])
    return [Value(y, shape, table.dtype)]


@layer(
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Masking",
    "InputLayer",
)
def _identity(b, spec, inputs, kwargs):
    return [inputs[0]]


@layer("Flatten")
def _flatten(b, spec, inputs, kwargs):
    v = inputs[0]
    size = None if v.shape is None or None in v.shape[1:] else math.prod(v.shape[1:])
    return [
        Value(
            b.node("Flatten", [v.last(b)], {"axis": 1}, name=spec.name),
            (v.shape[0] if v.shape else None, size),
            v.dtype,
        )
    ]


@layer("Reshape")
def _reshape(b, spec, inputs, kwargs):
    v = inputs[0]
    target = [int(d) for d in spec.config["target_shape"]]
    y = b.node("Reshape", [v.last(b), const(b, spec.name + "_shape", [0, *target])], name=spec.name)
    shape: tuple = (v.shape[0] if v.shape else None, *target)
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        total = None if v.shape is None or None in v.shape[1:] else math.prod(v.shape[1:])
        shape = tuple(
            total // known if d == -1 and total is not None else (None if d == -1 else d)
            for d in shape
        )
    return [Value(y, shape, v.dtype)]


@layer("Permute")
def _permute(b, spec, inputs, kwargs):
    v = inputs[0]
    dims = [int(d) for d in spec.config["dims"]]
    perm = [0, *dims]
    shape = None if v.shape is None else tuple(v.shape[p] for p in perm)
    return [Value(b.node("Transpose", [v.last(b)], {"perm": perm}, name=spec.name), shape, v.dtype)]


@layer("RepeatVector")
def _repeat(b, spec, inputs, kwargs):
    v, n = inputs[0], int(spec.config["n"])
    x = b.node("Unsqueeze", [v.last(b), const(b, "axes", [1])])
    y = b.node("Tile", [x, const(b, spec.name + "_repeats", [1, n, 1])], name=spec.name)
    return [Value(y, None if v.shape is None else (v.shape[0], n, v.shape[1]), v.dtype)]


@layer("Rescaling")
def _rescaling(b, spec, inputs, kwargs):
    v = inputs[0]
    scale = np.asarray(spec.config.get("scale", 1.0), np.float32)
    offset = np.asarray(spec.config.get("offset", 0.0), np.float32)
    first = v.is_first and scale.ndim == 0 and offset.ndim == 0
    x = v.in_layout(b, first)
    y = b.node(
        "Add",
        [
            b.node("Mul", [x, const(b, spec.name + "_scale", scale)]),
            const(b, spec.name + "_offset", offset),
        ],
        name=spec.name,
    )
    return [Value(y, v.shape, v.dtype, first)]


@layer("Normalization")
def _normalization(b, spec, inputs, kwargs):
    v = inputs[0]
    cfg = spec.config
    arrays = spec.weights()
    if cfg.get("mean") is not None and cfg.get("variance") is not None:
        mean, var = np.asarray(cfg["mean"], np.float32), np.asarray(cfg["variance"], np.float32)
    elif len(arrays) >= 2:
        mean, var = arrays[0].astype(np.float32), arrays[1].astype(np.float32)
    else:
        raise ModelFormatError(
            f"Normalization layer {spec.name!r} has neither mean/variance weights nor config"
        )
    rank = v.rank or mean.ndim + 1
    axis = cfg.get("axis", -1)
    axes = [a % rank for a in ([axis] if isinstance(axis, int) else (axis or []))]
    bshape = [v.shape[a] if a in axes else 1 for a in range(rank)]
    bshape[0] = 1
    mean, var = mean.reshape(bshape), var.reshape(bshape)
    std = np.maximum(np.sqrt(var), np.float32(1e-7)).astype(np.float32)
    x = v.last(b)
    if cfg.get("invert"):
        y = b.node(
            "Add",
            [b.node("Mul", [x, const(b, "std", std)]), const(b, "mean", mean)],
            name=spec.name,
        )
    else:
        y = b.node(
            "Div",
            [b.node("Sub", [x, const(b, "mean", mean)]), const(b, "std", std)],
            name=spec.name,
        )
    return [Value(y, v.shape, v.dtype)]


# --------------------------------------------------------------------------------------
# merging


_MERGE = {
    "Add": "Sum",
    "Maximum": "Max",
    "Minimum": "Min",
    "Average": "Mean",
    "Multiply": "Mul",
    "Subtract": "Sub",
}


@layer(*_MERGE)
def _merge(b, spec, inputs, kwargs):
    first = common_layout(inputs)
    names = [v.in_layout(b, first) for v in inputs]
    op = _MERGE[spec.cls]
    if op == "Mul":
        y = names[0]
        for n in names[1:]:
            y = b.node("Mul", [y, n])
    elif op == "Sum" and len(names) == 2:
        y = b.node("Add", names)
    else:
        y = b.node(op, names)
    shape = max((v.shape for v in inputs if v.shape is not None), key=len, default=None)
    return [Value(y, shape, inputs[0].dtype, first)]


@layer("Concatenate")
def _concat(b, spec, inputs, kwargs):
    rank = inputs[0].rank
    axis = int(spec.config.get("axis", -1))
    axis = axis % rank if rank else axis
    first = common_layout(inputs) and rank is not None and axis == rank - 1
    names = [v.in_layout(b, first) for v in inputs]
    y = b.node("Concat", names, {"axis": 1 if first else axis}, name=spec.name)
    shape = None
    if all(v.shape is not None for v in inputs):
        sizes = [v.shape[axis] for v in inputs]
        shape = tuple(
            (None if None in sizes else sum(sizes)) if i == axis else inputs[0].shape[i]
            for i in range(rank)
        )
    return [Value(y, shape, inputs[0].dtype, first)]


# --------------------------------------------------------------------------------------
# convolution and pooling (channels-first inside, via Value.first())


def _spatial(v: Value) -> list[int | None]:
    if v.shape is None:
        raise ModelFormatError("convolution input of unknown rank")
    return list(v.shape[1:-1])


def _conv_out(b, spec, v, y, out_sizes, channels):
    out = Value(y, (v.shape[0], *out_sizes, channels), v.dtype, is_first=True)
    return activation(b, out, spec.config.get("activation"), spec.name + "_act", spec.keras2)


@layer("Conv1D", "Conv2D", "Conv3D")
def _conv(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    n = int(spec.cls[4])
    arrays = spec.weights()
    kernel = arrays[0]  # (*k, in/groups, out)
    w = np.transpose(kernel, (n + 1, n, *range(n)))
    k = list(kernel.shape[:n])
    attrs, outs = conv_attrs(
        _spatial(v),
        k,
        _tuple(cfg.get("strides", 1), n),
        _tuple(cfg.get("dilation_rate", 1), n),
        cfg.get("padding", "valid"),
    )
    if int(cfg.get("groups", 1)) != 1:
        attrs["group"] = int(cfg["groups"])
    ins = [v.first(b), b.initializer(spec.name + "_kernel", w)]
    if cfg.get("use_bias", True):
        ins.append(b.initializer(spec.name + "_bias", arrays[1]))
    return [
        _conv_out(b, spec, v, b.node("Conv", ins, attrs, name=spec.name), outs, kernel.shape[-1])
    ]


def _depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """(*k, in, mult) -> ONNX grouped-conv weight (in*mult, 1, *k)."""
    n = kernel.ndim - 2
    k = kernel.shape[:n]
    flat = kernel.reshape(*k, 1, kernel.shape[-2] * kernel.shape[-1])
    return np.transpose(flat, (n + 1, n, *range(n)))


@layer("DepthwiseConv1D", "DepthwiseConv2D")
def _depthwise(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    n = 1 if spec.cls.endswith("1D") else 2
    arrays = spec.weights()
    kernel = arrays[0]
    attrs, outs = conv_attrs(
        _spatial(v),
        list(kernel.shape[:n]),
        _tuple(cfg.get("strides", 1), n),
        _tuple(cfg.get("dilation_rate", 1), n),
        cfg.get("padding", "valid"),
    )
    attrs["group"] = int(kernel.shape[-2])
    ins = [v.first(b), b.initializer(spec.name + "_kernel", _depthwise_kernel(kernel))]
    if cfg.get("use_bias", True):
        ins.append(b.initializer(spec.name + "_bias", arrays[1]))
    return [
        _conv_out(
            b,
            spec,
            v,
            b.node("Conv", ins, attrs, name=spec.name),
            outs,
            kernel.shape[-2] * kernel.shape[-1],
        )
    ]


@layer("SeparableConv1D", "SeparableConv2D")
def _separable(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    n = 1 if spec.cls.endswith("1D") else 2
    arrays = spec.weights()
    dw, pw = arrays[0], arrays[1]
    attrs, outs = conv_attrs(
        _spatial(v),
        list(dw.shape[:n]),
        _tuple(cfg.get("strides", 1), n),
        _tuple(cfg.get("dilation_rate", 1), n),
        cfg.get("padding", "valid"),
    )
    attrs["group"] = int(dw.shape[-2])
    mid = b.node(
        "Conv", [v.first(b), b.initializer(spec.name + "_depthwise", _depthwise_kernel(dw))], attrs
    )
    pw_onnx = np.transpose(pw, (n + 1, n, *range(n)))
    ins = [mid, b.initializer(spec.name + "_pointwise", pw_onnx)]
    if cfg.get("use_bias", True):
        ins.append(b.initializer(spec.name + "_bias", arrays[2]))
    y = b.node("Conv", ins, {"kernel_shape": [1] * n}, name=spec.name)
    return [_conv_out(b, spec, v, y, outs, pw.shape[-1])]


@layer("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def _conv_transpose(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    n = int(spec.cls[4])
    arrays = spec.weights()
    kernel = arrays[0]  # (*k, out, in)
    w = np.transpose(kernel, (n + 1, n, *range(n)))  # (in, out, *k)
    ks = list(kernel.shape[:n])
    strides = _tuple(cfg.get("strides", 1), n)
    dil = _tuple(cfg.get("dilation_rate", 1), n)
    padding = cfg.get("padding", "valid").lower()
    out_pad_cfg = cfg.get("output_padding")
    pads_b, pads_e, out_pad, outs = [], [], [], []
    for i, size in enumerate(_spatial(v)):
        if size is None:
            raise ModelFormatError(
                f"layer {spec.name!r}: transposed convolution needs known spatial sizes"
            )
        keff = (ks[i] - 1) * dil[i] + 1
        op = None if out_pad_cfg is None else _tuple(out_pad_cfg, n)[i]
        if op is None:
            out = (
                size * strides[i]
                if padding == "same"
                else size * strides[i] + max(keff - strides[i], 0)
            )
        else:
            pad = keff // 2 if padding == "same" else 0
            out = (size - 1) * strides[i] + keff - 2 * pad + op
        total = (size - 1) * strides[i] + keff - out
        extra = max(-total, 0)
        total = max(total, 0)
        pads_b.append(total // 2)
        pads_e.append(total - total // 2)
        out_pad.append(extra)
        outs.append(out)
    attrs = {"kernel_shape": ks, "strides": strides, "pads": pads_b + pads_e}
    if any(d != 1 for d in dil):
        attrs["dilations"] = dil
    if any(out_pad):
        attrs["output_padding"] = out_pad
    ins = [v.first(b), b.initializer(spec.name + "_kernel", w)]
    if cfg.get("use_bias", True):
        ins.append(b.initializer(spec.name + "_bias", arrays[1]))
    return [
        _conv_out(
            b, spec, v, b.node("ConvTranspose", ins, attrs, name=spec.name), outs, kernel.shape[-2]
        )
    ]


@layer(
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
)
def _pool(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    n = int(spec.cls[-2])
    size = _tuple(cfg.get("pool_size", 2), n)
    strides = _tuple(cfg.get("strides") or size, n)
    attrs, outs = conv_attrs(_spatial(v), size, strides, [1] * n, cfg.get("padding", "valid"))
    op = "MaxPool" if spec.cls.startswith("Max") else "AveragePool"
    y = b.node(op, [v.first(b)], attrs, name=spec.name)
    return [Value(y, (v.shape[0], *outs, v.shape[-1]), v.dtype, is_first=True)]


@layer(
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
)
def _global_pool(b, spec, inputs, kwargs):
    v = inputs[0]
    rank = v.rank
    keep = bool(spec.config.get("keepdims", False))
    first = v.is_first
    axes = list(range(2, rank)) if first else list(range(1, rank - 1))
    op = "ReduceMax" if "Max" in spec.cls else "ReduceMean"
    y = b.node(op, [v.stored(), const(b, "axes", axes)], {"keepdims": int(keep)}, name=spec.name)
    if keep:
        return [Value(y, (v.shape[0], *[1] * (rank - 2), v.shape[-1]), v.dtype, first)]
    return [Value(y, (v.shape[0], v.shape[-1]), v.dtype)]


# --------------------------------------------------------------------------------------
# padding, cropping, resampling


def _pairs(value: Any, n: int) -> list[tuple[int, int]]:
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(x, int) for x in value):
        return [(value[0], value[1])]
    return [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in value]


def _spatial_axes(v: Value) -> list[int]:
    rank = v.rank
    return list(range(2, rank)) if v.is_first else list(range(1, rank - 1))


@layer("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def _zero_pad(b, spec, inputs, kwargs):
    v = inputs[0]
    n = int(spec.cls[-2])
    pairs = _pairs(spec.config.get("padding", 1), n)
    begins, ends = [0] * v.rank, [0] * v.rank
    for ax, (p0, p1) in zip(_spatial_axes(v), pairs, strict=True):
        begins[ax], ends[ax] = p0, p1
    y = b.node("Pad", [v.stored(), const(b, spec.name + "_pads", begins + ends)], name=spec.name)
    shape = (
        v.shape[0],
        *[
            None if s is None else s + p0 + p1
            for s, (p0, p1) in zip(v.shape[1:-1], pairs, strict=True)
        ],
        v.shape[-1],
    )
    return [Value(y, shape, v.dtype, v.is_first)]


@layer("Cropping1D", "Cropping2D", "Cropping3D")
def _crop(b, spec, inputs, kwargs):
    v = inputs[0]
    n = int(spec.cls[-2])
    pairs = _pairs(spec.config.get("cropping", 1), n)
    axes = _spatial_axes(v)
    starts = [p0 for p0, _ in pairs]
    ends = [-p1 if p1 else np.iinfo(np.int64).max for _, p1 in pairs]
    y = b.node(
        "Slice",
        [v.stored(), const(b, "starts", starts), const(b, "ends", ends), const(b, "axes", axes)],
        name=spec.name,
    )
    shape = (
        v.shape[0],
        *[
            None if s is None else s - p0 - p1
            for s, (p0, p1) in zip(v.shape[1:-1], pairs, strict=True)
        ],
        v.shape[-1],
    )
    return [Value(y, shape, v.dtype, v.is_first)]


@layer("UpSampling1D", "UpSampling2D", "UpSampling3D")
def _upsample(b, spec, inputs, kwargs):
    v = inputs[0]
    n = int(spec.cls[-2])
    size = _tuple(spec.config.get("size", 2), n)
    interp = spec.config.get("interpolation", "nearest")
    scales = [1.0] * v.rank
    for ax, s in zip(_spatial_axes(v), size, strict=True):
        scales[ax] = float(s)
    if interp == "nearest":
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    y = b.node(
        "Resize",
        [v.stored(), "", const(b, "scales", np.asarray(scales, np.float32))],
        attrs,
        name=spec.name,
    )
    shape = (
        v.shape[0],
        *[None if d is None else d * s for d, s in zip(v.shape[1:-1], size, strict=True)],
        v.shape[-1],
    )
    return [Value(y, shape, v.dtype, v.is_first)]


# --------------------------------------------------------------------------------------
# normalization


@layer("BatchNormalization")
def _batch_norm(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    arrays = spec.weights()
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if not isinstance(axis, int) or axis % v.rank != v.rank - 1:
        raise ModelFormatError(
            f"layer {spec.name!r}: BatchNormalization over axis {axis} (only the channel axis -1)"
        )
    it = iter(arrays)
    channels = arrays[-1].shape[0]
    gamma = next(it) if cfg.get("scale", True) else np.ones(channels, np.float32)
    beta = next(it) if cfg.get("center", True) else np.zeros(channels, np.float32)
    mean, var = next(it), next(it)
    x = v.first(b) if v.rank >= 3 else v.last(b)
    ins = [x] + [
        b.initializer(f"{spec.name}_{k}", a)
        for k, a in zip(("gamma", "beta", "mean", "var"), (gamma, beta, mean, var), strict=True)
    ]
    y = b.node(
        "BatchNormalization", ins, {"epsilon": float(cfg.get("epsilon", 1e-3))}, name=spec.name
    )
    return [Value(y, v.shape, v.dtype, v.rank >= 3)]


@layer("LayerNormalization")
def _layer_norm(b, spec, inputs, kwargs):
    v, cfg = inputs[0], spec.config
    rank = v.rank
    axis = cfg.get("axis", -1)
    axes = sorted(a % rank for a in ([axis] if isinstance(axis, int) else axis))
    if axes != list(range(axes[0], rank)):
        raise ModelFormatError(
            f"layer {spec.name!r}: LayerNormalization over non-trailing axes {axes}"
        )
    norm_shape = tuple(v.shape[a] for a in axes)
    it = iter(spec.weights())
    gamma = (
        next(it).reshape(norm_shape) if cfg.get("scale", True) else np.ones(norm_shape, np.float32)
    )
    beta = (
        next(it).reshape(norm_shape)
        if cfg.get("center", True)
        else np.zeros(norm_shape, np.float32)
    )
    y = b.node(
        "LayerNormalization",
        [
            v.last(b),
            b.initializer(spec.name + "_gamma", gamma),
            b.initializer(spec.name + "_beta", beta),
        ],
        {"axis": axes[0], "epsilon": float(cfg.get("epsilon", 1e-3))},
        name=spec.name,
    )
    return [Value(y, v.shape, v.dtype)]


# --------------------------------------------------------------------------------------
# wrappers and products


@layer("TimeDistributed")
def _time_distributed(b, spec, inputs, kwargs):
    v = inputs[0]
    inner = spec.config["layer"]
    if inner.get("class_name") not in CONVERTERS or inner.get("class_name") in WRAPPERS:
        raise ModelFormatError(
            f"layer {spec.name!r}: TimeDistributed over {inner.get('class_name')} is not supported"
        )
    rest = v.shape[2:] if v.shape is not None else None
    if rest is None or None in rest:
        raise ModelFormatError(f"layer {spec.name!r}: TimeDistributed needs static per-step shapes")
    x = v.last(b)
    lead = b.node(
        "Slice", [b.node("Shape", [x]), const(b, "s", [0]), const(b, "e", [2]), const(b, "a", [0])]
    )
    merged = Value(b.node("Reshape", [x, const(b, "shape", [-1, *rest])]), (None, *rest), v.dtype)
    inner_spec = LayerSpec(
        inner["class_name"], spec.name, inner.get("config", {}), spec.source, spec.keras2
    )
    (out,) = CONVERTERS[inner["class_name"]](b, inner_spec, [merged], {})
    orest = out.shape[1:]
    if None in orest:
        raise ModelFormatError(
            f"layer {spec.name!r}: TimeDistributed inner output shape is not static"
        )
    shape = b.node("Concat", [lead, const(b, "rest", list(orest))], {"axis": 0})
    y = b.node("Reshape", [out.last(b), shape], name=spec.name)
    return [Value(y, (v.shape[0], v.shape[1], *orest), out.dtype)]


@layer("Dot")
def _dot(b, spec, inputs, kwargs):
    x, y = inputs
    rank = x.rank
    axes = spec.config.get("axes", -1)
    a1, a2 = (axes, axes) if isinstance(axes, int) else axes
    a1, a2 = a1 % rank, a2 % y.rank
    xn, yn = x.last(b), y.last(b)
    if spec.config.get("normalize"):
        xn = b.node("LpNormalization", [xn], {"axis": a1, "p": 2})
        yn = b.node("LpNormalization", [yn], {"axis": a2, "p": 2})
    if rank == 2 and y.rank == 2:
        out = b.node(
            "ReduceSum",
            [b.node("Mul", [xn, yn]), const(b, "axes", [1])],
            {"keepdims": 1},
            name=spec.name,
        )
        return [Value(out, (x.shape[0], 1), x.dtype)]
    if rank != 3 or y.rank != 3:
        raise ModelFormatError(
            f"layer {spec.name!r}: Dot of rank {rank} and {y.rank} inputs is not supported"
        )
    if a1 == 1:
        xn = b.node("Transpose", [xn], {"perm": [0, 2, 1]})
    if a2 == 2:
        yn = b.node("Transpose", [yn], {"perm": [0, 2, 1]})
    out = b.node("MatMul", [xn, yn], name=spec.name)
    m = x.shape[2 if a1 == 1 else 1]
    n = y.shape[2 if a2 == 1 else 1]
    return [Value(out, (x.shape[0], m, n), x.dtype)]
