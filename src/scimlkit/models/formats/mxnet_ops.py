"""Lowerings of MXNet symbol operators to ONNX-semantics nodes (NCHW, as MXNet computes).

Each lowering takes the node (`MxNode`: op, name, string attributes, input references)
and its input values (`MxValue`: graph name, static shape with `None` for unknown sizes,
dtype, and the NumPy value when the input is a stored parameter) and returns its output
values. Shapes are tracked where they are cheap to know, so that ops which need sizes
(MXNet's `Reshape` codes, `pooling_convention="full"`) are lowered statically; sizes
that stay unknown are read at run time with `Shape`, which the runtime folds.

This module holds the values, the context, the registry (`OPS`, filled with `@op`) and the
elementwise, softmax and reduction ops; the other families live in `_mxnet_nn`,
`_mxnet_shape`, `_mxnet_array` and `_mxnet_rnn`, which `mxnet.py` imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFormatError, UnsupportedOp, UnsupportedOperatorError
from ..graph import GraphBuilder
from ._nhwc import const

Shape = tuple[int | None, ...] | None


@dataclass
class MxNode:
    """One node of the symbol JSON."""

    index: int
    op: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[int, int]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.attrs.get(key, default)
        return default if value in (None, "None", "") else value

    def int(self, key: str, default: int | None = None) -> int | None:
        value = self.get(key)
        return default if value is None else int(float(value))

    def float(self, key: str, default: float) -> float:
        value = self.get(key)
        return default if value is None else float(value)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        return default if value is None else value.strip().lower() in ("true", "1")

    def ints(self, key: str, default: Sequence[int] = ()) -> list:
        value = self.get(key)
        return list(default) if value is None else parse_tuple(value)


def parse_tuple(text: str) -> list:
    """`"(3, 3)"`, `"[1,2]"`, `"3"`, `"(None, 1)"` -> a list of ints (and `None`s)."""
    body = text.strip().strip("()[]").strip()
    if not body:
        return []
    out: list = []
    for part in body.split(","):
        part = part.strip().rstrip("L")
        if not part:
            continue
        out.append(None if part == "None" else int(float(part)))
    return out


@dataclass
class MxValue:
    """A value of the graph being built; `const` holds it when it is a known constant."""

    name: str
    shape: Shape
    dtype: np.dtype
    const: np.ndarray | None = None
    hint: str = ""

    @staticmethod
    def constant(value: np.ndarray, hint: str) -> MxValue:
        value = np.asarray(value)
        return MxValue("", tuple(value.shape), value.dtype, value, hint)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


class LowerContext:
    """The graph builder and the values of lowered node outputs."""

    def __init__(self, b: GraphBuilder) -> None:
        self.b = b
        self.env: dict[tuple[int, int], MxValue] = {}

    def env_value(self, ref: tuple[int, int], nodes: list[MxNode]) -> MxValue:
        if ref not in self.env:
            node = nodes[ref[0]]
            raise ModelFormatError(f"node {node.name!r} ({node.op}) has no output #{ref[1]}")
        return self.env[ref]

    def tensor(self, v: MxValue) -> str:
        """The graph name of `v` (a constant becomes an initializer on first use)."""
        if not v.name:
            if v.const is None:
                raise ModelFormatError(
                    f"value {v.hint!r} has no data here (a label input, or zeros whose size MXNet "
                    "infers from their consumer, used where only RNN begin states support them)"
                )
            v.name = self.b.initializer(v.hint or "const", v.const)
        return v.name

    def node(
        self, op: str, inputs: Sequence[MxValue | str], attrs: dict | None = None, **kw
    ) -> str:
        names = [i if isinstance(i, str) else self.tensor(i) for i in inputs]
        return self.b.node(op, names, attrs, **kw)

    def const(self, value, dtype=None, name: str = "c") -> str:
        return const(self.b, name, value, dtype)

    def need_rank(self, v: MxValue, node: MxNode) -> int:
        if v.rank is None:
            raise ModelFormatError(
                f"{node.op} {node.name!r} needs the rank of its input; pass input_shapes={{...}} to read_mxnet/load"
            )
        return v.rank

    def shape_of(self, v: MxValue, parts: Sequence) -> str:
        """A 1-D int64 shape tensor from `parts`: ints, `("dim", i)` or `("prod", i, j)` of `v`."""
        if all(isinstance(p, int) for p in parts):
            return self.const(np.array(parts, np.int64), name="shape")
        shp = self.node("Shape", [v])
        pieces = []
        for p in parts:
            if isinstance(p, int):
                pieces.append(self.const(np.array([p], np.int64), name="dim"))
            elif p[0] == "dim":
                pieces.append(self.node("Slice", [shp, self.const([p[1]]), self.const([p[1] + 1])]))
            else:
                seg = self.node("Slice", [shp, self.const([p[1]]), self.const([p[2] + 1])])
                pieces.append(self.node("ReduceProd", [seg], {"keepdims": 1}))
        return self.node("Concat", pieces, {"axis": 0})


def unsupported(node: MxNode, reason: str) -> UnsupportedOperatorError:
    """The error for a variant of a known op that is not lowered (e.g. channels-last layout)."""
    return UnsupportedOperatorError(
        [UnsupportedOp(node.op, "mxnet", 0, (node.name,), reason)], "MXNet symbol"
    )


Lowering = Callable[[LowerContext, MxNode, list[MxValue]], "MxValue | list[MxValue]"]
OPS: dict[str, Lowering] = {}

#: Inputs that are training labels (dropped from the graph's inputs).
LABEL_INPUTS: dict[str, tuple[int, ...]] = {
    "SoftmaxOutput": (1,),
    "Softmax": (1,),
    "LinearRegressionOutput": (1,),
    "LogisticRegressionOutput": (1,),
    "MAERegressionOutput": (1,),
    "SVMOutput": (1,),
}


def op(*names: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for n in names:
            if n in OPS:
                raise ValueError(f"MXNet op {n} registered twice")
            OPS[n] = fn
        return fn

    return deco


def result(
    x: MxValue, name: str, shape: Shape = None, dtype=None, keep_shape: bool = False
) -> MxValue:
    """The value `name` computed from `x`: `x`'s dtype unless given; `x`'s shape if `keep_shape`."""
    return MxValue(
        name, x.shape if keep_shape else shape, np.dtype(dtype) if dtype is not None else x.dtype
    )


def norm_axis(axis: int, rank: int | None, node: MxNode) -> int:
    if axis >= 0:
        return axis
    if rank is None:
        raise ModelFormatError(
            f"{node.op} {node.name!r}: a negative axis needs the input rank (pass input_shapes=)"
        )
    return axis + rank


# ---------------------------------------------------------------- elementwise
_UNARY = {
    "sqrt": "Sqrt", "exp": "Exp", "log": "Log", "abs": "Abs", "negative": "Neg", "relu": "Relu",
    "sigmoid": "Sigmoid", "tanh": "Tanh", "floor": "Floor", "ceil": "Ceil", "round": "Round",
    "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos", "erf": "Erf", "softsign": "Softsign",
    "sign": "Sign", "_copy": "Identity", "identity": "Identity", "BlockGrad": "Identity",
    "stop_gradient": "Identity", "Dropout": "Identity", "make_loss": "Identity", "MakeLoss": "Identity",
    "tan": "Tan", "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
    "log_sigmoid": None, "rsqrt": None, "square": None, "log1p": None, "expm1": None,
}  # fmt: skip


def _unary(kind: str) -> Lowering:
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        x = ins[0]
        if kind == "rsqrt":
            y = ctx.node("Reciprocal", [ctx.node("Sqrt", [x])], name=node.name)
        elif kind == "square":
            y = ctx.node("Mul", [x, x], name=node.name)
        elif kind == "log1p":
            y = ctx.node("Log", [ctx.node("Add", [x, ctx.const(1.0, x.dtype)])], name=node.name)
        elif kind == "expm1":
            y = ctx.node("Sub", [ctx.node("Exp", [x]), ctx.const(1.0, x.dtype)], name=node.name)
        elif kind == "log_sigmoid":
            y = ctx.node("Log", [ctx.node("Sigmoid", [x])], name=node.name)
        else:
            y = ctx.node(_UNARY[kind], [x], name=node.name)
        return result(x, y, keep_shape=True)

    return lower


for _name, _onnx in _UNARY.items():
    op(_name)(_unary(_name))

_BINARY = {
    "Add": ("elemwise_add", "_Plus", "_plus", "_add", "broadcast_add", "broadcast_plus"),
    "Sub": ("elemwise_sub", "_Minus", "_minus", "_sub", "broadcast_sub", "broadcast_minus"),
    "Mul": ("elemwise_mul", "_Mul", "_mul", "broadcast_mul"),
    "Div": ("elemwise_div", "_Div", "_div", "broadcast_div"),
    "Pow": ("_Power", "_power", "broadcast_power"),
    "Max": ("_Maximum", "_maximum", "broadcast_maximum"),
    "Min": ("_Minimum", "_minimum", "broadcast_minimum"),
}


def _broadcast(a: Shape, b: Shape) -> Shape:
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(
        x if y == 1 else y if x == 1 else (x if x is not None else y)
        for x, y in zip(a, b, strict=True)
    )


def binary(onnx_op: str) -> Lowering:
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        a, b = ins
        y = ctx.node(onnx_op, [a, b], name=node.name)
        return result(a, y, _broadcast(a.shape, b.shape))

    return lower


for _onnx, _names in _BINARY.items():
    op(*_names)(binary(_onnx))


@op("ElementWiseSum", "add_n", "_sum")
def _add_n(ctx, node, ins):
    return result(ins[0], ctx.node("Sum", ins, name=node.name), keep_shape=True)


_SCALAR = {
    "_plus_scalar": ("Add", False), "_PlusScalar": ("Add", False),
    "_minus_scalar": ("Sub", False), "_MinusScalar": ("Sub", False),
    "_rminus_scalar": ("Sub", True), "_RMinusScalar": ("Sub", True),
    "_mul_scalar": ("Mul", False), "_MulScalar": ("Mul", False),
    "_div_scalar": ("Div", False), "_DivScalar": ("Div", False),
    "_rdiv_scalar": ("Div", True), "_RDivScalar": ("Div", True),
    "_power_scalar": ("Pow", False), "_PowerScalar": ("Pow", False),
    "_rpower_scalar": ("Pow", True), "_RPowerScalar": ("Pow", True),
    "_maximum_scalar": ("Max", False), "_MaximumScalar": ("Max", False),
    "_minimum_scalar": ("Min", False), "_MinimumScalar": ("Min", False),
}  # fmt: skip


def _scalar(onnx_op: str, reverse: bool) -> Lowering:
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        x = ins[0]
        s = ctx.const(np.array(node.float("scalar", 0.0), x.dtype), name="scalar")
        y = ctx.node(onnx_op, [s, x] if reverse else [x, s], name=node.name)
        return result(x, y, keep_shape=True)

    return lower


for _name, (_onnx, _rev) in _SCALAR.items():
    op(_name)(_scalar(_onnx, _rev))


@op("clip")
def _clip(ctx, node, ins):
    x = ins[0]
    lo = ctx.const(np.array(node.float("a_min", -np.inf), x.dtype))
    hi = ctx.const(np.array(node.float("a_max", np.inf), x.dtype))
    return result(x, ctx.node("Clip", [x, lo, hi], name=node.name), keep_shape=True)


@op("Activation")
def _activation(ctx, node, ins):
    kind = node.get("act_type", "relu")
    table = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "softrelu": "Softplus",
        "softsign": "Softsign",
    }
    if kind == "log_sigmoid":
        return _unary("log_sigmoid")(ctx, node, ins)
    if kind == "mish":
        return result(ins[0], ctx.node("Mish", ins, name=node.name), keep_shape=True)
    if kind not in table:
        raise ModelFormatError(f"Activation {node.name!r}: unknown act_type {kind!r}")
    return result(ins[0], ctx.node(table[kind], ins, name=node.name), keep_shape=True)


@op("LeakyReLU")
def _leaky_relu(ctx, node, ins):
    x = ins[0]
    kind = node.get("act_type", "leaky")
    slope = node.float("slope", 0.25)
    if kind == "leaky":
        y = ctx.node("LeakyRelu", [x], {"alpha": slope}, name=node.name)
    elif kind == "rrelu":  # inference: the mean of the sampling range
        alpha = (node.float("lower_bound", 0.125) + node.float("upper_bound", 0.334)) / 2
        y = ctx.node("LeakyRelu", [x], {"alpha": alpha}, name=node.name)
    elif kind == "elu":
        y = ctx.node("Elu", [x], {"alpha": slope}, name=node.name)
    elif kind == "selu":
        y = ctx.node(
            "Selu", [x], {"alpha": 1.6732632423543772, "gamma": 1.0507009873554805}, name=node.name
        )
    elif kind == "gelu":
        y = ctx.node("Gelu", [x], name=node.name)
    elif kind == "prelu":
        gamma = ins[1]
        rank = ctx.need_rank(x, node)
        if gamma.const is not None and gamma.const.size > 1 and rank > 2:
            slope_v = gamma.const.reshape((-1,) + (1,) * (rank - 2))
            y = ctx.node(
                "PRelu",
                [x, ctx.const(slope_v.astype(x.dtype), name=gamma.hint or "slope")],
                name=node.name,
            )
        elif gamma.const is not None:
            y = ctx.node(
                "PRelu",
                [x, ctx.const(gamma.const.astype(x.dtype), name=gamma.hint or "slope")],
                name=node.name,
            )
        else:
            raise ModelFormatError(
                f"LeakyReLU {node.name!r}: prelu slopes must be stored parameters"
            )
    else:
        raise ModelFormatError(f"LeakyReLU {node.name!r}: unknown act_type {kind!r}")
    return result(x, y, keep_shape=True)


# ---------------------------------------------------------------- softmax family
def _softmax_axis(ctx, node, x, axis: int, log: bool = False) -> MxValue:
    temperature = node.get("temperature")
    if temperature is not None and float(temperature) != 1.0:
        x = result(
            x,
            ctx.node("Div", [x, ctx.const(np.array(float(temperature), x.dtype))]),
            keep_shape=True,
        )
    y = ctx.node("LogSoftmax" if log else "Softmax", [x], {"axis": axis}, name=node.name)
    return result(x, y, keep_shape=True)


@op("softmax")
def _softmax(ctx, node, ins):
    return _softmax_axis(ctx, node, ins[0], node.int("axis", -1))


@op("log_softmax")
def _log_softmax(ctx, node, ins):
    return _softmax_axis(ctx, node, ins[0], node.int("axis", -1), log=True)


def _softmax_flat(ctx, node, x: MxValue) -> MxValue:
    """Softmax over all but the first axis, in the input's shape."""
    if x.rank == 2:
        return _softmax_axis(ctx, node, x, 1)
    flat = ctx.node("Flatten", [x], {"axis": 1})
    sm = ctx.node("Softmax", [flat], {"axis": 1})
    return result(
        x, ctx.node("Reshape", [sm, ctx.node("Shape", [x])], name=node.name), keep_shape=True
    )


@op("SoftmaxActivation")
def _softmax_activation(ctx, node, ins):
    if node.get("mode", "instance") == "channel":
        return _softmax_axis(ctx, node, ins[0], 1)
    return _softmax_flat(ctx, node, ins[0])


@op("SoftmaxOutput", "Softmax")
def _softmax_output(ctx, node, ins):
    x = ins[0]
    if node.bool("multi_output"):
        return _softmax_axis(ctx, node, x, 1)
    if node.bool("preserve_shape"):
        return _softmax_axis(ctx, node, x, -1)
    return _softmax_flat(ctx, node, x)


@op("LinearRegressionOutput", "MAERegressionOutput")
def _regression_output(ctx, node, ins):
    return result(ins[0], ctx.node("Identity", [ins[0]], name=node.name), keep_shape=True)


@op("LogisticRegressionOutput")
def _logistic_output(ctx, node, ins):
    return result(ins[0], ctx.node("Sigmoid", [ins[0]], name=node.name), keep_shape=True)


# ---------------------------------------------------------------- reductions and products
_REDUCE = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd",
           "sum_axis": "ReduceSum", "max_axis": "ReduceMax", "min_axis": "ReduceMin"}  # fmt: skip


def _reduce(onnx_op: str) -> Lowering:
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        x = ins[0]
        axes = node.ints("axis")
        keep = node.bool("keepdims")
        if node.bool("exclude"):
            rank = ctx.need_rank(x, node)
            drop = {norm_axis(a, rank, node) for a in axes}
            axes = [a for a in range(rank) if a not in drop]
        attrs = {"keepdims": int(keep)}
        inputs = [x] + ([ctx.const(axes)] if axes else [])
        y = ctx.node(onnx_op, inputs, attrs, name=node.name)
        shape = None
        if x.shape is not None:
            norm = (
                {norm_axis(a, len(x.shape), node) for a in axes}
                if axes
                else set(range(len(x.shape)))
            )
            shape = tuple(
                1 if i in norm else d for i, d in enumerate(x.shape) if keep or i not in norm
            )
        return result(x, y, shape)

    return lower


for _name, _onnx in _REDUCE.items():
    op(_name)(_reduce(_onnx))


@op("dot")
def _dot(ctx, node, ins):
    a, b = ins
    if (a.rank is not None and a.rank > 2) or (b.rank is not None and b.rank > 2):
        raise unsupported(node, "operands of rank > 2")
    ta, tb = node.bool("transpose_a"), node.bool("transpose_b")
    an = ctx.node("Transpose", [a], {"perm": [1, 0]}) if ta else ctx.tensor(a)
    bn = ctx.node("Transpose", [b], {"perm": [1, 0]}) if tb else ctx.tensor(b)
    shape = None
    if a.shape is not None and b.shape is not None and len(a.shape) == 2 and len(b.shape) == 2:
        shape = (a.shape[1] if ta else a.shape[0], b.shape[0] if tb else b.shape[1])
    return result(a, ctx.node("MatMul", [an, bn], name=node.name), shape)


@op("batch_dot")
def _batch_dot(ctx, node, ins):
    a, b = ins
    ta, tb = node.bool("transpose_a"), node.bool("transpose_b")
    an = ctx.node("Transpose", [a], {"perm": [0, 2, 1]}) if ta else ctx.tensor(a)
    bn = ctx.node("Transpose", [b], {"perm": [0, 2, 1]}) if tb else ctx.tensor(b)
    shape = None
    if a.shape is not None and b.shape is not None:
        shape = (a.shape[0], a.shape[2] if ta else a.shape[1], b.shape[1] if tb else b.shape[2])
    return result(a, ctx.node("MatMul", [an, bn], name=node.name), shape)


@op("Embedding")
def _embedding(ctx, node, ins):
    x, w = ins
    idx = ctx.node("Cast", [x], {"to": 7})
    shape = None if x.shape is None else (*x.shape, node.int("output_dim"))
    return result(w, ctx.node("Gather", [w, idx], {"axis": 0}, name=node.name), shape)


@op("UpSampling")
def _upsampling(ctx, node, ins):
    if node.get("sample_type", "nearest") != "nearest" or len(ins) != 1:
        raise unsupported(node, "only single-input nearest upsampling is supported")
    x = ins[0]
    s = node.int("scale", 1)
    scales = ctx.const(np.array([1, 1, s, s], np.float32), name="scales")
    attrs = {
        "mode": "nearest",
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    }
    y = ctx.node("Resize", [x, "", scales], attrs, name=node.name)
    shape = (
        None
        if x.shape is None
        else (*x.shape[:2], *(None if d is None else d * s for d in x.shape[2:]))
    )
    return result(x, y, shape)
