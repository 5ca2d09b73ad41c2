"""Lowerings of Caffe layers to ONNX-semantics nodes (used by `caffe.read_caffe`).

Each lowering reads its bottoms from `Context.env` (blob name -> (graph value, static
shape)), adds nodes, and stores its tops there; in-place layers (top == bottom) simply
rebind the blob name to the new value. Caffe nets have static shapes, so every lowering
computes its output shapes itself, as Caffe's `Reshape` methods do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ModelFormatError, UnsupportedOp, UnsupportedOperatorError
from ..graph import GraphBuilder
from ._caffe_text import TextMessage
from ._nhwc import const

Shape = tuple[int, ...]
LAYERS: dict[str, Callable[[Context, object], None]] = {}
_FLOAT_MIN = float(np.finfo(np.float32).min)


def _layer(*names: str):
    def register(fn):
        for name in names:
            LAYERS[name] = fn
        return fn

    return register


class Context:
    """The lowering state: the builder, each blob's current value and shape, the current layer."""

    def __init__(self, b: GraphBuilder) -> None:
        self.b = b
        self.env: dict[str, tuple[str, Shape]] = {}
        self.layer = None

    def x(self, i: int = 0) -> str:
        return self.env[self.layer.bottoms[i]][0]

    def shape(self, i: int = 0) -> Shape:
        return self.env[self.layer.bottoms[i]][1]

    def node(self, op: str, inputs: Sequence[str], attrs: dict | None = None, outputs: int = 1):
        return self.b.node(op, inputs, attrs, outputs=outputs, name=self.layer.name)

    def const(self, what: str, value, dtype=None) -> str:
        return const(self.b, f"{self.layer.name}_{what}", value, dtype)

    def set(self, i: int, value: str, shape: Sequence[int]) -> None:
        if i >= len(self.layer.tops):
            raise ModelFormatError(
                f"layer '{self.layer.name}' ({self.layer.type}) needs at least {i + 1} tops"
            )
        self.env[self.layer.tops[i]] = (value, tuple(int(d) for d in shape))

    def blob(self, i: int, what: str) -> np.ndarray:
        blobs = self.layer.blobs
        if i >= len(blobs):
            raise ModelFormatError(
                f"layer '{self.layer.name}' ({self.layer.type}) has {len(blobs)} blobs in the weights file; "
                f"its {what} (blob {i}) is missing: is this the right .caffemodel?"
            )
        return np.asarray(blobs[i], np.float32)

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"layer '{self.layer.name}' ({self.layer.type}): {message}")

    def unsupported(self, reason: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            [UnsupportedOp(self.layer.type, "caffe", 0, (self.layer.name,), reason)],
            source="Caffe model",
        )


def _axis(ctx: Context, axis: int, rank: int, extra: int = 0) -> int:
    """Caffe's CanonicalAxisIndex (`extra` = 1 allows `rank`, as Reshape's axis does)."""
    if not -(rank + extra) <= axis < rank + extra:
        raise ctx.fail(f"axis {axis} is out of range for a {rank}-D blob")
    return axis + rank + extra if axis < 0 else axis


def _reshape(ctx: Context, x: str, shape: Sequence[int]) -> str:
    return ctx.node("Reshape", [x, ctx.const("shape", list(shape))])


def _unary(op: str, **attrs):
    def lower(ctx: Context, layer) -> None:
        ctx.set(0, ctx.node(op, [ctx.x()], attrs or None), ctx.shape())

    return lower


for _name, _op in (
    ("Sigmoid", "Sigmoid"),
    ("TanH", "Tanh"),
    ("AbsVal", "Abs"),
    ("BNLL", "Softplus"),
):
    LAYERS[_name] = _unary(_op)


# ---------------------------------------------------------------- convolution and pooling
def _geometry(ctx: Context, p: TextMessage, nsp: int, name: str, default: int | None) -> list[int]:
    """`kernel_size`/`stride`/`pad`/`dilation`: one value, one per spatial axis, or `_h`/`_w`."""
    h, w = (f"{name.split('_')[0]}_{s}" for s in "hw")
    if p.has(h) or p.has(w):
        if nsp != 2:
            raise ctx.fail(f"{h}/{w} only apply to 2-D blobs")
        if default is None and not (p.has(h) and p.has(w)):
            raise ctx.fail(f"both {h} and {w} are needed")
        return [p.int(h, default or 0), p.int(w, default or 0)]
    values = p.ints(name)
    if not values:
        if default is None:
            raise ctx.fail(f"no {name} given")
        return [default] * nsp
    if len(values) == 1:
        return values * nsp
    if len(values) != nsp:
        raise ctx.fail(f"{len(values)} {name} values for {nsp} spatial axes")
    return values


@_layer("Convolution", "Deconvolution")
def _convolution(ctx: Context, layer) -> None:
    p = layer.param("convolution_param")
    shape = ctx.shape()
    if p.int("axis", 1) != 1:
        raise ctx.unsupported("convolution over an axis other than 1")
    nsp = len(shape) - 2
    kernel = _geometry(ctx, p, nsp, "kernel_size", None)
    stride = _geometry(ctx, p, nsp, "stride", 1)
    pad = _geometry(ctx, p, nsp, "pad", 0)
    dilation = _geometry(ctx, p, nsp, "dilation", 1)
    group, out_ch, channels = p.int("group", 1), p.int("num_output"), shape[1]
    deconv = layer.type == "Deconvolution"
    if out_ch <= 0 or channels % group or out_ch % group:
        raise ctx.fail(
            f"num_output {out_ch} and {channels} input channels must be divisible by group {group}"
        )
    w_shape = (
        (channels, out_ch // group, *kernel) if deconv else (out_ch, channels // group, *kernel)
    )
    weight = ctx.blob(0, "weights")
    if weight.size != math.prod(w_shape):
        raise ctx.fail(f"weights have shape {list(weight.shape)}, expected {list(w_shape)}")
    inputs = [ctx.x(), ctx.const("weight", weight.reshape(w_shape))]
    if p.bool("bias_term", True):
        inputs.append(ctx.const("bias", ctx.blob(1, "bias").reshape(out_ch)))
    attrs = {
        "kernel_shape": kernel,
        "strides": stride,
        "pads": pad + pad,
        "dilations": dilation,
        "group": group,
    }
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if deconv:
        out = [
            s * (n - 1) + e - 2 * q for n, s, e, q in zip(shape[2:], stride, span, pad, strict=True)
        ]
    else:
        out = [
            (n + 2 * q - e) // s + 1
            for n, s, e, q in zip(shape[2:], stride, span, pad, strict=True)
        ]
    if any(d <= 0 for d in out):
        raise ctx.fail(f"output size {out} is empty for input {list(shape)}")
    ctx.set(
        0, ctx.node("ConvTranspose" if deconv else "Conv", inputs, attrs), (shape[0], out_ch, *out)
    )


_POOL = {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}


@_layer("Pooling")
def _pooling(ctx: Context, layer) -> None:
    p = layer.param("pooling_param")
    shape = ctx.shape()
    method = p.enum("pool", _POOL, 0)
    if method == 2:
        raise ctx.unsupported("STOCHASTIC pooling")
    if p.bool("global_pooling"):
        op = "GlobalMaxPool" if method == 0 else "GlobalAveragePool"
        ctx.set(0, ctx.node(op, [ctx.x()]), (*shape[:2], *([1] * (len(shape) - 2))))
        return
    nsp = len(shape) - 2
    kernel = _geometry(ctx, p, nsp, "kernel_size", None)
    stride = _geometry(ctx, p, nsp, "stride", 1)
    pad = _geometry(ctx, p, nsp, "pad", 0)
    ceil = p.bool("ceil_mode", True) and p.enum("round_mode", {"CEIL": 0, "FLOOR": 1}, 0) == 0
    out, extra = [], []
    for n, k, s, q in zip(shape[2:], kernel, stride, pad, strict=True):
        size = (n + 2 * q - k) / s
        o = (math.ceil(size) if ceil else math.floor(size)) + 1
        if q and (o - 1) * s >= n + q:  # the last window must start inside the input or its padding
            o -= 1
        out.append(o)
        extra.append(max(0, (o - 1) * s + k - (n + 2 * q)))
    x = ctx.x()
    if method == 0:
        ends = [q + e for q, e in zip(pad, extra, strict=True)]
        pads = pad + ends
        if any(v >= k for v, k in zip(pads, kernel + kernel, strict=True)):
            x = ctx.node(
                "Pad",
                [x, ctx.const("pads", [0, 0, *pad, 0, 0, *ends]), ctx.const("fill", _FLOAT_MIN)],
            )
            pads = [0] * (2 * nsp)
        y = ctx.node("MaxPool", [x], {"kernel_shape": kernel, "strides": stride, "pads": pads})
    elif not any(extra):
        attrs = {
            "kernel_shape": kernel,
            "strides": stride,
            "pads": pad + pad,
            "count_include_pad": 1,
        }
        y = ctx.node("AveragePool", [x], attrs)
    else:  # Caffe divides by the window clipped to the padded input: pad with zeros, never count the rest
        if any(pad):
            x = ctx.node("Pad", [x, ctx.const("pads", [0, 0, *pad, 0, 0, *pad])])
        attrs = {
            "kernel_shape": kernel,
            "strides": stride,
            "pads": [0] * nsp + extra,
            "count_include_pad": 0,
        }
        y = ctx.node("AveragePool", [x], attrs)
    ctx.set(0, y, (*shape[:2], *out))


# ---------------------------------------------------------------- dense, activations
@_layer("InnerProduct")
def _inner_product(ctx: Context, layer) -> None:
    p = layer.param("inner_product_param")
    shape = ctx.shape()
    axis = _axis(ctx, p.int("axis", 1), len(shape))
    n_out, k = p.int("num_output"), math.prod(shape[axis:])
    transpose = p.bool("transpose")
    weight = ctx.blob(0, "weights")
    if weight.size != n_out * k:
        raise ctx.fail(f"weights have {weight.size} values, expected {n_out} x {k}")
    x = ctx.x()
    if len(shape) != 2 or axis != 1:
        x = ctx.node("Flatten", [x], {"axis": axis})
    inputs = [x, ctx.const("weight", weight.reshape((k, n_out) if transpose else (n_out, k)))]
    if p.bool("bias_term", True):
        inputs.append(ctx.const("bias", ctx.blob(1, "bias").reshape(n_out)))
    y = ctx.node("Gemm", inputs, {"transB": 0 if transpose else 1})
    out = (*shape[:axis], n_out)
    if axis != 1:
        y = _reshape(ctx, y, out)
    ctx.set(0, y, out)


@_layer("ReLU")
def _relu(ctx: Context, layer) -> None:
    slope = layer.param("relu_param").float("negative_slope", 0.0)
    y = ctx.node("LeakyRelu", [ctx.x()], {"alpha": slope}) if slope else ctx.node("Relu", [ctx.x()])
    ctx.set(0, y, ctx.shape())


@_layer("PReLU")
def _prelu(ctx: Context, layer) -> None:
    shape = ctx.shape()
    slope = ctx.blob(0, "slopes").reshape(-1)
    if layer.param("prelu_param").bool("channel_shared") or slope.size == 1:
        slope = slope[:1]
    elif slope.size != shape[1]:
        raise ctx.fail(f"{slope.size} slopes for {shape[1]} channels")
    else:
        slope = slope.reshape((-1,) + (1,) * (len(shape) - 2))
    ctx.set(0, ctx.node("PRelu", [ctx.x(), ctx.const("slope", slope)]), shape)


@_layer("ELU")
def _elu(ctx: Context, layer) -> None:
    alpha = layer.param("elu_param").float("alpha", 1.0)
    ctx.set(0, ctx.node("Elu", [ctx.x()], {"alpha": alpha}), ctx.shape())


def _affine(ctx: Context, x: str, scale: float, shift: float) -> str:
    if scale != 1.0:
        x = ctx.node("Mul", [x, ctx.const("scale", np.float32(scale))])
    if shift != 0.0:
        x = ctx.node("Add", [x, ctx.const("shift", np.float32(shift))])
    return x


@_layer("Power")
def _power(ctx: Context, layer) -> None:
    p = layer.param("power_param")
    y = _affine(ctx, ctx.x(), p.float("scale", 1.0), p.float("shift", 0.0))
    power = p.float("power", 1.0)
    if power != 1.0:
        y = ctx.node("Pow", [y, ctx.const("power", np.float32(power))])
    ctx.set(0, y, ctx.shape())


@_layer("Exp")
def _exp(ctx: Context, layer) -> None:
    p = layer.param("exp_param")
    base = p.float("base", -1.0)
    ln = 1.0 if base == -1.0 else math.log(base)
    y = _affine(ctx, ctx.x(), p.float("scale", 1.0) * ln, p.float("shift", 0.0) * ln)
    ctx.set(0, ctx.node("Exp", [y]), ctx.shape())


@_layer("Log")
def _log(ctx: Context, layer) -> None:
    p = layer.param("log_param")
    base = p.float("base", -1.0)
    y = ctx.node("Log", [_affine(ctx, ctx.x(), p.float("scale", 1.0), p.float("shift", 0.0))])
    if base != -1.0:
        y = ctx.node("Mul", [y, ctx.const("inv_log_base", np.float32(1.0 / math.log(base)))])
    ctx.set(0, y, ctx.shape())


@_layer("Threshold")
def _threshold(ctx: Context, layer) -> None:
    t = layer.param("threshold_param").float("threshold", 0.0)
    above = ctx.node("Greater", [ctx.x(), ctx.const("threshold", np.float32(t))])
    ctx.set(0, ctx.node("Cast", [above], {"to": 1}), ctx.shape())


@_layer("Softmax")
def _softmax(ctx: Context, layer) -> None:
    shape = ctx.shape()
    axis = _axis(ctx, layer.param("softmax_param").int("axis", 1), len(shape))
    ctx.set(0, ctx.node("Softmax", [ctx.x()], {"axis": axis}), shape)


@_layer("Dropout", "Split")
def _identity(ctx: Context, layer) -> None:
    for i in range(
        len(layer.tops)
    ):  # dropout is the identity at test time; Split copies its bottom
        ctx.set(i, ctx.x(), ctx.shape())


@_layer("Silence")
def _silence(ctx: Context, layer) -> None:
    """Consumes its bottoms, produces nothing."""


# ---------------------------------------------------------------- normalisation
@_layer("BatchNorm")
def _batch_norm(ctx: Context, layer) -> None:
    p = layer.param("batch_norm_param")
    shape = ctx.shape()
    eps = p.float("eps", 1e-5)
    channels = shape[1] if len(shape) > 1 else 1
    if not p.bool(
        "use_global_stats", True
    ):  # statistics of the batch itself, as Caffe does in training
        axes = [i for i in range(len(shape)) if i != 1]
        mean = ctx.node("ReduceMean", [ctx.x(), ctx.const("axes", axes)], {"keepdims": 1})
        centred = ctx.node("Sub", [ctx.x(), mean])
        var = ctx.node(
            "ReduceMean",
            [ctx.node("Mul", [centred, centred]), ctx.const("axes", axes)],
            {"keepdims": 1},
        )
        std = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.const("eps", np.float32(eps))])])
        ctx.set(0, ctx.node("Div", [centred, std]), shape)
        return
    mean, var = ctx.blob(0, "mean").reshape(-1), ctx.blob(1, "variance").reshape(-1)
    factor = ctx.blob(2, "scale factor").reshape(-1)[0] if len(layer.blobs) > 2 else 1.0
    factor = 0.0 if factor == 0 else 1.0 / factor
    if mean.size != channels or var.size != channels:
        raise ctx.fail(f"mean/variance of {mean.size}/{var.size} values for {channels} channels")
    inputs = [
        ctx.x(),
        ctx.const("scale", np.ones(channels, np.float32)),
        ctx.const("bias", np.zeros(channels, np.float32)),
        ctx.const("mean", (mean * factor).astype(np.float32)),
        ctx.const("var", (var * factor).astype(np.float32)),
    ]
    ctx.set(0, ctx.node("BatchNormalization", inputs, {"epsilon": eps}), shape)


def _broadcast(ctx: Context, value: np.ndarray, shape: Shape, axis: int, what: str) -> np.ndarray:
    n = value.ndim
    if tuple(value.shape) != tuple(shape[axis : axis + n]):
        raise ctx.fail(
            f"{what} of shape {list(value.shape)} does not match {list(shape)} from axis {axis}"
        )
    return value.reshape(value.shape + (1,) * (len(shape) - axis - n))


@_layer("Scale", "Bias")
def _scale(ctx: Context, layer) -> None:
    is_scale = layer.type == "Scale"
    p = layer.param("scale_param" if is_scale else "bias_param")
    shape = ctx.shape()
    rank = len(shape)
    axis = _axis(ctx, p.int("axis", 1), rank)
    y, blob = ctx.x(), 0
    op = "Mul" if is_scale else "Add"
    if len(layer.bottoms) > 1:  # the factor is the second bottom; num_axes is its rank
        other = ctx.shape(1)
        if tuple(other) != tuple(shape[axis : axis + len(other)]):
            raise ctx.fail(
                f"second bottom of shape {list(other)} does not match {list(shape)} from axis {axis}"
            )
        factor = _reshape(ctx, ctx.x(1), (*other, *([1] * (rank - axis - len(other)))))
        y = ctx.node(op, [y, factor])
    else:
        num_axes = p.int("num_axes", 1)
        end = rank if num_axes == -1 else axis + num_axes
        factor = ctx.blob(0, "scale" if is_scale else "bias").reshape(shape[axis:end])
        y = ctx.node(
            op, [y, ctx.const(op.lower(), _broadcast(ctx, factor, shape, axis, layer.type))]
        )
        blob = 1
    if is_scale and p.bool("bias_term"):
        end = axis + (
            len(ctx.shape(1))
            if len(layer.bottoms) > 1
            else (rank - axis if p.int("num_axes", 1) == -1 else p.int("num_axes", 1))
        )
        bias = ctx.blob(blob, "bias").reshape(shape[axis:end])
        y = ctx.node("Add", [y, ctx.const("bias", _broadcast(ctx, bias, shape, axis, "bias"))])
    ctx.set(0, y, shape)


_NORM_REGION = {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}


@_layer("LRN")
def _lrn(ctx: Context, layer) -> None:
    p = layer.param("lrn_param")
    size, alpha, beta = p.int("local_size", 5), p.float("alpha", 1.0), p.float("beta", 0.75)
    if size % 2 == 0:
        raise ctx.fail(f"local_size {size} must be odd")
    x, shape = ctx.x(), ctx.shape()
    if p.enum("norm_region", _NORM_REGION, 0) == 0:
        attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": p.float("k", 1.0)}
        ctx.set(0, ctx.node("LRN", [x], attrs), shape)
        return
    # WITHIN_CHANNEL: x * (1 + alpha * mean of x^2 over a size x size window, zero padded)^-beta
    # (Caffe builds it from Power, Pooling and Eltwise layers; k is not used)
    half = (size - 1) // 2
    nsp = len(shape) - 2
    attrs = {"kernel_shape": [size] * nsp, "pads": [half] * (2 * nsp), "count_include_pad": 1}
    mean = ctx.node("AveragePool", [ctx.node("Mul", [x, x])], attrs)
    base = _affine(ctx, mean, alpha, 1.0)
    scale = ctx.node("Pow", [base, ctx.const("neg_beta", np.float32(-beta))])
    ctx.set(0, ctx.node("Mul", [x, scale]), shape)


@_layer("Normalize")
def _normalize(ctx: Context, layer) -> None:
    """SSD's Normalize: x / sqrt(sum x^2 + eps) over C,H,W (across_spatial) or C, times a scale."""
    p = layer.param("norm_param")
    shape = ctx.shape()
    x = ctx.x()
    axes = list(range(1, len(shape))) if p.bool("across_spatial", True) else [1]
    sq = ctx.node("ReduceSum", [ctx.node("Mul", [x, x]), ctx.const("axes", axes)], {"keepdims": 1})
    norm = ctx.node(
        "Sqrt", [ctx.node("Add", [sq, ctx.const("eps", np.float32(p.float("eps", 1e-10)))])]
    )
    y = ctx.node("Div", [x, norm])
    if layer.blobs:
        scale = ctx.blob(0, "scale").reshape(-1)
        if p.bool("channel_shared", True) or scale.size == 1:
            scale = scale[:1]
        else:
            scale = scale.reshape((-1,) + (1,) * (len(shape) - 2))
        y = ctx.node("Mul", [y, ctx.const("scale", scale)])
    ctx.set(0, y, shape)


# ---------------------------------------------------------------- data movement
@_layer("Concat")
def _concat(ctx: Context, layer) -> None:
    p = layer.param("concat_param")
    shapes = [ctx.shape(i) for i in range(len(layer.bottoms))]
    axis = _axis(ctx, p.int("axis", p.int("concat_dim", 1)), len(shapes[0]))
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    y = ctx.node("Concat", [ctx.x(i) for i in range(len(shapes))], {"axis": axis})
    ctx.set(0, y, out)


_ELTWISE = {"PROD": 0, "SUM": 1, "MAX": 2}


@_layer("Eltwise")
def _eltwise(ctx: Context, layer) -> None:
    p = layer.param("eltwise_param")
    op = p.enum("operation", _ELTWISE, 1)
    xs = [ctx.x(i) for i in range(len(layer.bottoms))]
    coeffs = p.floats("coeff")
    if coeffs and len(coeffs) != len(xs):
        raise ctx.fail(f"{len(coeffs)} coeff values for {len(xs)} bottoms")
    if op == 2:
        ctx.set(0, ctx.node("Max", xs), ctx.shape())
        return
    if op == 1 and coeffs:
        xs = [
            x if c == 1.0 else ctx.node("Mul", [x, ctx.const("coeff", np.float32(c))])
            for x, c in zip(xs, coeffs, strict=True)
        ]
    y = xs[0]
    for other in xs[1:]:
        y = ctx.node("Add" if op == 1 else "Mul", [y, other])
    ctx.set(0, y, ctx.shape())


@_layer("Slice")
def _slice(ctx: Context, layer) -> None:
    p = layer.param("slice_param")
    shape = ctx.shape()
    axis = _axis(ctx, p.int("axis", p.int("slice_dim", 1)), len(shape))
    points, n = p.ints("slice_point"), len(layer.tops)
    dim = shape[axis]
    if points:
        if len(points) != n - 1 or sorted(points) != points or points[0] <= 0 or points[-1] >= dim:
            raise ctx.fail(f"slice_point {points} does not split {dim} into {n} parts")
        sizes = [b - a for a, b in zip([0, *points], [*points, dim], strict=True)]
    else:
        if dim % n:
            raise ctx.fail(f"axis size {dim} does not split evenly into {n} tops")
        sizes = [dim // n] * n
    outs = ctx.node("Split", [ctx.x(), ctx.const("split", sizes)], {"axis": axis}, outputs=n)
    for i, (value, size) in enumerate(zip([outs] if n == 1 else outs, sizes, strict=True)):
        ctx.set(i, value, (*shape[:axis], size, *shape[axis + 1 :]))


@_layer("Crop")
def _crop(ctx: Context, layer) -> None:
    p = layer.param("crop_param")
    shape, ref = ctx.shape(0), ctx.shape(1)
    axis = _axis(ctx, p.int("axis", 2), len(shape))
    n = len(shape) - axis
    offsets = p.ints("offset") or [0]
    if len(offsets) == 1:
        offsets = offsets * n
    if len(offsets) != n:
        raise ctx.fail(f"{len(offsets)} offsets for {n} cropped axes")
    ends = [o + r for o, r in zip(offsets, ref[axis:], strict=True)]
    if any(e > s for e, s in zip(ends, shape[axis:], strict=True)):
        raise ctx.fail(
            f"cropping {list(shape)} to {list(ref)} at offsets {offsets} leaves the blob"
        )
    axes = list(range(axis, len(shape)))
    y = ctx.node(
        "Slice",
        [ctx.x(), ctx.const("starts", offsets), ctx.const("ends", ends), ctx.const("axes", axes)],
    )
    ctx.set(0, y, (*shape[:axis], *ref[axis:]))


@_layer("Flatten")
def _flatten(ctx: Context, layer) -> None:
    p = layer.param("flatten_param")
    shape = ctx.shape()
    start = _axis(ctx, p.int("axis", 1), len(shape))
    end = _axis(ctx, p.int("end_axis", -1), len(shape))
    out = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
    ctx.set(0, _reshape(ctx, ctx.x(), out), out)


@_layer("Reshape")
def _reshape_layer(ctx: Context, layer) -> None:
    p = layer.param("reshape_param")
    shape = ctx.shape()
    dims = p.msg("shape").ints("dim")
    start = _axis(ctx, p.int("axis", 0), len(shape), extra=1)
    num_axes = p.int("num_axes", -1)
    end = len(shape) if num_axes == -1 else start + num_axes
    if num_axes < -1 or end > len(shape):
        raise ctx.fail(f"num_axes {num_axes} is out of range")
    middle = []
    for i, d in enumerate(dims):
        if d == 0:  # copy the bottom's dimension
            if start + i >= len(shape):
                raise ctx.fail("dim 0 refers to an axis the bottom does not have")
            middle.append(shape[start + i])
        else:
            middle.append(d)
    if middle.count(-1) > 1:
        raise ctx.fail("at most one dim may be -1")
    out = [*shape[:start], *middle, *shape[end:]]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or math.prod(shape) % known:
            raise ctx.fail(f"cannot reshape {list(shape)} to {dims}")
        out[out.index(-1)] = math.prod(shape) // known
    if math.prod(out) != math.prod(shape) or any(d <= 0 for d in out):
        raise ctx.fail(f"cannot reshape {list(shape)} to {out}")
    ctx.set(0, _reshape(ctx, ctx.x(), out), out)


@_layer("Permute")
def _permute(ctx: Context, layer) -> None:
    shape = ctx.shape()
    order = [_axis(ctx, a, len(shape)) for a in layer.param("permute_param").ints("order")]
    if len(set(order)) != len(order):
        raise ctx.fail(f"order {order} repeats an axis")
    order += [a for a in range(len(shape)) if a not in order]
    ctx.set(0, ctx.node("Transpose", [ctx.x()], {"perm": order}), [shape[a] for a in order])


@_layer("Tile")
def _tile(ctx: Context, layer) -> None:
    p = layer.param("tile_param")
    shape = ctx.shape()
    axis = _axis(ctx, p.int("axis", 1), len(shape))
    reps = [1] * len(shape)
    reps[axis] = p.int("tiles", 1)
    out = [d * r for d, r in zip(shape, reps, strict=True)]
    ctx.set(0, ctx.node("Tile", [ctx.x(), ctx.const("repeats", reps)]), out)


@_layer("ArgMax")
def _argmax(ctx: Context, layer) -> None:
    """Indices (as floats, like Caffe) of the top_k values; with out_max_val the values too."""
    p = layer.param("argmax_param")
    shape = ctx.shape()
    k, with_values = p.int("top_k", 1), p.bool("out_max_val")
    x = ctx.x()
    if p.has("axis"):
        axis = _axis(ctx, p.int("axis"), len(shape))
        values, indices = ctx.node("TopK", [x, ctx.const("k", [k])], {"axis": axis}, outputs=2)
        out = list(shape)
        out[axis] = k
        y = values if with_values else ctx.node("Cast", [indices], {"to": 1})
        ctx.set(0, y, out)
        return
    flat = _reshape(ctx, x, (shape[0], math.prod(shape[1:])))
    values, indices = ctx.node("TopK", [flat, ctx.const("k", [k])], {"axis": 1}, outputs=2)
    out = [1] * max(len(shape), 3)
    out[0], out[2] = shape[0], k
    parts = [_reshape(ctx, ctx.node("Cast", [indices], {"to": 1}), out)]
    if with_values:
        parts.append(_reshape(ctx, values, out))
        out[1] = 2
    ctx.set(0, parts[0] if len(parts) == 1 else ctx.node("Concat", parts, {"axis": 1}), out)


def _resize(ctx: Context, size: Sequence[int], mode: str) -> None:
    shape = ctx.shape()
    out = (*shape[:2], *size)
    attrs = {"mode": mode}
    if mode == "linear":
        attrs["coordinate_transformation_mode"] = "align_corners"
    else:
        attrs["coordinate_transformation_mode"] = "asymmetric"
        attrs["nearest_mode"] = "floor"
    y = ctx.node("Resize", [ctx.x(), "", "", ctx.const("sizes", list(out))], attrs)
    ctx.set(0, y, out)


@_layer("Interp")
def _interp(ctx: Context, layer) -> None:
    """PSPNet/DeepLab's bilinear Interp (corners aligned) to a size, a zoom or a shrink factor."""
    p = layer.param("interp_param")
    shape = ctx.shape()
    if p.int("pad_beg", 0) or p.int("pad_end", 0):
        raise ctx.unsupported("Interp with pad_beg/pad_end")
    h, w = shape[2:4]
    zoom, shrink = p.int("zoom_factor", 1), p.int("shrink_factor", 1)
    if len(layer.bottoms) > 1:
        size = ctx.shape(1)[2:4]
    elif p.has("zoom_factor") or p.has("shrink_factor"):
        h, w = (h - 1) // shrink + 1, (w - 1) // shrink + 1
        size = (h + (h - 1) * (zoom - 1), w + (w - 1) * (zoom - 1))
    elif p.has("height") and p.has("width"):
        size = (p.int("height"), p.int("width"))
    else:
        raise ctx.fail("give zoom_factor, shrink_factor, or height and width")
    _resize(ctx, size, "linear")


@_layer("Upsample")
def _upsample(ctx: Context, layer) -> None:
    """The nearest-neighbour Upsample with an integer `scale` (the form YOLO ports use)."""
    if len(layer.bottoms) > 1:
        raise ctx.unsupported("Upsample with a pooling mask (SegNet's max unpooling)")
    p = layer.param("upsample_param")
    scale = p.int("scale", 2)
    h, w = ctx.shape()[2:4]
    _resize(ctx, (h * p.int("scale_h", scale), w * p.int("scale_w", scale)), "nearest")
