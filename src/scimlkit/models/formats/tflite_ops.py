"""Lowerings of TFLite builtin operators to ONNX-semantics nodes.

Each lowering reads float views of its inputs (`ctx.fv`, dequantized when quantized),
emits float32 nodes and stores results with `ctx.set` (which quantizes when the output
tensor is quantized). Option field indices follow TFLite's schema.fbs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelFormatError
from ..graph import GraphBuilder
from ._nhwc import Value, common_layout, const, conv_attrs
from ._tf_common import conv_transpose_pads, fused_activation, strided_slice

if TYPE_CHECKING:
    from .tflite import LowerContext, Operator

OPCODE_NAMES = dict(
    enumerate(
        [
            "ADD",
            "AVERAGE_POOL_2D",
            "CONCATENATION",
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "DEPTH_TO_SPACE",
            "DEQUANTIZE",
            "EMBEDDING_LOOKUP",
            "FLOOR",
            "FULLY_CONNECTED",
            "HASHTABLE_LOOKUP",
            "L2_NORMALIZATION",
            "L2_POOL_2D",
            "LOCAL_RESPONSE_NORMALIZATION",
            "LOGISTIC",
            "LSH_PROJECTION",
            "LSTM",
            "MAX_POOL_2D",
            "MUL",
            "RELU",
            "RELU_N1_TO_1",
            "RELU6",
            "RESHAPE",
            "RESIZE_BILINEAR",
            "RNN",
            "SOFTMAX",
            "SPACE_TO_DEPTH",
            "SVDF",
            "TANH",
            "CONCAT_EMBEDDINGS",
            "SKIP_GRAM",
            "CALL",
            "CUSTOM",
            "EMBEDDING_LOOKUP_SPARSE",
            "PAD",
            "UNIDIRECTIONAL_SEQUENCE_RNN",
            "GATHER",
            "BATCH_TO_SPACE_ND",
            "SPACE_TO_BATCH_ND",
            "TRANSPOSE",
            "MEAN",
            "SUB",
            "DIV",
            "SQUEEZE",
            "UNIDIRECTIONAL_SEQUENCE_LSTM",
            "STRIDED_SLICE",
            "BIDIRECTIONAL_SEQUENCE_RNN",
            "EXP",
            "TOPK_V2",
            "SPLIT",
            "LOG_SOFTMAX",
            "DELEGATE",
            "BIDIRECTIONAL_SEQUENCE_LSTM",
            "CAST",
            "PRELU",
            "MAXIMUM",
            "ARG_MAX",
            "MINIMUM",
            "LESS",
            "NEG",
            "PADV2",
            "GREATER",
            "GREATER_EQUAL",
            "LESS_EQUAL",
            "SELECT",
            "SLICE",
            "SIN",
            "TRANSPOSE_CONV",
            "SPARSE_TO_DENSE",
            "TILE",
            "EXPAND_DIMS",
            "EQUAL",
            "NOT_EQUAL",
            "LOG",
            "SUM",
            "SQRT",
            "RSQRT",
            "SHAPE",
            "POW",
            "ARG_MIN",
            "FAKE_QUANT",
            "REDUCE_PROD",
            "REDUCE_MAX",
            "PACK",
            "LOGICAL_OR",
            "ONE_HOT",
            "LOGICAL_AND",
            "LOGICAL_NOT",
            "UNPACK",
            "REDUCE_MIN",
            "FLOOR_DIV",
            "REDUCE_ANY",
            "SQUARE",
            "ZEROS_LIKE",
            "FILL",
            "FLOOR_MOD",
            "RANGE",
            "RESIZE_NEAREST_NEIGHBOR",
            "LEAKY_RELU",
            "SQUARED_DIFFERENCE",
            "MIRROR_PAD",
            "ABS",
            "SPLIT_V",
            "UNIQUE",
            "CEIL",
            "REVERSE_V2",
            "ADD_N",
            "GATHER_ND",
            "COS",
            "WHERE",
            "RANK",
            "ELU",
            "REVERSE_SEQUENCE",
            "MATRIX_DIAG",
            "QUANTIZE",
            "MATRIX_SET_DIAG",
            "ROUND",
            "HARD_SWISH",
            "IF",
            "WHILE",
            "NON_MAX_SUPPRESSION_V4",
            "NON_MAX_SUPPRESSION_V5",
            "SCATTER_ND",
            "SELECT_V2",
            "DENSIFY",
            "SEGMENT_SUM",
            "BATCH_MATMUL",
            "PLACEHOLDER_FOR_GREATER_OP_CODES",
            "CUMSUM",
            "CALL_ONCE",
            "BROADCAST_TO",
            "RFFT2D",
            "CONV_3D",
            "IMAG",
            "REAL",
            "COMPLEX_ABS",
            "HASHTABLE",
            "HASHTABLE_FIND",
            "HASHTABLE_IMPORT",
            "HASHTABLE_SIZE",
            "REDUCE_ALL",
            "CONV_3D_TRANSPOSE",
            "VAR_HANDLE",
            "READ_VARIABLE",
            "ASSIGN_VARIABLE",
            "BROADCAST_ARGS",
            "RANDOM_STANDARD_NORMAL",
            "BUCKETIZE",
            "RANDOM_UNIFORM",
            "MULTINOMIAL",
            "GELU",
            "DYNAMIC_UPDATE_SLICE",
            "RELU_0_TO_1",
            "UNSORTED_SEGMENT_PROD",
            "UNSORTED_SEGMENT_MAX",
            "UNSORTED_SEGMENT_SUM",
            "ATAN2",
            "UNSORTED_SEGMENT_MIN",
            "SIGN",
        ]
    )
)
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_ONNX_TYPES = {
    np.float32: 1,
    np.uint8: 2,
    np.int8: 3,
    np.int16: 5,
    np.int32: 6,
    np.int64: 7,
    np.bool_: 9,
    np.float16: 10,
}

Lowering = Callable[["LowerContext", "Operator"], None]
OPS: dict[str, Lowering] = {}


def op(*names: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for n in names:
            OPS[n] = fn
        return fn

    return deco


def _opt(o: Operator, index: int, fmt: str, default=0):
    return default if o.options is None else o.options.scalar(index, fmt, default)


def _act(ctx: LowerContext, x: str, o: Operator, index: int) -> str:
    kind = _ACTIVATIONS.get(_opt(o, index, "b", 0), "?")
    return fused_activation(ctx.b, x, kind)


def _padding(o: Operator, index: int = 0) -> str:
    return "same" if _opt(o, index, "b", 0) == 0 else "valid"


def _out(ctx: LowerContext, o: Operator, name: str, first: bool = False, k: int = 0) -> None:
    i = o.outputs[k]
    ctx.set(i, Value(name, ctx.shape(i), np.dtype(np.float32), first))


def _static(ctx: LowerContext, i: int, what: str) -> np.ndarray:
    data = ctx.const(i)
    if data is None:
        raise ModelFormatError(f"{what} of tensor {ctx.tensors[i].name!r} must be a constant")
    return data


def _int64_input(ctx: LowerContext, i: int) -> str:
    """A shape-like input as int64 (constant when possible)."""
    data = ctx.const(i)
    if data is not None:
        return const(ctx.b, "shape", data.astype(np.int64))
    return ctx.b.node("Cast", [ctx.raw(i).last(ctx.b)], {"to": 7})


# -- convolution and pooling ------------------------------------------------------------


@op("CONV_2D")
def _conv2d(ctx, o):
    x = ctx.fv(o.inputs[0])
    kernel = ctx.weights(o.inputs[1])  # (out, kh, kw, in/groups)
    attrs, _ = conv_attrs(
        x.shape[1:3],
        kernel.shape[1:3],
        [_opt(o, 2, "i", 1), _opt(o, 1, "i", 1)],
        [_opt(o, 5, "i", 1), _opt(o, 4, "i", 1)],
        _padding(o),
    )
    groups = (x.shape[3] or kernel.shape[3]) // kernel.shape[3]
    if groups != 1:
        attrs["group"] = groups
    ins = [x.first(ctx.b), ctx.b.initializer("conv_w", np.transpose(kernel, (0, 3, 1, 2)))]
    if len(o.inputs) > 2 and o.inputs[2] >= 0:
        ins.append(ctx.fv(o.inputs[2]).stored())
    y = ctx.b.node("Conv", ins, attrs, name=ctx.tensors[o.outputs[0]].name)
    _out(ctx, o, _act(ctx, y, o, 3), first=True)


@op("DEPTHWISE_CONV_2D")
def _depthwise(ctx, o):
    x = ctx.fv(o.inputs[0])
    kernel = ctx.weights(o.inputs[1])  # (1, kh, kw, in*mult)
    attrs, _ = conv_attrs(
        x.shape[1:3],
        kernel.shape[1:3],
        [_opt(o, 2, "i", 1), _opt(o, 1, "i", 1)],
        [_opt(o, 6, "i", 1), _opt(o, 5, "i", 1)],
        _padding(o),
    )
    channels = x.shape[3]
    if channels is None:
        raise ModelFormatError("DEPTHWISE_CONV_2D input with unknown channel count")
    attrs["group"] = channels
    ins = [x.first(ctx.b), ctx.b.initializer("dw_w", np.transpose(kernel, (3, 0, 1, 2)))]
    if len(o.inputs) > 2 and o.inputs[2] >= 0:
        ins.append(ctx.fv(o.inputs[2]).stored())
    y = ctx.b.node("Conv", ins, attrs, name=ctx.tensors[o.outputs[0]].name)
    _out(ctx, o, _act(ctx, y, o, 4), first=True)


@op("TRANSPOSE_CONV")
def _transpose_conv(ctx, o):
    out_shape = ctx.const(o.inputs[0])
    if out_shape is None:
        out_shape = ctx.shape(o.outputs[0])
    if any(d is None for d in out_shape[1:3]):
        raise ModelFormatError("TRANSPOSE_CONV with an unknown output size")
    kernel = ctx.weights(o.inputs[1])  # (out, kh, kw, in)
    x = ctx.fv(o.inputs[2])
    strides = [_opt(o, 2, "i", 1), _opt(o, 1, "i", 1)]
    attrs = {"kernel_shape": list(kernel.shape[1:3]), "strides": strides}
    attrs |= conv_transpose_pads(
        x.shape[1:3], kernel.shape[1:3], strides, [int(d) for d in out_shape[1:3]]
    )
    ins = [x.first(ctx.b), ctx.b.initializer("deconv_w", np.transpose(kernel, (3, 0, 1, 2)))]
    if len(o.inputs) > 3 and o.inputs[3] >= 0:
        ins.append(ctx.fv(o.inputs[3]).stored())
    y = ctx.b.node("ConvTranspose", ins, attrs, name=ctx.tensors[o.outputs[0]].name)
    _out(ctx, o, _act(ctx, y, o, 3), first=True)


@op("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool(ctx, o):
    x = ctx.fv(o.inputs[0])
    attrs, _ = conv_attrs(
        x.shape[1:3],
        [_opt(o, 4, "i", 1), _opt(o, 3, "i", 1)],
        [_opt(o, 2, "i", 1), _opt(o, 1, "i", 1)],
        [1, 1],
        _padding(o),
    )
    y = ctx.b.node("MaxPool" if o.op == "MAX_POOL_2D" else "AveragePool", [x.first(ctx.b)], attrs)
    _out(ctx, o, _act(ctx, y, o, 5), first=True)


@op("FULLY_CONNECTED")
def _fully_connected(ctx, o):
    x = ctx.fv(o.inputs[0])
    wt = ctx.tensors[o.inputs[1]]
    b = ctx.b
    if wt.data is not None:
        w = b.initializer("fc_w", np.ascontiguousarray(wt.dequantized().T))
    else:
        w = b.node("Transpose", [ctx.fv(o.inputs[1]).last(b)], {"perm": [1, 0]})
    xin = x.last(b)
    keep = bool(_opt(o, 2, "?", False))
    in_dim = wt.shape[1]
    if not keep and (x.rank != 2):
        xin = b.node("Reshape", [xin, const(b, "shape", [-1, in_dim])])
    y = b.node("MatMul", [xin, w])
    if len(o.inputs) > 2 and o.inputs[2] >= 0:
        y = b.node("Add", [y, ctx.fv(o.inputs[2]).last(b)])
    _out(ctx, o, _act(ctx, y, o, 0))


@op("BATCH_MATMUL")
def _batch_matmul(ctx, o):
    b = ctx.b
    names = []
    for k, i in enumerate(o.inputs[:2]):
        v = ctx.fv(i)
        n = v.last(b)
        if _opt(o, k, "?", False):
            perm = list(range(v.rank))
            perm[-1], perm[-2] = perm[-2], perm[-1]
            n = b.node("Transpose", [n], {"perm": perm})
        names.append(n)
    _out(ctx, o, b.node("MatMul", names))


# -- elementwise ------------------------------------------------------------------------


def _binary_layout(ctx, o) -> tuple[list[str], bool]:
    values = [ctx.fv(i) for i in o.inputs]
    computed = [v for i, v in zip(o.inputs, values, strict=True) if ctx.const(i) is None]
    scalars_only = all(ctx.const(i) is None or ctx.const(i).size == 1 for i in o.inputs)
    first = bool(computed) and scalars_only and common_layout(computed)
    names = []
    for i, v in zip(o.inputs, values, strict=True):
        if ctx.const(i) is not None and ctx.const(i).size == 1 and first:
            names.append(
                ctx.b.node("Reshape", [v.stored(), const(ctx.b, "scalar", np.zeros(0, np.int64))])
            )
        else:
            names.append(v.in_layout(ctx.b, first))
    return names, first


_BINARY = {"ADD": ("Add", 0), "SUB": ("Sub", 0), "MUL": ("Mul", 0), "DIV": ("Div", 0), "MAXIMUM": ("Max", None),
           "MINIMUM": ("Min", None), "POW": ("Pow", None), "LESS": ("Less", None), "GREATER": ("Greater", None),
           "LESS_EQUAL": ("LessOrEqual", None), "GREATER_EQUAL": ("GreaterOrEqual", None), "EQUAL": ("Equal", None),
           "LOGICAL_AND": ("And", None), "LOGICAL_OR": ("Or", None), "FLOOR_MOD": ("Mod", None)}  # fmt: skip


@op(*_BINARY)
def _binary(ctx, o):
    onnx_op, act_index = _BINARY[o.op]
    names, first = _binary_layout(ctx, o)
    attrs = {"fmod": 0} if onnx_op == "Mod" else None
    y = ctx.b.node(onnx_op, names, attrs)
    if act_index is not None:
        y = _act(ctx, y, o, act_index)
    _out(ctx, o, y, first)


@op("SQUARED_DIFFERENCE")
def _squared_difference(ctx, o):
    names, first = _binary_layout(ctx, o)
    d = ctx.b.node("Sub", names)
    _out(ctx, o, ctx.b.node("Mul", [d, d]), first)


@op("FLOOR_DIV")
def _floor_div(ctx, o):
    names, first = _binary_layout(ctx, o)
    out_t = ctx.tensors[o.outputs[0]]
    if out_t.dtype.kind == "f":
        _out(ctx, o, ctx.b.node("Floor", [ctx.b.node("Div", names)]), first)
    else:
        f = [ctx.b.node("Cast", [n], {"to": 1}) for n in names]
        y = ctx.b.node(
            "Cast",
            [ctx.b.node("Floor", [ctx.b.node("Div", f)])],
            {"to": _ONNX_TYPES[out_t.dtype.type]},
        )
        ctx.set(o.outputs[0], Value(y, out_t.shape, out_t.dtype, first))


@op("ADD_N")
def _add_n(ctx, o):
    names, first = _binary_layout(ctx, o)
    _out(ctx, o, ctx.b.node("Sum", names), first)


_UNARY = {"RELU": "Relu", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "EXP": "Exp", "NEG": "Neg", "SQRT": "Sqrt",
          "ABS": "Abs", "LOG": "Log", "FLOOR": "Floor", "CEIL": "Ceil", "SIN": "Sin", "COS": "Cos",
          "HARD_SWISH": "HardSwish", "ELU": "Elu", "ROUND": "Round", "SIGN": "Sign", "LOGICAL_NOT": "Not"}  # fmt: skip


@op(*_UNARY)
def _unary(ctx, o):
    x = ctx.fv(o.inputs[0])
    _out(ctx, o, ctx.b.node(_UNARY[o.op], [x.stored()]), x.is_first)


@op("RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")
def _clip(ctx, o):
    x = ctx.fv(o.inputs[0])
    lo, hi = {"RELU6": (0, 6), "RELU_N1_TO_1": (-1, 1), "RELU_0_TO_1": (0, 1)}[o.op]
    y = ctx.b.node(
        "Clip", [x.stored(), const(ctx.b, "lo", np.float32(lo)), const(ctx.b, "hi", np.float32(hi))]
    )
    _out(ctx, o, y, x.is_first)


@op("RSQRT")
def _rsqrt(ctx, o):
    x = ctx.fv(o.inputs[0])
    _out(ctx, o, ctx.b.node("Reciprocal", [ctx.b.node("Sqrt", [x.stored()])]), x.is_first)


@op("SQUARE")
def _square(ctx, o):
    x = ctx.fv(o.inputs[0])
    _out(ctx, o, ctx.b.node("Mul", [x.stored(), x.stored()]), x.is_first)


@op("LEAKY_RELU")
def _leaky(ctx, o):
    x = ctx.fv(o.inputs[0])
    _out(
        ctx,
        o,
        ctx.b.node("LeakyRelu", [x.stored()], {"alpha": float(_opt(o, 0, "f", 0.2))}),
        x.is_first,
    )


@op("GELU")
def _gelu(ctx, o):
    x = ctx.fv(o.inputs[0])
    approx = "tanh" if _opt(o, 0, "?", False) else "none"
    _out(ctx, o, ctx.b.node("Gelu", [x.stored()], {"approximate": approx}), x.is_first)


@op("PRELU")
def _prelu(ctx, o):
    x = ctx.fv(o.inputs[0])
    alpha_t = ctx.tensors[o.inputs[1]]
    if x.is_first and alpha_t.data is not None and x.rank >= 3:
        alpha = alpha_t.dequantized()
        alpha = alpha.reshape(
            (1,) * (x.rank - 1 - alpha.ndim) + alpha.shape
        )  # rank-1 dims, no batch
        slope = ctx.b.initializer("prelu_slope", np.ascontiguousarray(np.moveaxis(alpha, -1, 0)))
        _out(ctx, o, ctx.b.node("PRelu", [x.stored(), slope]), first=True)
        return
    alpha = ctx.fv(o.inputs[1])
    _out(ctx, o, ctx.b.node("PRelu", [x.last(ctx.b), alpha.last(ctx.b)]))


@op("DEQUANTIZE", "QUANTIZE")
def _requantize(ctx, o):
    src, dst = ctx.tensors[o.inputs[0]], ctx.tensors[o.outputs[0]]
    if src.data is not None and o.op == "DEQUANTIZE":  # float16/int8 weights: fold at load time
        dst.data = src.dequantized()
        return
    x = ctx.fv(o.inputs[0])
    name = x.stored()
    if x.dtype != np.float32:
        name = ctx.b.node("Cast", [name], {"to": 1})
    _out(ctx, o, ctx.b.node("Identity", [name]), x.is_first)


@op("CAST")
def _cast(ctx, o):
    x = ctx.raw(o.inputs[0])
    t = ctx.tensors[o.outputs[0]]
    ctx.set(
        o.outputs[0],
        Value(
            ctx.b.node("Cast", [x.stored()], {"to": _ONNX_TYPES[t.dtype.type]}),
            t.shape,
            t.dtype,
            x.is_first,
        ),
    )


@op("SELECT", "SELECT_V2")
def _select(ctx, o):
    b = ctx.b
    names = [ctx.fv(i).last(b) for i in o.inputs]
    _out(ctx, o, b.node("Where", names))


# -- softmax and normalisation ------------------------------------------------------------


@op("SOFTMAX", "LOG_SOFTMAX")
def _softmax(ctx, o):
    x = ctx.fv(o.inputs[0])
    name = x.stored()
    beta = _opt(o, 0, "f", 1.0) if o.op == "SOFTMAX" else 1.0
    if beta != 1.0:
        name = ctx.b.node("Mul", [name, const(ctx.b, "beta", np.float32(beta))])
    axis = 1 if x.is_first else -1
    _out(
        ctx,
        o,
        ctx.b.node("Softmax" if o.op == "SOFTMAX" else "LogSoftmax", [name], {"axis": axis}),
        x.is_first,
    )


@op("L2_NORMALIZATION")
def _l2norm(ctx, o):
    x = ctx.fv(o.inputs[0]).last(ctx.b)
    b = ctx.b
    ss = b.node("ReduceSumSquare", [x, const(b, "axes", [-1])], {"keepdims": 1})
    norm = b.node("Sqrt", [b.node("Max", [ss, const(b, "eps", np.float32(1e-12))])])
    _out(ctx, o, b.node("Div", [x, norm]))


# -- reductions --------------------------------------------------------------------------

_REDUCE = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax", "REDUCE_MIN": "ReduceMin",
           "REDUCE_PROD": "ReduceProd", "REDUCE_ANY": "ReduceMax", "REDUCE_ALL": "ReduceMin"}  # fmt: skip


@op(*_REDUCE)
def _reduce(ctx, o):
    x = ctx.fv(o.inputs[0])
    axes = [int(a) % x.rank for a in np.atleast_1d(_static(ctx, o.inputs[1], "reduction axes"))]
    keep = bool(_opt(o, 0, "?", False))
    b = ctx.b
    spatial = list(range(1, x.rank - 1))
    first = x.is_first and x.rank >= 3 and (sorted(axes) == spatial)
    stored_axes = list(range(2, x.rank)) if first else axes
    name = x.stored() if first else x.last(b)
    is_bool = x.dtype == np.bool_
    if is_bool:
        name = b.node("Cast", [name], {"to": 6})
    y = b.node(_REDUCE[o.op], [name, const(b, "axes", stored_axes)], {"keepdims": int(keep)})
    if is_bool:
        y = b.node("Cast", [y], {"to": 9})
        t = ctx.tensors[o.outputs[0]]
        ctx.set(o.outputs[0], Value(y, t.shape, t.dtype, first and keep))
        return
    _out(ctx, o, y, first and keep)


@op("ARG_MAX", "ARG_MIN")
def _argmax(ctx, o):
    x = ctx.fv(o.inputs[0])
    axis = int(np.atleast_1d(_static(ctx, o.inputs[1], "axis"))[0])
    y = ctx.b.node(
        "ArgMax" if o.op == "ARG_MAX" else "ArgMin", [x.last(ctx.b)], {"axis": axis, "keepdims": 0}
    )
    t = ctx.tensors[o.outputs[0]]
    if t.dtype != np.int64:
        y = ctx.b.node("Cast", [y], {"to": _ONNX_TYPES[t.dtype.type]})
    ctx.set(o.outputs[0], Value(y, t.shape, t.dtype))


# -- shape manipulation --------------------------------------------------------------------


def _passthrough_out(ctx, o, y: str, k: int = 0, first: bool = False) -> None:
    """Store a result whose dtype is the input's (shape ops on any dtype)."""
    i = o.outputs[k]
    t = ctx.tensors[i]
    dtype = np.dtype(np.float32) if (t.quantized or t.dtype == np.float16) else t.dtype
    ctx.set(i, Value(y, t.shape, dtype, first))


@op("RESHAPE")
def _reshape(ctx, o):
    x = ctx.fv(o.inputs[0])
    b = ctx.b
    if len(o.inputs) > 1 and o.inputs[1] >= 0:
        shape = _int64_input(ctx, o.inputs[1])
    elif o.options is not None and o.options.has(0):
        shape = const(b, "shape", o.options.vector(0, "<i4").astype(np.int64))
    else:
        shape = const(b, "shape", [-1 if d is None else d for d in ctx.shape(o.outputs[0])])
    _passthrough_out(ctx, o, b.node("Reshape", [x.last(b), shape]))


@op("SQUEEZE")
def _squeeze(ctx, o):
    x = ctx.fv(o.inputs[0])
    dims = o.options.vector(0, "<i4") if o.options is not None else np.zeros(0, np.int32)
    if not dims.size:
        dims = np.asarray([i for i, d in enumerate(x.shape) if d == 1])
    _passthrough_out(
        ctx, o, ctx.b.node("Squeeze", [x.last(ctx.b), const(ctx.b, "axes", dims.astype(np.int64))])
    )


@op("EXPAND_DIMS")
def _expand_dims(ctx, o):
    x = ctx.fv(o.inputs[0])
    axis = int(np.atleast_1d(_static(ctx, o.inputs[1], "EXPAND_DIMS axis"))[0])
    if axis < 0:
        axis += x.rank + 1
    _passthrough_out(ctx, o, ctx.b.node("Unsqueeze", [x.last(ctx.b), const(ctx.b, "axes", [axis])]))


@op("TRANSPOSE")
def _transpose(ctx, o):
    x = ctx.fv(o.inputs[0])
    perm = [int(p) for p in _static(ctx, o.inputs[1], "TRANSPOSE permutation")]
    _passthrough_out(ctx, o, ctx.b.node("Transpose", [x.last(ctx.b)], {"perm": perm}))


@op("CONCATENATION")
def _concat(ctx, o):
    values = [ctx.fv(i) for i in o.inputs]
    rank = values[0].rank
    axis = _opt(o, 0, "i", 0) % rank
    first = common_layout(values) and axis == rank - 1
    names = [v.in_layout(ctx.b, first) for v in values]
    y = ctx.b.node("Concat", names, {"axis": 1 if first else axis})
    _passthrough_out(ctx, o, _act(ctx, y, o, 1), first=first)


@op("PACK")
def _pack(ctx, o):
    b = ctx.b
    axis = _opt(o, 1, "i", 0)
    rank = len(ctx.shape(o.outputs[0]))
    axis %= rank
    parts = [b.node("Unsqueeze", [ctx.fv(i).last(b), const(b, "axes", [axis])]) for i in o.inputs]
    _passthrough_out(ctx, o, b.node("Concat", parts, {"axis": axis}))


@op("UNPACK")
def _unpack(ctx, o):
    b = ctx.b
    x = ctx.fv(o.inputs[0])
    axis = _opt(o, 1, "i", 0) % x.rank
    n = len(o.outputs)
    parts = b.node("Split", [x.last(b), const(b, "split", [1] * n)], {"axis": axis}, outputs=n)
    parts = [parts] if n == 1 else parts
    for k, p in enumerate(parts):
        _passthrough_out(ctx, o, b.node("Squeeze", [p, const(b, "axes", [axis])]), k)


@op("SPLIT", "SPLIT_V")
def _split(ctx, o):
    b = ctx.b
    if o.op == "SPLIT":
        axis_i, x_i, sizes = o.inputs[0], o.inputs[1], None
    else:
        x_i, sizes, axis_i = o.inputs[0], _static(ctx, o.inputs[1], "SPLIT_V sizes"), o.inputs[2]
    x = ctx.fv(x_i)
    axis = int(np.atleast_1d(_static(ctx, axis_i, "split axis"))[0]) % x.rank
    n = len(o.outputs)
    if sizes is None:
        total = x.shape[axis]
        if total is None:
            raise ModelFormatError("SPLIT along a dimension of unknown size")
        sizes = [total // n] * n
    sizes = [int(s) for s in sizes]
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    parts = b.node("Split", [x.last(b), const(b, "split", sizes)], {"axis": axis}, outputs=n)
    parts = [parts] if n == 1 else parts
    for k, p in enumerate(parts):
        _passthrough_out(ctx, o, p, k)


@op("SHAPE")
def _shape(ctx, o):
    x = ctx.raw(o.inputs[0])
    t = ctx.tensors[o.outputs[0]]
    y = ctx.b.node(
        "Cast", [ctx.b.node("Shape", [x.last(ctx.b)])], {"to": _ONNX_TYPES[t.dtype.type]}
    )
    ctx.set(o.outputs[0], Value(y, t.shape, t.dtype))


@op("STRIDED_SLICE")
def _strided_slice(ctx, o):
    x = ctx.fv(o.inputs[0])
    begin, end, strides = (_static(ctx, i, "STRIDED_SLICE bounds") for i in o.inputs[1:4])
    if _opt(o, 5, "?", False):
        end = begin + end  # offset=True: end is relative to begin
    y = strided_slice(
        ctx.b, x.last(ctx.b), x.rank, begin, end, strides,
        begin_mask=_opt(o, 0, "i", 0), end_mask=_opt(o, 1, "i", 0), ellipsis_mask=_opt(o, 2, "i", 0),
        new_axis_mask=_opt(o, 3, "i", 0), shrink_axis_mask=_opt(o, 4, "i", 0),
    )  # fmt: skip
    _passthrough_out(ctx, o, y)


@op("SLICE")
def _slice(ctx, o):
    x = ctx.fv(o.inputs[0])
    b = ctx.b
    begin_c, size_c = ctx.const(o.inputs[1]), ctx.const(o.inputs[2])
    if begin_c is not None and size_c is not None:
        begin, size = begin_c.astype(np.int64), size_c.astype(np.int64)
        starts = const(b, "starts", begin)
        ends = const(b, "ends", np.where(size < 0, np.iinfo(np.int64).max, begin + size))
    else:  # dynamic bounds (e.g. inside a WHILE body)
        starts, size = _int64_input(ctx, o.inputs[1]), _int64_input(ctx, o.inputs[2])
        big = const(b, "big", np.int64(np.iinfo(np.int32).max))  # survives 32-bit tracing
        ends = b.node(
            "Where",
            [
                b.node("Less", [size, const(b, "zero", np.int64(0))]),
                big,
                b.node("Add", [starts, size]),
            ],
        )
    axes = const(b, "axes", np.arange(x.rank))
    _passthrough_out(ctx, o, b.node("Slice", [x.last(b), starts, ends, axes]))


@op("TILE")
def _tile(ctx, o):
    x = ctx.fv(o.inputs[0])
    _passthrough_out(ctx, o, ctx.b.node("Tile", [x.last(ctx.b), _int64_input(ctx, o.inputs[1])]))


@op("BROADCAST_TO")
def _broadcast_to(ctx, o):
    x = ctx.fv(o.inputs[0])
    _passthrough_out(ctx, o, ctx.b.node("Expand", [x.last(ctx.b), _int64_input(ctx, o.inputs[1])]))


@op("GATHER")
def _gather(ctx, o):
    x = ctx.fv(o.inputs[0])
    idx = ctx.raw(o.inputs[1]).last(ctx.b)
    if _opt(o, 1, "i", 0):
        raise ModelFormatError("GATHER with batch_dims is not supported")
    axis = _opt(o, 0, "i", 0)
    _passthrough_out(ctx, o, ctx.b.node("Gather", [x.last(ctx.b), idx], {"axis": axis}))


@op("PAD", "PADV2", "MIRROR_PAD")
def _pad(ctx, o):
    x = ctx.fv(o.inputs[0])
    pads = _static(ctx, o.inputs[1], "padding amounts").astype(np.int64)
    b = ctx.b
    first = x.is_first and x.rank >= 3
    if first:
        from ._nhwc import to_first_perm

        pads = pads[to_first_perm(x.rank)]
    ins = [x.in_layout(b, first), const(b, "pads", np.concatenate([pads[:, 0], pads[:, 1]]))]
    attrs = {}
    if o.op == "PADV2" and len(o.inputs) > 2:
        ins.append(ctx.fv(o.inputs[2]).stored())
    elif o.op == "PAD" and ctx.tensors[o.inputs[0]].quantized:
        pass  # zero in float is the zero point once requantized
    if o.op == "MIRROR_PAD":
        attrs["mode"] = "reflect" if _opt(o, 0, "b", 0) == 0 else "edge_symmetric"
        if attrs["mode"] == "edge_symmetric":
            raise ModelFormatError("MIRROR_PAD in SYMMETRIC mode is not supported")
    _passthrough_out(ctx, o, b.node("Pad", ins, attrs), first=first)


@op("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize(ctx, o):
    x = ctx.fv(o.inputs[0])
    size = _static(ctx, o.inputs[1], "resize size").astype(np.int64)
    bilinear = o.op == "RESIZE_BILINEAR"
    align = _opt(o, 2 if bilinear else 0, "?", False)
    half = _opt(o, 3 if bilinear else 1, "?", False)
    attrs: dict = {"mode": "linear" if bilinear else "nearest"}
    if align:
        attrs["coordinate_transformation_mode"] = "align_corners"
        if not bilinear:
            attrs["nearest_mode"] = "round_prefer_ceil"
    elif half:
        attrs["coordinate_transformation_mode"] = "half_pixel"
        if not bilinear:
            attrs["nearest_mode"] = "round_prefer_ceil"
    else:
        attrs["coordinate_transformation_mode"] = "asymmetric"
        if not bilinear:
            attrs["nearest_mode"] = "floor"
    b = ctx.b
    batch = b.node(
        "Slice",
        [b.node("Shape", [x.first(b)]), const(b, "s", [0]), const(b, "e", [2]), const(b, "a", [0])],
    )
    sizes = b.node("Concat", [batch, const(b, "hw", size)], {"axis": 0})
    _passthrough_out(ctx, o, b.node("Resize", [x.first(b), "", "", sizes], attrs), first=True)


@op("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(ctx, o):
    x = ctx.fv(o.inputs[0])
    bs = _opt(o, 0, "i", 2)
    attrs = {"blocksize": bs} | ({"mode": "DCR"} if o.op == "DEPTH_TO_SPACE" else {})
    onnx_op = "DepthToSpace" if o.op == "DEPTH_TO_SPACE" else "SpaceToDepth"
    _passthrough_out(ctx, o, ctx.b.node(onnx_op, [x.first(ctx.b)], attrs), first=True)


@op("FILL")
def _fill(ctx, o):
    value = ctx.fv(o.inputs[1])
    shape = _int64_input(ctx, o.inputs[0])
    _passthrough_out(ctx, o, ctx.b.node("Expand", [value.last(ctx.b), shape]))


@op("ZEROS_LIKE")
def _zeros_like(ctx, o):
    x = ctx.fv(o.inputs[0])
    _passthrough_out(ctx, o, ctx.b.node("Sub", [x.last(ctx.b), x.last(ctx.b)]))


@op("DENSIFY")
def _densify(ctx, o):
    src, dst = ctx.tensors[o.inputs[0]], ctx.tensors[o.outputs[0]]
    if src.data is not None:  # the sparse constant was densified at load time
        dst.data = src.data
        return
    _passthrough_out(ctx, o, ctx.b.node("Identity", [ctx.fv(o.inputs[0]).last(ctx.b)]))


# -- control flow ---------------------------------------------------------------------------


def _scalar_bool(b: GraphBuilder, name: str) -> str:
    return b.node("Reshape", [name, const(b, "scalar", np.zeros(0, np.int64))])


@op("WHILE")
def _while(ctx, o):
    """WHILE(cond subgraph, body subgraph) as an ONNX Loop; the condition is re-evaluated in the body."""
    cond_index, body_index = _opt(o, 0, "i", 0), _opt(o, 1, "i", 0)
    b, reader = ctx.b, ctx.reader
    initial = [ctx.raw(i) for i in o.inputs]
    (cond0,) = reader.lower_subgraph(b, cond_index, initial)
    body_b = GraphBuilder(opset=b.graph.opsets.get("", 21), name="while_body")
    body_b._used = b._used  # one namespace with the outer graph (ONNX forbids shadowing)
    body_b.input("iteration", np.int64, ())
    body_b.input("cond_in", np.bool_, ())
    _, body_tensors, _ = reader.subgraph(body_index)
    sg = reader.model.tables(2)[body_index]
    carried = []
    body_inputs = [int(i) for i in sg.vector(1, "<i4")]
    if len(body_inputs) != len(initial):
        raise ModelFormatError(
            f"WHILE body takes {len(body_inputs)} values, the loop carries {len(initial)}"
        )
    for i in body_inputs:
        t = body_tensors[i]
        carried.append(
            Value(
                body_b.input("carried_" + t.name.replace("/", "_"), t.dtype, t.shape),
                t.shape,
                t.dtype,
            )
        )
    new = reader.lower_subgraph(body_b, body_index, carried)
    (cond_out,) = reader.lower_subgraph(body_b, cond_index, new)
    body_b.output(_scalar_bool(body_b, cond_out.last(body_b)), dtype=np.bool_, shape=())
    for v, c in zip(new, carried, strict=True):
        body_b.output(body_b.node("Identity", [v.last(body_b)]), dtype=c.dtype)
    body = body_b.build()
    b.graph.initializers.update(body.initializers)  # constants are captured from the outer scope
    body.initializers = {}
    outs = b.node(
        "Loop",
        ["", _scalar_bool(b, cond0.last(b)), *[v.last(b) for v in initial]],
        {"body": body},
        outputs=len(initial),
    )
    outs = [outs] if len(initial) == 1 else outs
    for k, name in enumerate(outs):
        t = ctx.tensors[o.outputs[k]]
        ctx.env[o.outputs[k]] = Value(name, t.shape, t.dtype)


@op("UNIDIRECTIONAL_SEQUENCE_LSTM")
def _sequence_lstm(ctx, o):
    """The fused LSTM (gates i, f, c, o in separate tensors) as ONNX LSTM (gates i, o, f, c)."""
    ins = o.inputs + [-1] * (24 - len(o.inputs))
    if ins[1] < 0 or ins[5] < 0:
        raise ModelFormatError(
            "UNIDIRECTIONAL_SEQUENCE_LSTM without an input gate (CIFG) is not supported"
        )
    if ins[16] >= 0 or any(i >= 0 for i in ins[20:24]):
        raise ModelFormatError(
            "UNIDIRECTIONAL_SEQUENCE_LSTM with projection or layer normalisation is not supported"
        )
    if _opt(o, 2, "f", 0.0):
        raise ModelFormatError(
            "UNIDIRECTIONAL_SEQUENCE_LSTM with projection clipping is not supported"
        )
    for k in (18, 19):
        state = ctx.const(ins[k])
        if state is not None and np.any(state):
            raise ModelFormatError(
                "UNIDIRECTIONAL_SEQUENCE_LSTM with a non-zero initial state is not supported"
            )
    b = ctx.b
    w = [ctx.weights(ins[k]) for k in (1, 4, 2, 3)]  # i, o, f, c
    r = [ctx.weights(ins[k]) for k in (5, 8, 6, 7)]
    bias = [ctx.weights(ins[k]) for k in (12, 15, 13, 14)]
    units = r[0].shape[0]
    acts = {"TANH": "Tanh", "RELU": "Relu", "NONE": "Tanh"}
    act = acts.get(_ACTIVATIONS.get(_opt(o, 0, "b", 4), "?"))
    if act is None:
        raise ModelFormatError("UNIDIRECTIONAL_SEQUENCE_LSTM with an unsupported cell activation")
    inputs = [
        None,
        b.initializer("lstm_W", np.concatenate(w)[None].astype(np.float32)),
        b.initializer("lstm_R", np.concatenate(r)[None].astype(np.float32)),
        b.initializer(
            "lstm_B",
            np.concatenate([*bias, np.zeros(4 * units, np.float32)])[None].astype(np.float32),
        ),
        "",
        "",
        "",
    ]
    if ins[9] >= 0 and ins[10] >= 0 and ins[11] >= 0:
        peep = [ctx.weights(ins[k]) for k in (9, 11, 10)]  # i, o, f
        inputs.append(b.initializer("lstm_P", np.concatenate(peep)[None].astype(np.float32)))
    x = ctx.fv(ins[0]).last(b)
    time_major = bool(_opt(o, 3, "?", False))
    cell_clip = _opt(o, 1, "f", 0.0)
    shape = ctx.shape(ins[0])
    if (
        cell_clip > 0 or None not in shape
    ):  # ONNX LSTM cannot clip the cell state: unroll static loops
        _unrolled_lstm(ctx, o, x, ins, act, cell_clip, time_major)
        return
    inputs[0] = x if time_major else b.node("Transpose", [x], {"perm": [1, 0, 2]})
    attrs = {"hidden_size": int(units), "activations": ["Sigmoid", act, act]}
    y, _, _ = b.node("LSTM", inputs, attrs, outputs=3)
    seq = b.node("Squeeze", [y, const(b, "axes", [1])])
    _out(ctx, o, seq if time_major else b.node("Transpose", [seq], {"perm": [1, 0, 2]}))


def _unrolled_lstm(
    ctx, o, x: str, ins: list[int], act: str, cell_clip: float, time_major: bool
) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM unrolled over its (static) time steps, with TFLite's cell-state clipping."""
    b = ctx.b
    shape = ctx.shape(ins[0])
    t_axis, b_axis = (0, 1) if time_major else (1, 0)
    steps, batch = shape[t_axis], shape[b_axis]
    if steps is None or batch is None:
        raise ModelFormatError(
            "UNIDIRECTIONAL_SEQUENCE_LSTM with cell clipping needs static batch and time sizes"
        )
    w = np.concatenate([ctx.weights(ins[k]) for k in (1, 2, 3, 4)])  # i, f, c, o
    r = np.concatenate([ctx.weights(ins[k]) for k in (5, 6, 7, 8)])
    bias = np.concatenate([ctx.weights(ins[k]) for k in (12, 13, 14, 15)])
    units = r.shape[1]
    wt, rt = (
        b.initializer("lstm_Wt", np.ascontiguousarray(w.T)),
        b.initializer("lstm_Rt", np.ascontiguousarray(r.T)),
    )
    bb = b.initializer("lstm_b", bias.astype(np.float32))
    peep = [ctx.weights(ins[k]) if ins[k] >= 0 else None for k in (9, 10, 11)]  # i, f, o
    peep = [None if p is None else b.initializer("lstm_peephole", p) for p in peep]
    lo, hi = const(b, "clip_lo", np.float32(-cell_clip)), const(b, "clip_hi", np.float32(cell_clip))
    clip = cell_clip > 0
    split = const(b, "split", [units] * 4)
    h = c = const(b, "zeros", np.zeros((batch, units), np.float32))
    outs = []
    for t in range(steps):
        xt = b.node("Gather", [x, const(b, "t", np.int64(t))], {"axis": t_axis})
        gates = b.node(
            "Add", [b.node("Add", [b.node("MatMul", [xt, wt]), b.node("MatMul", [h, rt])]), bb]
        )
        gi, gf, gc, go = b.node("Split", [gates, split], {"axis": 1}, outputs=4)
        if peep[0] is not None:
            gi = b.node("Add", [gi, b.node("Mul", [c, peep[0]])])
            gf = b.node("Add", [gf, b.node("Mul", [c, peep[1]])])
        i, f = b.node("Sigmoid", [gi]), b.node("Sigmoid", [gf])
        c = b.node("Add", [b.node("Mul", [f, c]), b.node("Mul", [i, b.node(act, [gc])])])
        if clip:
            c = b.node("Clip", [c, lo, hi])
        if peep[2] is not None:
            go = b.node("Add", [go, b.node("Mul", [c, peep[2]])])
        h = b.node("Mul", [b.node("Sigmoid", [go]), b.node(act, [c])])
        outs.append(b.node("Unsqueeze", [h, const(b, "axes", [t_axis])]))
    _out(ctx, o, b.node("Concat", outs, {"axis": t_axis}))
