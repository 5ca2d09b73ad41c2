"""Lowerings of TensorFlow ops (as found in frozen graphs and SavedModel functions) to ONNX-semantics nodes.

Constants (Const nodes, variables) stay NumPy and simple arithmetic on them is folded at
load time, so weights reach Conv/MatMul already in ONNX layout and per-channel
constants can follow a channels-first tensor without transposes.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFormatError
from ..graph import GraphBuilder
from ._nhwc import Value, const, conv_attrs, to_first_perm
from ._tf_common import conv_transpose_pads, strided_slice
from .tf_types import np_dtype, tensor_value

if TYPE_CHECKING:
    from .tensorflow import TfNode

Result = list[Any]  # Value or np.ndarray per output
Lowering = Callable[["LowerContext", "TfNode"], Result]
OPS: dict[str, Lowering] = {}
_ONNX_TYPES = {np.float32: 1, np.uint8: 2, np.int8: 3, np.uint16: 4, np.int16: 5, np.int32: 6, np.int64: 7,
               np.bool_: 9, np.float16: 10, np.float64: 11, np.uint32: 12, np.uint64: 13}  # fmt: skip


def op(*names: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for n in names:
            OPS[n] = fn
        return fn

    return deco


# -- attribute access (AttrValue: list=1 s=2 i=3 f=4 b=5 type=6 shape=7 tensor=8 func=10) ------


def attr_int(node: TfNode, key: str, default: int = 0) -> int:
    a = node.attrs.get(key)
    return a.int(3, default) if a is not None and a.has(3) else default


def attr_float(node: TfNode, key: str, default: float = 0.0) -> float:
    a = node.attrs.get(key)
    return a.float(4, default) if a is not None and a.has(4) else default


def attr_bool(node: TfNode, key: str, default: bool = False) -> bool:
    a = node.attrs.get(key)
    return a.bool(5, default) if a is not None and a.has(5) else default


def attr_str(node: TfNode, key: str, default: str = "") -> str:
    a = node.attrs.get(key)
    return a.str(2, default) if a is not None and a.has(2) else default


def attr_type(node: TfNode, key: str) -> np.dtype:
    a = node.attrs.get(key)
    if a is None or not a.has(6):
        raise ModelFormatError(f"node {node.name!r} has no type attribute {key!r}")
    return np_dtype(a.int(6))


def attr_ints(node: TfNode, key: str) -> list[int]:
    a = node.attrs.get(key)
    lst = a.msg(1) if a is not None else None
    return lst.ints(3) if lst is not None else []


class LowerContext:
    """Values of the flattened graph: `Value`s for computed tensors, NumPy for constants."""

    def __init__(self, b: GraphBuilder, variables: dict[str, np.ndarray]) -> None:
        self.b = b
        self.variables = variables
        self.env: dict[tuple[str, int], Any] = {}
        self.packs: dict[
            tuple[str, int], list[np.ndarray | None]
        ] = {}  # Pack inputs, for static parts of shapes

    def lower(self, node: TfNode) -> None:
        consts = [self.const(r) for r in node.inputs]
        folder = _FOLD.get(node.op)
        if folder is not None and all(c is not None for c in consts) and node.inputs:
            try:
                results = [np.asarray(folder(node, *consts))]
            except (ValueError, TypeError, IndexError) as exc:
                raise ModelFormatError(
                    f"cannot evaluate constant {node.op} {node.name!r}: {exc}"
                ) from None
        else:
            try:
                results = OPS[node.op](self, node)
            except (KeyError, IndexError) as exc:
                raise ModelFormatError(
                    f"{node.op} node {node.name!r}: malformed inputs or attributes ({exc!r})"
                ) from exc
        for i, r in enumerate(results):
            self.env[(node.name, i)] = r

    def const(self, ref: tuple[str, int]) -> np.ndarray | None:
        v = self.env.get(ref)
        return v if isinstance(v, np.ndarray) else None

    def value(self, ref: tuple[str, int]) -> Value:
        v = self.env.get(ref)
        if v is None:
            raise ModelFormatError(f"tensor {ref[0]}:{ref[1]} is used before it is computed")
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise ModelFormatError(f"string tensor {ref[0]} cannot be used as a numeric input")
            v = Value(self.b.initializer(ref[0].replace("/", "_"), v), v.shape, v.dtype)
            self.env[ref] = v
        return v

    def static(self, node: TfNode, k: int, what: str) -> np.ndarray:
        c = self.const(node.inputs[k])
        if c is None:
            raise ModelFormatError(f"{node.op} {node.name!r}: {what} must be a constant")
        return c

    def input(self, node: TfNode, k: int) -> Value:
        return self.value(node.inputs[k])


def _v(
    b: GraphBuilder,
    name: str,
    like: Value | None = None,
    shape=None,
    dtype=None,
    first: bool = False,
) -> Value:
    if like is not None:
        return Value(
            name,
            like.shape if shape is None else shape,
            like.dtype if dtype is None else np.dtype(dtype),
            first,
        )
    return Value(name, shape, np.dtype(dtype or np.float32), first)


# -- constant folding ------------------------------------------------------------------------

_FOLD: dict[str, Callable[..., np.ndarray]] = {
    "AddV2": lambda n, a, b: a + b,
    "Add": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b,
    "RealDiv": lambda n, a, b: a / b,
    "Maximum": lambda n, a, b: np.maximum(a, b),
    "Minimum": lambda n, a, b: np.minimum(a, b),
    "Rsqrt": lambda n, a: (1.0 / np.sqrt(a)).astype(a.dtype),
    "Sqrt": lambda n, a: np.sqrt(a),
    "Neg": lambda n, a: -a,
    "Square": lambda n, a: a * a,
    "Cast": lambda n, a: a.astype(attr_type(n, "DstT")),
    "Reshape": lambda n, a, s: a.reshape([int(d) for d in s]),
    "Transpose": lambda n, a, p: np.transpose(a, [int(d) for d in p]),
    "ExpandDims": lambda n, a, ax: np.expand_dims(a, int(np.asarray(ax).reshape(-1)[0])),
    "Pack": lambda n, *xs: np.stack(xs, axis=attr_int(n, "axis")),
    "ConcatV2": lambda n, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])),
    "Prod": lambda n, a, ax: np.prod(
        a, axis=tuple(np.atleast_1d(ax).tolist()), keepdims=attr_bool(n, "keep_dims")
    ),
    "Fill": lambda n, s, v: np.full([int(d) for d in s], v),
    "Squeeze": lambda n, a: np.squeeze(a, axis=tuple(attr_ints(n, "squeeze_dims")) or None),
    "GatherV2": lambda n, a, i, ax: np.take(a, i, axis=int(ax)),
    "Tile": lambda n, a, m: np.tile(a, [int(d) for d in m]),
    "Range": lambda n, a, b, d: np.arange(a, b, d),
    "StridedSlice": lambda n, a, b, e, s: a[_slice_index(n, b, e, s)],
}


def _slice_index(node: TfNode, begin, end, strides) -> tuple:
    """A StridedSlice as a NumPy index tuple."""
    index: list[Any] = []
    bm, em = attr_int(node, "begin_mask"), attr_int(node, "end_mask")
    el, na, sh = (
        attr_int(node, "ellipsis_mask"),
        attr_int(node, "new_axis_mask"),
        attr_int(node, "shrink_axis_mask"),
    )
    for i in range(len(begin)):
        if (el >> i) & 1:
            index.append(Ellipsis)
        elif (na >> i) & 1:
            index.append(np.newaxis)
        elif (sh >> i) & 1:
            index.append(int(begin[i]))
        else:
            index.append(
                slice(
                    None if (bm >> i) & 1 else int(begin[i]),
                    None if (em >> i) & 1 else int(end[i]),
                    int(strides[i]),
                )
            )
    return tuple(index)


@op("Const")
def _const(ctx, node):
    tensor = node.attrs.get("value")
    if tensor is None or tensor.msg(8) is None:
        raise ModelFormatError(f"Const {node.name!r} without a value")
    return [tensor_value(tensor.msg(8))]


@op("VarHandleOp", "VariableV2", "Variable")
def _variable(ctx, node):
    name = node.name
    if name not in ctx.variables:
        raise ModelFormatError(f"variable {name!r} has no value in the checkpoint")
    return [ctx.variables[name]]


@op("ReadVariableOp")
def _read_variable(ctx, node):
    value = ctx.const(node.inputs[0])
    if value is None:
        raise ModelFormatError(
            f"ReadVariableOp {node.name!r} reads a resource that is not a saved variable"
        )
    return [value]


# -- convolution and pooling (NHWC only) --------------------------------------------------------


def _check_nhwc(node: TfNode) -> None:
    fmt = attr_str(node, "data_format", "NHWC")
    if fmt not in ("NHWC", "NWC", "NDHWC"):
        raise ModelFormatError(
            f"{node.op} {node.name!r}: data_format {fmt} is not supported (only channels-last)"
        )


def _padding_attrs(node: TfNode, x: Value, kernel, strides, dilations) -> tuple[dict, list]:
    padding = attr_str(node, "padding", "VALID")
    if padding == "EXPLICIT":
        pads = attr_ints(node, "explicit_paddings")
        spatial = [pads[2 * i : 2 * i + 2] for i in range(1, len(pads) // 2 - 1)]
        attrs = {
            "kernel_shape": list(kernel),
            "strides": list(strides),
            "pads": [p[0] for p in spatial] + [p[1] for p in spatial],
        }
        if any(d != 1 for d in dilations):
            attrs["dilations"] = list(dilations)
        outs = [
            None if sz is None else (sz + p[0] + p[1] - ((k - 1) * d + 1)) // s + 1
            for sz, p, k, s, d in zip(
                x.shape[1:-1], spatial, kernel, strides, dilations, strict=True
            )
        ]
        return attrs, outs
    return conv_attrs(list(x.shape[1:-1]), kernel, strides, dilations, padding.lower())


@op("Conv2D", "Conv3D")
def _conv(ctx, node):
    _check_nhwc(node)
    x = ctx.input(node, 0)
    n = x.rank - 2
    w = ctx.const(node.inputs[1])
    if w is None:
        raise ModelFormatError(f"{node.op} {node.name!r}: non-constant filters are not supported")
    strides = attr_ints(node, "strides")[1:-1] or [1] * n
    dil = attr_ints(node, "dilations")[1:-1] or [1] * n
    attrs, outs = _padding_attrs(node, x, list(w.shape[:n]), strides, dil)
    groups = (x.shape[-1] or w.shape[-2]) // w.shape[-2]
    if groups != 1:
        attrs["group"] = groups
    wname = ctx.b.initializer(
        "conv_w", np.ascontiguousarray(np.transpose(w, (n + 1, n, *range(n))))
    )
    y = ctx.b.node("Conv", [x.first(ctx.b), wname], attrs, name=node.name)
    return [Value(y, (x.shape[0], *outs, int(w.shape[-1])), x.dtype, True)]


@op("DepthwiseConv2dNative")
def _depthwise(ctx, node):
    _check_nhwc(node)
    x = ctx.input(node, 0)
    w = ctx.static(node, 1, "the depthwise filter")  # (kh, kw, in, mult)
    strides = attr_ints(node, "strides")[1:3] or [1, 1]
    dil = attr_ints(node, "dilations")[1:3] or [1, 1]
    attrs, outs = _padding_attrs(node, x, list(w.shape[:2]), strides, dil)
    attrs["group"] = int(w.shape[2])
    flat = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2] * w.shape[3])
    wname = ctx.b.initializer("dw_w", np.ascontiguousarray(np.transpose(flat, (3, 2, 0, 1))))
    y = ctx.b.node("Conv", [x.first(ctx.b), wname], attrs, name=node.name)
    return [Value(y, (x.shape[0], *outs, int(w.shape[2] * w.shape[3])), x.dtype, True)]


@op("Conv2DBackpropInput")
def _deconv(ctx, node):
    _check_nhwc(node)
    sizes = ctx.const(node.inputs[0])
    w = ctx.static(node, 1, "the filter")  # (kh, kw, out, in)
    x = ctx.input(node, 2)
    strides = attr_ints(node, "strides")[1:3] or [1, 1]
    dil = attr_ints(node, "dilations")[1:3] or [1, 1]
    if sizes is not None:
        out_hw = [int(d) for d in np.asarray(sizes).reshape(-1)[1:3]]
    else:
        parts = ctx.packs.get(node.inputs[0])
        if parts is None or len(parts) != 4 or parts[1] is None or parts[2] is None:
            raise ModelFormatError(
                f"{node.name!r}: Conv2DBackpropInput needs a static output height and width"
            )
        out_hw = [
            int(np.asarray(parts[1]).reshape(-1)[0]),
            int(np.asarray(parts[2]).reshape(-1)[0]),
        ]
    if attr_str(node, "padding") == "VALID":
        pads = {"pads": [0, 0, 0, 0]}
        extra = [
            o - ((i - 1) * s + (k - 1) * d + 1)
            for o, i, s, k, d in zip(out_hw, x.shape[1:3], strides, w.shape[:2], dil, strict=True)
        ]
        if any(extra):
            pads["output_padding"] = extra
    else:
        pads = conv_transpose_pads(x.shape[1:3], w.shape[:2], strides, out_hw, dil)
    attrs = {"kernel_shape": list(w.shape[:2]), "strides": strides} | pads
    if any(d != 1 for d in dil):
        attrs["dilations"] = dil
    wname = ctx.b.initializer("deconv_w", np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1))))
    y = ctx.b.node("ConvTranspose", [x.first(ctx.b), wname], attrs, name=node.name)
    return [_v(ctx.b, y, x, shape=(x.shape[0], *out_hw, w.shape[2]), first=True)]


@op("MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D")
def _pool(ctx, node):
    _check_nhwc(node)
    x = ctx.input(node, 0)
    n = x.rank - 2
    ksize = attr_ints(node, "ksize")[1:-1]
    strides = attr_ints(node, "strides")[1:-1]
    attrs, outs = conv_attrs(
        list(x.shape[1:-1]), ksize, strides, [1] * n, attr_str(node, "padding").lower()
    )
    y = ctx.b.node(
        "MaxPool" if node.op.startswith("Max") else "AveragePool",
        [x.first(ctx.b)],
        attrs,
        name=node.name,
    )
    return [_v(ctx.b, y, x, shape=(x.shape[0], *outs, x.shape[-1]), first=True)]


@op("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_bn(ctx, node):
    _check_nhwc(node)
    if (
        attr_bool(node, "is_training", True)
        and ctx.const(node.inputs[3]) is not None
        and ctx.const(node.inputs[3]).size == 0
    ):
        raise ModelFormatError(f"{node.name!r}: FusedBatchNorm in training mode is not supported")
    x = ctx.input(node, 0)
    params = [ctx.input(node, k).last(ctx.b) for k in range(1, 5)]
    y = ctx.b.node(
        "BatchNormalization",
        [x.first(ctx.b), *params],
        {"epsilon": attr_float(node, "epsilon", 1e-4)},
        name=node.name,
    )
    return [_v(ctx.b, y, x, first=True)]


# -- elementwise ---------------------------------------------------------------------------------


def _channel_const(c: np.ndarray, x: Value) -> np.ndarray | None:
    """`c` reshaped to broadcast against `x` stored channels-first, if it only varies along channels."""
    if c.size == 1:
        return c.reshape(())
    if c.ndim == 0 or c.ndim > x.rank or any(d != 1 for d in c.shape[:-1]):
        return None
    return c.reshape(c.shape[-1], *([1] * (x.rank - 2)))


def _elementwise(
    ctx: LowerContext, node: TfNode, onnx_op: str, attrs: dict | None = None
) -> Result:
    b = ctx.b
    values = [ctx.const(r) if ctx.const(r) is not None else ctx.value(r) for r in node.inputs]
    computed = [v for v in values if isinstance(v, Value)]
    first = bool(computed) and all(v.is_first and v.rank == computed[0].rank for v in computed)
    names = []
    if first:
        for v in values:
            if isinstance(v, Value):
                names.append(v.stored())
                continue
            c = _channel_const(v, computed[0])
            if c is None:
                first = False
                break
            names.append(const(b, "c", c, dtype=c.dtype))
    if not first:
        names = [
            v.last(b) if isinstance(v, Value) else const(b, "c", v, dtype=v.dtype) for v in values
        ]
    y = b.node(onnx_op, names, attrs, name=node.name)
    shape = max((v.shape for v in computed if v.shape is not None), key=len, default=None)
    dtype = computed[0].dtype if computed else np.float32
    return [Value(y, shape, dtype, first)]


_BINARY = {"AddV2": "Add", "Add": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div", "Div": "Div",
           "Maximum": "Max", "Minimum": "Min", "Pow": "Pow", "Greater": "Greater", "Less": "Less", "Equal": "Equal",
           "GreaterEqual": "GreaterOrEqual", "LessEqual": "LessOrEqual", "LogicalAnd": "And", "LogicalOr": "Or",
           "Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Elu": "Elu", "Selu": "Selu", "Softplus": "Softplus",
           "Softsign": "Softsign", "Exp": "Exp", "Log": "Log", "Neg": "Neg", "Sqrt": "Sqrt", "Abs": "Abs",
           "Floor": "Floor", "Ceil": "Ceil", "Reciprocal": "Reciprocal", "Inv": "Reciprocal", "Erf": "Erf",
           "Sin": "Sin", "Cos": "Cos", "Round": "Round", "Sign": "Sign", "LogicalNot": "Not", "Select": "Where",
           "SelectV2": "Where", "AddN": "Sum"}  # fmt: skip


@op(*_BINARY)
def _simple(ctx, node):
    return _elementwise(ctx, node, _BINARY[node.op])


@op("FloorMod")
def _floormod(ctx, node):
    return _elementwise(ctx, node, "Mod", {"fmod": 0})


@op("Rsqrt", "Square", "Relu6", "LeakyRelu", "Erfc", "SquaredDifference", "FloorDiv")
def _composite(ctx, node):
    b = ctx.b
    [y] = _elementwise(ctx, node, "Identity") if node.op not in ("SquaredDifference", "FloorDiv") else (
        _elementwise(ctx, node, "Sub" if node.op == "SquaredDifference" else "Div"))  # fmt: skip
    x = y.stored()
    if node.op == "Rsqrt":
        out = b.node("Reciprocal", [b.node("Sqrt", [x])])
    elif node.op in ("Square", "SquaredDifference"):
        out = b.node("Mul", [x, x])
    elif node.op == "Relu6":
        out = b.node("Clip", [x, const(b, "zero", np.float32(0)), const(b, "six", np.float32(6))])
    elif node.op == "LeakyRelu":
        out = b.node("LeakyRelu", [x], {"alpha": attr_float(node, "alpha", 0.2)})
    elif node.op == "Erfc":
        out = b.node("Sub", [const(b, "one", np.asarray(1, y.dtype)), b.node("Erf", [x])])
    else:  # FloorDiv
        out = b.node("Floor", [x]) if y.dtype.kind == "f" else x
    return [y.like(out)]


@op("Softmax", "LogSoftmax")
def _softmax(ctx, node):
    x = ctx.input(node, 0)
    axis = 1 if x.is_first else -1
    return [x.like(ctx.b.node(node.op, [x.stored()], {"axis": axis}, name=node.name))]


@op("Cast")
def _cast(ctx, node):
    x = ctx.input(node, 0)
    dst = attr_type(node, "DstT")
    return [x.like(ctx.b.node("Cast", [x.stored()], {"to": _ONNX_TYPES[dst.type]}), dtype=dst)]


# -- matrix products ---------------------------------------------------------------------------


@op("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _matmul(ctx, node):
    b = ctx.b
    flags = ("transpose_a", "transpose_b") if node.op == "MatMul" else ("adj_x", "adj_y")
    names, shapes = [], []
    for k in range(2):
        c = ctx.const(node.inputs[k])
        if c is not None:
            if attr_bool(node, flags[k]):
                c = np.swapaxes(c, -1, -2)
            names.append(b.initializer("matmul_w", np.ascontiguousarray(c)))
            shapes.append(c.shape)
            continue
        v = ctx.input(node, k)
        n = v.last(b)
        if attr_bool(node, flags[k]):
            perm = list(range(v.rank))
            perm[-1], perm[-2] = perm[-2], perm[-1]
            n = b.node("Transpose", [n], {"perm": perm})
        names.append(n)
        shapes.append(v.shape)
    y = b.node("MatMul", names, name=node.name)
    shape = None if shapes[0] is None or shapes[1] is None else (*shapes[0][:-1], shapes[1][-1])
    return [Value(y, shape, np.dtype(np.float32))]


@op("Einsum")
def _einsum(ctx, node):
    equation = attr_str(node, "equation")
    used = set(equation)
    free = [c for c in string.ascii_lowercase if c not in used]
    mapping = {}
    for c in equation:
        if c.isupper() and c not in mapping:
            if not free:
                raise ModelFormatError(f"Einsum {node.name!r}: too many subscripts")
            mapping[c] = free.pop(0)
    eq = "".join(mapping.get(c, c) for c in equation)
    names = [ctx.input(node, k).last(ctx.b) for k in range(len(node.inputs))]
    return [
        Value(
            ctx.b.node("Einsum", names, {"equation": eq}, name=node.name),
            None,
            np.dtype(np.float32),
        )
    ]


# -- reductions ------------------------------------------------------------------------------

_REDUCE = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin", "Prod": "ReduceProd",
           "Any": "ReduceMax", "All": "ReduceMin"}  # fmt: skip


@op(*_REDUCE)
def _reduce(ctx, node):
    b = ctx.b
    x = ctx.input(node, 0)
    keep = attr_bool(node, "keep_dims")
    axes = ctx.const(node.inputs[1])
    if axes is None:
        raise ModelFormatError(f"{node.op} {node.name!r}: reduction axes must be constant")
    rank = x.rank
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    first = x.is_first and rank >= 3
    src = x.stored() if first else x.last(b)
    stored = [to_first_perm(rank).index(a) for a in axes] if first else axes
    is_bool = x.dtype == np.bool_
    if is_bool:
        src = b.node("Cast", [src], {"to": 6})
    y = b.node(
        _REDUCE[node.op], [src, const(b, "axes", stored)], {"keepdims": int(keep)}, name=node.name
    )
    if is_bool:
        y = b.node("Cast", [y], {"to": 9})
    if keep:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return [Value(y, shape, x.dtype, first)]
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    if not first:
        return [Value(y, shape, x.dtype)]
    kept = [a for a in to_first_perm(rank) if a not in axes]  # logical dims in stored order
    if kept == sorted(kept):
        return [Value(y, shape, x.dtype)]
    if len(kept) >= 3 and kept == [0, rank - 1, *sorted(set(kept) - {0, rank - 1})]:
        return [Value(y, shape, x.dtype, True)]
    perm = [kept.index(a) for a in sorted(kept)]
    return [Value(b.node("Transpose", [y], {"perm": perm}), shape, x.dtype)]


@op("ArgMax", "ArgMin")
def _argmax(ctx, node):
    x = ctx.input(node, 0)
    axis = int(np.asarray(ctx.static(node, 1, "the axis")).reshape(-1)[0])
    y = ctx.b.node(node.op, [x.last(ctx.b)], {"axis": axis, "keepdims": 0}, name=node.name)
    out_t = attr_type(node, "output_type") if "output_type" in node.attrs else np.dtype(np.int64)
    if out_t != np.int64:
        y = ctx.b.node("Cast", [y], {"to": _ONNX_TYPES[out_t.type]})
    return [Value(y, None, out_t)]


# -- shapes -------------------------------------------------------------------------------------


def _int64(ctx: LowerContext, node: TfNode, k: int) -> str:
    c = ctx.const(node.inputs[k])
    if c is not None:
        return const(ctx.b, "shape", np.asarray(c, np.int64).reshape(-1))
    return ctx.b.node("Cast", [ctx.input(node, k).last(ctx.b)], {"to": 7})


def _shape_from(ctx: LowerContext, node: TfNode, k: int) -> tuple | None:
    """The static part of a shape operand: constants, Pack of constants and scalars, or just its length."""
    c = ctx.const(node.inputs[k])
    if c is not None:
        return tuple(None if d < 0 else int(d) for d in np.asarray(c).reshape(-1))
    parts = ctx.packs.get(node.inputs[k])
    if parts is not None:
        return tuple(None if p is None or p.size != 1 or int(p) < 0 else int(p) for p in parts)
    v = ctx.value(node.inputs[k])
    if v.shape is not None and len(v.shape) == 1 and v.shape[0] is not None:
        return (None,) * v.shape[0]
    return None


@op("Reshape")
def _reshape(ctx, node):
    x = ctx.input(node, 0)
    shape = _shape_from(ctx, node, 1)
    y = ctx.b.node("Reshape", [x.last(ctx.b), _int64(ctx, node, 1)], name=node.name)
    if shape is not None and x.shape is not None and shape.count(None) == 1 and None not in x.shape:
        known = int(np.prod([d for d in shape if d is not None]))
        shape = tuple(int(np.prod(x.shape)) // known if d is None else d for d in shape)
    return [Value(y, shape, x.dtype)]


@op("Squeeze")
def _squeeze(ctx, node):
    x = ctx.input(node, 0)
    dims = attr_ints(node, "squeeze_dims") or [i for i, d in enumerate(x.shape or ()) if d == 1]
    dims = [d % x.rank for d in dims]
    y = ctx.b.node("Squeeze", [x.last(ctx.b), const(ctx.b, "axes", dims)], name=node.name)
    return [Value(y, tuple(d for i, d in enumerate(x.shape) if i not in dims), x.dtype)]


@op("ExpandDims")
def _expand_dims(ctx, node):
    x = ctx.input(node, 0)
    axis = int(np.asarray(ctx.static(node, 1, "the axis")).reshape(-1)[0])
    if axis < 0:
        axis += x.rank + 1
    y = ctx.b.node("Unsqueeze", [x.last(ctx.b), const(ctx.b, "axes", [axis])], name=node.name)
    shape = list(x.shape)
    shape.insert(axis, 1)
    return [Value(y, tuple(shape), x.dtype)]


@op("Transpose")
def _transpose(ctx, node):
    x = ctx.input(node, 0)
    perm = [int(p) for p in ctx.static(node, 1, "the permutation")]
    y = ctx.b.node("Transpose", [x.last(ctx.b)], {"perm": perm}, name=node.name)
    return [Value(y, None if x.shape is None else tuple(x.shape[p] for p in perm), x.dtype)]


@op("ConcatV2", "Concat")
def _concat(ctx, node):
    b = ctx.b
    refs = node.inputs[:-1] if node.op == "ConcatV2" else node.inputs[1:]
    axis_ref = node.inputs[-1] if node.op == "ConcatV2" else node.inputs[0]
    axis = ctx.const(axis_ref)
    if axis is None:
        raise ModelFormatError(f"{node.name!r}: concatenation axis must be constant")
    values = [ctx.value(r) for r in refs]
    rank = values[0].rank
    axis = int(axis) % rank
    first = all(v.is_first for v in values) and rank >= 3 and axis == rank - 1
    names = [v.in_layout(b, first) for v in values]
    y = b.node("Concat", names, {"axis": 1 if first else axis}, name=node.name)
    shape = None
    if all(v.shape is not None for v in values):
        sizes = [v.shape[axis] for v in values]
        shape = tuple(
            (None if None in sizes else sum(sizes)) if i == axis else values[0].shape[i]
            for i in range(rank)
        )
    return [Value(y, shape, values[0].dtype, first)]


@op("Pack")
def _pack(ctx, node):
    b = ctx.b
    ctx.packs[(node.name, 0)] = [ctx.const(r) for r in node.inputs]
    values = [ctx.value(r) for r in node.inputs]
    rank = (values[0].rank or 0) + 1
    axis = attr_int(node, "axis") % rank
    parts = [b.node("Unsqueeze", [v.last(b), const(b, "axes", [axis])]) for v in values]
    y = b.node("Concat", parts, {"axis": axis}, name=node.name)
    shape = (
        None
        if values[0].shape is None
        else (*values[0].shape[:axis], len(values), *values[0].shape[axis:])
    )
    return [Value(y, shape, values[0].dtype)]


@op("Unpack")
def _unpack(ctx, node):
    b = ctx.b
    x = ctx.input(node, 0)
    axis = attr_int(node, "axis") % x.rank
    n = attr_int(node, "num")
    parts = b.node("Split", [x.last(b), const(b, "split", [1] * n)], {"axis": axis}, outputs=n)
    parts = [parts] if n == 1 else parts
    shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return [Value(b.node("Squeeze", [p, const(b, "axes", [axis])]), shape, x.dtype) for p in parts]


@op("Split", "SplitV")
def _split(ctx, node):
    b = ctx.b
    if node.op == "Split":
        axis_k, x_k = 0, 1
        n = attr_int(node, "num_split")
        sizes = None
    else:
        x_k, axis_k = 0, 2
        sizes = [int(s) for s in ctx.static(node, 1, "the split sizes")]
        n = len(sizes)
    x = ctx.input(node, x_k)
    axis = int(np.asarray(ctx.static(node, axis_k, "the axis")).reshape(-1)[0]) % x.rank
    total = x.shape[axis]
    if sizes is None:
        if total is None:
            raise ModelFormatError(f"{node.name!r}: Split along a dimension of unknown size")
        sizes = [total // n] * n
    if -1 in sizes:
        sizes[sizes.index(-1)] = total - (sum(sizes) + 1)
    parts = b.node(
        "Split", [x.last(b), const(b, "split", sizes)], {"axis": axis}, outputs=n, name=node.name
    )
    parts = [parts] if n == 1 else parts
    return [
        Value(p, tuple(s if i == axis else d for i, d in enumerate(x.shape)), x.dtype)
        for p, s in zip(parts, sizes, strict=True)
    ]


@op("Shape")
def _shape(ctx, node):
    x = ctx.input(node, 0)
    out_t = attr_type(node, "out_type") if "out_type" in node.attrs else np.dtype(np.int32)
    if x.shape is not None and None not in x.shape:
        return [np.asarray(x.shape, out_t)]
    y = ctx.b.node(
        "Cast",
        [ctx.b.node("Shape", [x.last(ctx.b)])],
        {"to": _ONNX_TYPES[out_t.type]},
        name=node.name,
    )
    return [Value(y, (x.rank,), out_t)]


@op("StridedSlice")
def _strided_slice(ctx, node):
    x = ctx.input(node, 0)
    begin, end, strides = (ctx.static(node, k, "StridedSlice bounds") for k in (1, 2, 3))
    y = strided_slice(
        ctx.b, x.last(ctx.b), x.rank, begin, end, strides,
        begin_mask=attr_int(node, "begin_mask"), end_mask=attr_int(node, "end_mask"),
        ellipsis_mask=attr_int(node, "ellipsis_mask"), new_axis_mask=attr_int(node, "new_axis_mask"),
        shrink_axis_mask=attr_int(node, "shrink_axis_mask"), name=node.name,
    )  # fmt: skip
    return [Value(y, _sliced_shape(x, begin, end, strides, node), x.dtype)]


def _sliced_shape(x: Value, begin, end, strides, node) -> tuple | None:
    """Static result shape of a StridedSlice, from NumPy slicing of dummy arrays (unknown dims: None)."""
    if x.shape is None:
        return None
    index = _slice_index(node, begin, end, strides)
    try:
        a = np.zeros([97 if d is None else d for d in x.shape], np.int8)[index].shape
        b = np.zeros([89 if d is None else d for d in x.shape], np.int8)[index].shape
    except IndexError:
        return None
    return tuple(da if da == db else None for da, db in zip(a, b, strict=True))


@op("Slice")
def _slice(ctx, node):
    x = ctx.input(node, 0)
    begin = np.asarray(ctx.static(node, 1, "Slice begin"), np.int64)
    size = np.asarray(ctx.static(node, 2, "Slice size"), np.int64)
    end = np.where(size < 0, np.iinfo(np.int64).max, begin + size)
    b = ctx.b
    y = b.node(
        "Slice",
        [
            x.last(b),
            const(b, "starts", begin),
            const(b, "ends", end),
            const(b, "axes", np.arange(len(begin))),
        ],
        name=node.name,
    )
    return [Value(y, tuple(None if s < 0 else int(s) for s in size), x.dtype)]


@op("Tile")
def _tile(ctx, node):
    x = ctx.input(node, 0)
    return [
        Value(
            ctx.b.node("Tile", [x.last(ctx.b), _int64(ctx, node, 1)], name=node.name),
            None if x.shape is None else (None,) * x.rank,
            x.dtype,
        )
    ]


@op("Fill")
def _fill(ctx, node):
    value = ctx.input(node, 1)
    shape = _shape_from(ctx, node, 0)
    y = ctx.b.node("Expand", [value.last(ctx.b), _int64(ctx, node, 0)], name=node.name)
    return [Value(y, shape, value.dtype)]


@op("BroadcastTo")
def _broadcast_to(ctx, node):
    x = ctx.input(node, 0)
    return [
        Value(
            ctx.b.node("Expand", [x.last(ctx.b), _int64(ctx, node, 1)], name=node.name),
            _shape_from(ctx, node, 1),
            x.dtype,
        )
    ]


@op("ZerosLike", "OnesLike")
def _zeros_like(ctx, node):
    x = ctx.input(node, 0)
    zero = ctx.b.node("Sub", [x.last(ctx.b), x.last(ctx.b)])
    if node.op == "OnesLike":
        zero = ctx.b.node("Add", [zero, const(ctx.b, "one", np.asarray(1, x.dtype))])
    return [x.like(zero) if not x.is_first else Value(zero, x.shape, x.dtype)]


@op("GatherV2", "Gather")
def _gather(ctx, node):
    x = ctx.input(node, 0)
    idx = ctx.input(node, 1)
    axis = (
        0
        if node.op == "Gather"
        else int(np.asarray(ctx.static(node, 2, "the axis")).reshape(-1)[0])
    )
    if attr_int(node, "batch_dims"):
        raise ModelFormatError(f"{node.name!r}: GatherV2 with batch_dims is not supported")
    y = ctx.b.node("Gather", [x.last(ctx.b), idx.last(ctx.b)], {"axis": axis}, name=node.name)
    shape = None
    if x.shape is not None and idx.shape is not None:
        axis %= x.rank
        shape = (*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])
    return [Value(y, shape, x.dtype)]


@op("Pad", "PadV2", "MirrorPad")
def _pad(ctx, node):
    b = ctx.b
    x = ctx.input(node, 0)
    pads = np.asarray(ctx.static(node, 1, "the paddings"), np.int64)
    first = x.is_first and x.rank >= 3
    stored = pads[to_first_perm(x.rank)] if first else pads
    ins = [x.in_layout(b, first), const(b, "pads", np.concatenate([stored[:, 0], stored[:, 1]]))]
    attrs = {}
    if node.op == "PadV2":
        ins.append(ctx.input(node, 2).last(b))
    if node.op == "MirrorPad":
        if attr_str(node, "mode") != "REFLECT":
            raise ModelFormatError(
                f"{node.name!r}: MirrorPad mode {attr_str(node, 'mode')} is not supported"
            )
        attrs["mode"] = "reflect"
    shape = (
        None
        if x.shape is None
        else tuple(
            None if d is None else d + int(p[0] + p[1]) for d, p in zip(x.shape, pads, strict=True)
        )
    )
    return [Value(b.node("Pad", ins, attrs, name=node.name), shape, x.dtype, first)]


@op("Range")
def _range(ctx, node):
    names = [ctx.input(node, k).last(ctx.b) for k in range(3)]
    return [Value(ctx.b.node("Range", names, name=node.name), (None,), ctx.input(node, 0).dtype)]


@op("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(ctx, node):
    b = ctx.b
    x = ctx.input(node, 0)
    size = ctx.static(node, 1, "the output size").astype(np.int64)
    bilinear = node.op == "ResizeBilinear"
    attrs: dict = {"mode": "linear" if bilinear else "nearest"}
    if attr_bool(node, "align_corners"):
        attrs["coordinate_transformation_mode"] = "align_corners"
        if not bilinear:
            attrs["nearest_mode"] = "round_prefer_ceil"
    elif attr_bool(node, "half_pixel_centers"):
        attrs["coordinate_transformation_mode"] = "half_pixel"
        if not bilinear:
            attrs["nearest_mode"] = "round_prefer_ceil"
    else:
        attrs["coordinate_transformation_mode"] = "asymmetric"
        if not bilinear:
            attrs["nearest_mode"] = "floor"
    lead = b.node(
        "Slice",
        [b.node("Shape", [x.first(b)]), const(b, "s", [0]), const(b, "e", [2]), const(b, "a", [0])],
    )
    sizes = b.node("Concat", [lead, const(b, "hw", size)], {"axis": 0})
    y = b.node("Resize", [x.first(b), "", "", sizes], attrs, name=node.name)
    return [Value(y, (x.shape[0], int(size[0]), int(size[1]), x.shape[-1]), x.dtype, True)]
