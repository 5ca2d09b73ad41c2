"""MXNet neural-network ops: convolution, deconvolution, dense, normalization, pooling (NCHW)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError
from .mxnet_ops import LowerContext, MxNode, MxValue, norm_axis, op, result, unsupported


# ---------------------------------------------------------------- convolution and dense
def _spatial(node: MxNode, key: str, n: int, default: int) -> list[int]:
    values = node.ints(key)
    return [default] * n if not values else [int(v) for v in values]


def _conv_size(size, k, s, d, p_total):
    if size is None:
        return None
    return (size + p_total - d * (k - 1) - 1) // s + 1


def _check_layout(node: MxNode) -> None:
    layout = node.get("layout")
    if layout is not None and layout not in ("NCW", "NCHW", "NCDHW"):
        raise unsupported(node, f"layout {layout} (only channels-first layouts are supported)")


@op("Convolution", "Convolution_v1")
def _convolution(ctx, node, ins):
    _check_layout(node)
    kernel = node.ints("kernel")
    n = len(kernel)
    stride, dilate, pad = (
        _spatial(node, "stride", n, 1),
        _spatial(node, "dilate", n, 1),
        _spatial(node, "pad", n, 0),
    )
    attrs = {"kernel_shape": kernel, "strides": stride, "dilations": dilate, "pads": pad + pad,
             "group": node.int("num_group", 1)}  # fmt: skip
    inputs = ins[:2] if node.bool("no_bias") else ins[:3]
    y = ctx.node("Conv", inputs, attrs, name=node.name)
    x = ins[0]
    shape = None
    if x.shape is not None:
        sizes = [
            _conv_size(x.shape[2 + i], kernel[i], stride[i], dilate[i], 2 * pad[i])
            for i in range(n)
        ]
        shape = (x.shape[0], node.int("num_filter"), *sizes)
    return result(x, y, shape)


@op("Deconvolution")
def _deconvolution(ctx, node, ins):
    _check_layout(node)
    kernel = node.ints("kernel")
    n = len(kernel)
    stride, dilate = _spatial(node, "stride", n, 1), _spatial(node, "dilate", n, 1)
    pad, adj = _spatial(node, "pad", n, 0), _spatial(node, "adj", n, 0)
    x = ins[0]
    target = [t for t in node.ints("target_shape") if t]
    if target:
        if x.shape is None or any(d is None for d in x.shape[2:]):
            raise ModelFormatError(
                f"Deconvolution {node.name!r} with target_shape needs the input sizes; pass input_shapes="
            )
        pad, adj = [], []
        for i in range(n):
            total = stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 - target[i]
            adj.append(total % 2)
            pad.append((total + 1) // 2)
    attrs = {"kernel_shape": kernel, "strides": stride, "dilations": dilate, "pads": pad + pad,
             "output_padding": adj, "group": node.int("num_group", 1)}  # fmt: skip
    inputs = (
        ins[:3] if node.get("no_bias", "True" if len(ins) < 3 else "False") == "False" else ins[:2]
    )
    y = ctx.node("ConvTranspose", inputs, attrs, name=node.name)
    shape = None
    if x.shape is not None:
        sizes = [
            None if x.shape[2 + i] is None
            else stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 - 2 * pad[i] + adj[i]
            for i in range(n)
        ]  # fmt: skip
        shape = (x.shape[0], node.int("num_filter"), *sizes)
    return result(x, y, shape)


@op("FullyConnected")
def _fully_connected(ctx, node, ins):
    x, w = ins[0], ins[1]
    bias = ins[2] if not node.bool("no_bias") and len(ins) > 2 else None
    units = node.int("num_hidden")
    if node.bool("flatten", True):
        flat = ctx.node("Flatten", [x], {"axis": 1}) if x.rank != 2 else ctx.tensor(x)
        y = ctx.node(
            "Gemm", [flat, w] + ([bias] if bias is not None else []), {"transB": 1}, name=node.name
        )
        return result(x, y, None if x.shape is None else (x.shape[0], units))
    wt = (
        ctx.const(w.const.T, name=(w.hint or "w") + "_t")
        if w.const is not None
        else ctx.node("Transpose", [w])
    )
    y = ctx.node("MatMul", [x, wt], name=node.name if bias is None else None)
    if bias is not None:
        y = ctx.node("Add", [y, bias], name=node.name)
    return result(x, y, None if x.shape is None else (*x.shape[:-1], units))


# ---------------------------------------------------------------- normalization
@op("BatchNorm", "BatchNorm_v1", "_contrib_SyncBatchNorm")
def _batch_norm(ctx, node, ins):
    x, gamma, beta, mean, var = ins[:5]
    eps = node.float("eps", 1e-3)
    axis = node.int("axis", 1)
    if node.bool("fix_gamma", True):
        gamma = MxValue.constant(
            np.ones(gamma.shape or mean.shape, x.dtype), (gamma.hint or "gamma") + "_fixed"
        )
    rank = x.rank
    if axis < 0:
        axis = norm_axis(axis, rank, node)
    if axis == 1:
        y = ctx.node(
            "BatchNormalization", [x, gamma, beta, mean, var], {"epsilon": eps}, name=node.name
        )
        return [result(x, y, keep_shape=True), mean, var]
    rank = ctx.need_rank(x, node)
    consts = [gamma, beta, mean, var]
    if any(c.const is None for c in consts):
        raise ModelFormatError(
            f"BatchNorm {node.name!r} on axis {axis}: statistics must be stored parameters"
        )
    g, bt, m, v = (c.const.astype(np.float64) for c in consts)
    scale = g / np.sqrt(v + eps)
    shift = bt - m * scale
    bshape = [1] * rank
    bshape[axis] = -1
    y = ctx.node("Mul", [x, ctx.const(scale.reshape(bshape).astype(x.dtype), name="bn_scale")])
    y = ctx.node(
        "Add",
        [y, ctx.const(shift.reshape(bshape).astype(x.dtype), name="bn_shift")],
        name=node.name,
    )
    return [result(x, y, keep_shape=True), mean, var]


@op("LayerNorm")
def _layer_norm(ctx, node, ins):
    x, gamma, beta = ins
    eps = node.float("eps", 1e-5)
    axis = node.int("axis", -1)
    rank = x.rank
    if axis == -1 or (rank is not None and axis == rank - 1):
        y = ctx.node(
            "LayerNormalization", [x, gamma, beta], {"axis": -1, "epsilon": eps}, name=node.name
        )
        return result(x, y, keep_shape=True)
    rank = ctx.need_rank(x, node)
    axis = norm_axis(axis, rank, node)
    perm = [i for i in range(rank) if i != axis] + [axis]
    inv = [perm.index(i) for i in range(rank)]
    t = ctx.node("Transpose", [x], {"perm": perm})
    t = ctx.node("LayerNormalization", [t, gamma, beta], {"axis": -1, "epsilon": eps})
    return result(x, ctx.node("Transpose", [t], {"perm": inv}, name=node.name), keep_shape=True)


@op("InstanceNorm")
def _instance_norm(ctx, node, ins):
    x, gamma, beta = ins
    y = ctx.node(
        "InstanceNormalization",
        [x, gamma, beta],
        {"epsilon": node.float("eps", 1e-3)},
        name=node.name,
    )
    return result(x, y, keep_shape=True)


@op("L2Normalization")
def _l2_normalization(ctx, node, ins):
    x = ins[0]
    rank = ctx.need_rank(x, node)
    mode = node.get("mode", "instance")
    axes = {"instance": list(range(1, rank)), "channel": [1], "spatial": list(range(2, rank))}[mode]
    ss = ctx.node("ReduceSumSquare", [x, ctx.const(axes)], {"keepdims": 1})
    norm = ctx.node(
        "Sqrt", [ctx.node("Add", [ss, ctx.const(np.array(node.float("eps", 1e-10), x.dtype))])]
    )
    return result(x, ctx.node("Div", [x, norm], name=node.name), keep_shape=True)


# ---------------------------------------------------------------- pooling
@op("Pooling", "Pooling_v1")
def _pooling(ctx, node, ins):
    _check_layout(node)
    x = ins[0]
    ptype = node.get("pool_type", "max")
    if ptype not in ("max", "avg", "sum", "lp"):
        raise ModelFormatError(f"Pooling {node.name!r}: unknown pool_type {ptype!r}")
    p_value = node.int("p_value", 2)
    if node.bool("global_pool"):
        rank = ctx.need_rank(x, node)
        if ptype == "sum" or (ptype == "lp" and p_value != 2):
            src = _lp_power(ctx, x, p_value) if ptype == "lp" else ctx.tensor(x)
            y = ctx.node("ReduceSum", [src, ctx.const(list(range(2, rank)))], {"keepdims": 1})
            y = _lp_root(ctx, y, p_value, x.dtype, node.name) if ptype == "lp" else y
        else:
            onnx_op = {"max": "GlobalMaxPool", "avg": "GlobalAveragePool", "lp": "GlobalLpPool"}[
                ptype
            ]
            y = ctx.node(onnx_op, [x], {"p": p_value} if ptype == "lp" else None, name=node.name)
        shape = None if x.shape is None else (*x.shape[:2], *([1] * (rank - 2)))
        return result(x, y, shape)
    kernel = node.ints("kernel")
    n = len(kernel)
    stride, pad = _spatial(node, "stride", n, 1), _spatial(node, "pad", n, 0)
    convention = node.get("pooling_convention", "valid")
    sizes = [None] * n if x.shape is None else list(x.shape[2:])
    extra = [0] * n
    if convention == "full":
        if any(s is None for s in sizes):
            raise ModelFormatError(
                f"Pooling {node.name!r} with pooling_convention='full' needs the input sizes; "
                "pass input_shapes={...} to read_mxnet/load"
            )
        for i in range(n):
            out = 1 + math.ceil((sizes[i] + 2 * pad[i] - kernel[i]) / stride[i])
            extra[i] = max(0, (out - 1) * stride[i] + kernel[i] - sizes[i] - 2 * pad[i])
    elif convention != "valid":  # "same" (1-D max pooling only in MXNet) is not lowered
        raise unsupported(node, f"pooling_convention={convention!r}")
    attrs = {"kernel_shape": kernel, "strides": stride}
    out_sizes = [
        _conv_size(s, k, st, 1, 2 * p + e)
        for s, k, st, p, e in zip(sizes, kernel, stride, pad, extra)
    ]
    shape = None if x.shape is None else (*x.shape[:2], *out_sizes)
    pads = pad + [p + e for p, e in zip(pad, extra, strict=True)]
    if ptype == "max":
        return result(x, ctx.node("MaxPool", [x], {**attrs, "pads": pads}, name=node.name), shape)
    if ptype == "lp" and p_value == 2:
        return result(
            x, ctx.node("LpPool", [x], {**attrs, "pads": pads, "p": 2}, name=node.name), shape
        )
    if ptype == "lp":  # MXNet's Lp pooling keeps signs: (sum x^p)^(1/p), not ONNX's |x|^p
        summed = ctx.node(
            "AveragePool",
            [_lp_power(ctx, x, p_value)],
            {**attrs, "pads": pads, "count_include_pad": 1},
        )
        summed = ctx.node("Mul", [summed, ctx.const(np.array(np.prod(kernel), x.dtype))])
        return result(x, _lp_root(ctx, summed, p_value, x.dtype, node.name), shape)
    if ptype == "sum":
        avg = ctx.node("AveragePool", [x], {**attrs, "pads": pads, "count_include_pad": 1})
        y = ctx.node("Mul", [avg, ctx.const(np.array(np.prod(kernel), x.dtype))], name=node.name)
        return result(x, y, shape)
    if node.bool("count_include_pad", True) and any(pad):
        # MXNet counts the symmetric padding but not the extra cells of the "full" convention.
        xp = ctx.node("Pad", [x, ctx.const([0, 0, *pad, 0, 0, *pad])])
        y = ctx.node(
            "AveragePool",
            [xp],
            {**attrs, "pads": [0] * n + extra, "count_include_pad": 0},
            name=node.name,
        )
    else:
        y = ctx.node(
            "AveragePool", [x], {**attrs, "pads": pads, "count_include_pad": 0}, name=node.name
        )
    return result(x, y, shape)


def _lp_power(ctx: LowerContext, x: MxValue, p: int) -> str:
    return ctx.tensor(x) if p == 1 else ctx.node("Pow", [x, ctx.const(np.array(p, x.dtype))])


def _lp_root(ctx: LowerContext, y: str, p: int, dtype, name: str) -> str:
    if p == 1:
        return ctx.node("Identity", [y], name=name)
    root = ctx.node("Pow", [ctx.node("Abs", [y]), ctx.const(np.array(1.0 / p, dtype))])
    return ctx.node("Mul", [ctx.node("Sign", [y]), root], name=name)
