"""Lowerings of MXNet symbol operators to ONNX-semantics nodes (NCHW, as MXNet computes).

Each lowering takes the node (`MxNode`: op, name, string attributes, input references)
and its input values (`MxValue`: graph name, static shape with `None` for unknown sizes,
dtype, and the NumPy value when the input is a stored parameter) and returns its output
values. Shapes are tracked where they are cheap to know, so that ops which need sizes
(MXNet's `Reshape` codes, `pooling_convention="full"`) are lowered statically; sizes
that stay unknown are read at run time with `Shape`, which the runtime folds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFormatError, UnsupportedOp, UnsupportedOperatorError
from ..graph import GraphBuilder
from ._nhwc import const
from ._tf_common import INT64_MAX, INT64_MIN

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


def _out(
    x: MxValue, name: str, shape: Shape = None, dtype=None, keep_shape: bool = False
) -> MxValue:
    return MxValue(
        name, x.shape if keep_shape else shape, np.dtype(dtype) if dtype is not None else x.dtype
    )


def _axis(axis: int, rank: int | None, node: MxNode) -> int:
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
        return _out(x, y, keep_shape=True)

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


def _binary(onnx_op: str) -> Lowering:
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        a, b = ins
        y = ctx.node(onnx_op, [a, b], name=node.name)
        return _out(a, y, _broadcast(a.shape, b.shape))

    return lower


for _onnx, _names in _BINARY.items():
    op(*_names)(_binary(_onnx))


@op("ElementWiseSum", "add_n", "_sum")
def _add_n(ctx, node, ins):
    return _out(ins[0], ctx.node("Sum", ins, name=node.name), keep_shape=True)


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
        return _out(x, y, keep_shape=True)

    return lower


for _name, (_onnx, _rev) in _SCALAR.items():
    op(_name)(_scalar(_onnx, _rev))


@op("clip")
def _clip(ctx, node, ins):
    x = ins[0]
    lo = ctx.const(np.array(node.float("a_min", -np.inf), x.dtype))
    hi = ctx.const(np.array(node.float("a_max", np.inf), x.dtype))
    return _out(x, ctx.node("Clip", [x, lo, hi], name=node.name), keep_shape=True)


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
        return _out(ins[0], ctx.node("Mish", ins, name=node.name), keep_shape=True)
    if kind not in table:
        raise ModelFormatError(f"Activation {node.name!r}: unknown act_type {kind!r}")
    return _out(ins[0], ctx.node(table[kind], ins, name=node.name), keep_shape=True)


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
    return _out(x, y, keep_shape=True)


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
    return _out(x, y, shape)


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
    return _out(x, y, shape)


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
        return _out(x, y, None if x.shape is None else (x.shape[0], units))
    wt = (
        ctx.const(w.const.T, name=(w.hint or "w") + "_t")
        if w.const is not None
        else ctx.node("Transpose", [w])
    )
    y = ctx.node("MatMul", [x, wt], name=node.name if bias is None else None)
    if bias is not None:
        y = ctx.node("Add", [y, bias], name=node.name)
    return _out(x, y, None if x.shape is None else (*x.shape[:-1], units))


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
        axis = _axis(axis, rank, node)
    if axis == 1:
        y = ctx.node(
            "BatchNormalization", [x, gamma, beta, mean, var], {"epsilon": eps}, name=node.name
        )
        return [_out(x, y, keep_shape=True), mean, var]
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
    return [_out(x, y, keep_shape=True), mean, var]


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
        return _out(x, y, keep_shape=True)
    rank = ctx.need_rank(x, node)
    axis = _axis(axis, rank, node)
    perm = [i for i in range(rank) if i != axis] + [axis]
    inv = [perm.index(i) for i in range(rank)]
    t = ctx.node("Transpose", [x], {"perm": perm})
    t = ctx.node("LayerNormalization", [t, gamma, beta], {"axis": -1, "epsilon": eps})
    return _out(x, ctx.node("Transpose", [t], {"perm": inv}, name=node.name), keep_shape=True)


@op("InstanceNorm")
def _instance_norm(ctx, node, ins):
    x, gamma, beta = ins
    y = ctx.node(
        "InstanceNormalization",
        [x, gamma, beta],
        {"epsilon": node.float("eps", 1e-3)},
        name=node.name,
    )
    return _out(x, y, keep_shape=True)


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
    return _out(x, ctx.node("Div", [x, norm], name=node.name), keep_shape=True)


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
        return _out(x, y, shape)
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
        return _out(x, ctx.node("MaxPool", [x], {**attrs, "pads": pads}, name=node.name), shape)
    if ptype == "lp" and p_value == 2:
        return _out(
            x, ctx.node("LpPool", [x], {**attrs, "pads": pads, "p": 2}, name=node.name), shape
        )
    if ptype == "lp":  # MXNet's Lp pooling keeps signs: (sum x^p)^(1/p), not ONNX's |x|^p
        summed = ctx.node(
            "AveragePool",
            [_lp_power(ctx, x, p_value)],
            {**attrs, "pads": pads, "count_include_pad": 1},
        )
        summed = ctx.node("Mul", [summed, ctx.const(np.array(np.prod(kernel), x.dtype))])
        return _out(x, _lp_root(ctx, summed, p_value, x.dtype, node.name), shape)
    if ptype == "sum":
        avg = ctx.node("AveragePool", [x], {**attrs, "pads": pads, "count_include_pad": 1})
        y = ctx.node("Mul", [avg, ctx.const(np.array(np.prod(kernel), x.dtype))], name=node.name)
        return _out(x, y, shape)
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
    return _out(x, y, shape)


def _lp_power(ctx: LowerContext, x: MxValue, p: int) -> str:
    return ctx.tensor(x) if p == 1 else ctx.node("Pow", [x, ctx.const(np.array(p, x.dtype))])


def _lp_root(ctx: LowerContext, y: str, p: int, dtype, name: str) -> str:
    if p == 1:
        return ctx.node("Identity", [y], name=name)
    root = ctx.node("Pow", [ctx.node("Abs", [y]), ctx.const(np.array(1.0 / p, dtype))])
    return ctx.node("Mul", [ctx.node("Sign", [y]), root], name=name)


# ---------------------------------------------------------------- shape manipulation
@op("Flatten", "flatten")
def _flatten(ctx, node, ins):
    x = ins[0]
    shape = None
    if x.shape is not None:
        rest = x.shape[1:]
        shape = (
            x.shape[0],
            None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64)),
        )
    return _out(x, ctx.node("Flatten", [x], {"axis": 1}, name=node.name), shape)


def reshape_parts(in_shape: Shape, codes: list[int], reverse: bool, node: MxNode) -> list:
    """MXNet's Reshape codes (0 copy, -1 infer, -2 copy rest, -3 merge two, -4 split one)
    as a list of ints (known sizes, -1 to infer) and `("dim", i)`/`("prod", i, j)` references."""
    if reverse:
        if in_shape is None:
            raise ModelFormatError(f"Reshape {node.name!r} with reverse=True needs the input rank")
        rank = len(in_shape)
        flipped = reshape_parts(tuple(reversed(in_shape)), list(reversed(codes)), False, node)
        return [_flip_ref(p, rank) for p in reversed(flipped)]
    out: list = []
    i = 0
    k = 0
    rank = None if in_shape is None else len(in_shape)

    def dim(j):
        if in_shape is not None and in_shape[j] is not None:
            return in_shape[j]
        return ("dim", j)

    while k < len(codes):
        c = codes[k]
        if c > 0:
            out.append(c)
            i += 1
        elif c == 0:
            out.append(dim(i))
            i += 1
        elif c == -1:
            out.append(-1)
            i += 1
        elif c == -2:
            if rank is None:
                raise ModelFormatError(
                    f"Reshape {node.name!r}: code -2 needs the input rank (pass input_shapes=)"
                )
            out.extend(dim(j) for j in range(i, rank))
            i = rank
        elif c == -3:
            a, b = dim(i), dim(i + 1)
            out.append(a * b if isinstance(a, int) and isinstance(b, int) else ("prod", i, i + 1))
            i += 2
        elif c == -4:
            d1, d2 = codes[k + 1], codes[k + 2]
            src = dim(i)
            if d1 == -1 and isinstance(src, int):
                d1 = src // d2
            if d2 == -1 and isinstance(src, int):
                d2 = src // d1
            out.extend([d1, d2])
            i += 1
            k += 2
        else:
            raise ModelFormatError(f"Reshape {node.name!r}: unknown shape code {c}")
        k += 1
    return out


def _flip_ref(p, rank: int):
    if isinstance(p, int):
        return p
    if p[0] == "dim":
        return ("dim", rank - 1 - p[1])
    return ("prod", rank - 1 - p[2], rank - 1 - p[1])


@op("Reshape", "reshape")
def _reshape(ctx, node, ins):
    x = ins[0]
    codes = node.ints("shape") or node.ints("target_shape")
    if not codes:
        raise ModelFormatError(f"Reshape {node.name!r} has no shape")
    parts = reshape_parts(x.shape, codes, node.bool("reverse"), node)
    if x.const is not None and all(isinstance(p, int) for p in parts):
        return MxValue.constant(x.const.reshape(parts), node.name)
    shape: Shape = tuple(p if isinstance(p, int) and p >= 0 else None for p in parts)
    if (
        x.shape is not None
        and all(d is not None for d in x.shape)
        and sum(p == -1 for p in parts) == 1
    ):
        known = int(np.prod([p for p in shape if p is not None], dtype=np.int64))
        total = int(np.prod(x.shape, dtype=np.int64))
        shape = tuple(total // known if p == -1 else p for p in parts) if known else shape
    y = ctx.node("Reshape", [x, ctx.shape_of(x, parts)], name=node.name)
    return _out(x, y, shape)


@op("transpose")
def _transpose(ctx, node, ins):
    x = ins[0]
    axes = node.ints("axes")
    if not axes:
        rank = ctx.need_rank(x, node)
        axes = list(reversed(range(rank)))
    if x.const is not None:
        return MxValue.constant(np.transpose(x.const, axes), node.name)
    shape = None if x.shape is None else tuple(x.shape[a] for a in axes)
    return _out(x, ctx.node("Transpose", [x], {"perm": axes}, name=node.name), shape)


@op("SwapAxis", "swapaxes")
def _swap_axis(ctx, node, ins):
    x = ins[0]
    rank = ctx.need_rank(x, node)
    d1, d2 = _axis(node.int("dim1", 0), rank, node), _axis(node.int("dim2", 0), rank, node)
    perm = list(range(rank))
    perm[d1], perm[d2] = perm[d2], perm[d1]
    shape = tuple(x.shape[a] for a in perm)
    return _out(x, ctx.node("Transpose", [x], {"perm": perm}, name=node.name), shape)


@op("expand_dims")
def _expand_dims(ctx, node, ins):
    x = ins[0]
    axis = node.int("axis", 0)
    shape = None
    if x.shape is not None:
        a = axis if axis >= 0 else axis + len(x.shape) + 1
        shape = (*x.shape[:a], 1, *x.shape[a:])
    return _out(x, ctx.node("Unsqueeze", [x, ctx.const([axis])], name=node.name), shape)


@op("squeeze")
def _squeeze(ctx, node, ins):
    x = ins[0]
    axes = node.ints("axis")
    if axes:
        rank = x.rank
        norm = {_axis(a, rank, node) for a in axes}
        shape = (
            None if x.shape is None else tuple(d for i, d in enumerate(x.shape) if i not in norm)
        )
        return _out(x, ctx.node("Squeeze", [x, ctx.const(axes)], name=node.name), shape)
    if x.shape is None or any(d is None for d in x.shape):
        raise ModelFormatError(
            f"squeeze {node.name!r} without axis needs the input shape (pass input_shapes=)"
        )
    shape = tuple(d for d in x.shape if d != 1)
    return _out(x, ctx.node("Squeeze", [x], name=node.name), shape)


def _slice_shape(x: MxValue, axes, starts, ends, steps) -> Shape:
    if x.shape is None:
        return None
    shape = list(x.shape)
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        if shape[a] is not None:
            shape[a] = len(range(*slice(s, e, st).indices(shape[a])))
    return tuple(shape)


def _slice(ctx, node, x, axes, starts, ends, steps) -> MxValue:
    inputs = [x, ctx.const(starts), ctx.const(ends), ctx.const(axes), ctx.const(steps)]
    py = [
        (s, None if e in (INT64_MAX, INT64_MIN) else e) for s, e in zip(starts, ends, strict=True)
    ]
    shape = _slice_shape(x, axes, [p[0] for p in py], [p[1] for p in py], steps)
    return _out(x, ctx.node("Slice", inputs, name=node.name), shape)


@op("slice_axis")
def _slice_axis(ctx, node, ins):
    x = ins[0]
    axis = _axis(node.int("axis", 0), x.rank, node)
    end = node.int("end")
    return _slice(
        ctx, node, x, [axis], [node.int("begin", 0)], [INT64_MAX if end is None else end], [1]
    )


@op("slice", "crop")
def _slice_op(ctx, node, ins):
    x = ins[0]
    begin, end, step = node.ints("begin"), node.ints("end"), node.ints("step")
    axes, starts, ends, steps = [], [], [], []
    for a, bg in enumerate(begin):
        st = step[a] if a < len(step) and step[a] is not None else 1
        en = end[a] if a < len(end) else None
        if st == 0:
            raise ModelFormatError(f"slice {node.name!r}: step 0")
        axes.append(a)
        starts.append(bg if bg is not None else (0 if st > 0 else INT64_MAX))
        ends.append(en if en is not None else (INT64_MAX if st > 0 else INT64_MIN))
        steps.append(st)
    return _slice(ctx, node, x, axes, starts, ends, steps)


@op("SliceChannel", "split")
def _split(ctx, node, ins):
    x = ins[0]
    count = node.int("num_outputs", 1)
    axis = _axis(node.int("axis", 1), x.rank, node)
    outs = ctx.node(
        "Split", [x], {"axis": axis, "num_outputs": count}, outputs=count, name=node.name
    )
    outs = [outs] if isinstance(outs, str) else outs
    shape = None
    if x.shape is not None:
        shape = list(x.shape)
        shape[axis] = None if shape[axis] is None else shape[axis] // count
    values = []
    for o in outs:
        if node.bool("squeeze_axis"):
            o = ctx.node("Squeeze", [o, ctx.const([axis])])
            values.append(
                _out(x, o, None if shape is None else tuple(shape[:axis] + shape[axis + 1 :]))
            )
        else:
            values.append(_out(x, o, None if shape is None else tuple(shape)))
    return values


@op("Concat", "concat", "_rnn_param_concat")
def _concat(ctx, node, ins):
    axis = node.int("dim", 1)
    if all(v.const is not None for v in ins):
        return MxValue.constant(np.concatenate([v.const for v in ins], axis=axis), node.name)
    rank = next((v.rank for v in ins if v.rank is not None), None)
    axis = _axis(axis, rank, node)
    shape = None
    if all(v.shape is not None for v in ins):
        shape = list(ins[0].shape)
        sizes = [v.shape[axis] for v in ins]
        shape[axis] = None if any(s is None for s in sizes) else sum(sizes)
        shape = tuple(shape)
    return _out(ins[0], ctx.node("Concat", ins, {"axis": axis}, name=node.name), shape)


@op("Cast", "cast", "amp_cast")
def _cast(ctx, node, ins):
    from ..ops._util import onnx_dtype

    x = ins[0]
    dtype = np.dtype(node.get("dtype", "float32"))
    return _out(x, ctx.node("Cast", [x], {"to": onnx_dtype(dtype)}, name=node.name), x.shape, dtype)


@op("zeros_like", "ones_like")
def _fill_like(ctx, node, ins):
    x = ins[0]
    value = np.array([0 if node.op == "zeros_like" else 1], x.dtype)
    y = ctx.node("ConstantOfShape", [ctx.node("Shape", [x])], {"value": value}, name=node.name)
    return _out(x, y, keep_shape=True)


@op("_zeros", "_ones", "_full")
def _fill(ctx, node, ins):
    shape = node.ints("shape")
    dtype = np.dtype(node.get("dtype", "float32"))
    fill = {"_zeros": 0.0, "_ones": 1.0}.get(node.op, node.float("value", 0.0))
    if any(d == 0 for d in shape):  # a size MXNet infers from the consumer (RNN begin states)
        return MxValue("", tuple(shape), dtype, None, "zeros_state")
    return MxValue.constant(np.full(shape, fill, dtype), node.name)


# ---------------------------------------------------------------- softmax family
def _softmax_axis(ctx, node, x, axis: int, log: bool = False) -> MxValue:
    temperature = node.get("temperature")
    if temperature is not None and float(temperature) != 1.0:
        x = _out(
            x,
            ctx.node("Div", [x, ctx.const(np.array(float(temperature), x.dtype))]),
            keep_shape=True,
        )
    y = ctx.node("LogSoftmax" if log else "Softmax", [x], {"axis": axis}, name=node.name)
    return _out(x, y, keep_shape=True)


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
    return _out(
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
    return _out(ins[0], ctx.node("Identity", [ins[0]], name=node.name), keep_shape=True)


@op("LogisticRegressionOutput")
def _logistic_output(ctx, node, ins):
    return _out(ins[0], ctx.node("Sigmoid", [ins[0]], name=node.name), keep_shape=True)


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
            drop = {_axis(a, rank, node) for a in axes}
            axes = [a for a in range(rank) if a not in drop]
        attrs = {"keepdims": int(keep)}
        inputs = [x] + ([ctx.const(axes)] if axes else [])
        y = ctx.node(onnx_op, inputs, attrs, name=node.name)
        shape = None
        if x.shape is not None:
            norm = (
                {_axis(a, len(x.shape), node) for a in axes} if axes else set(range(len(x.shape)))
            )
            shape = tuple(
                1 if i in norm else d for i, d in enumerate(x.shape) if keep or i not in norm
            )
        return _out(x, y, shape)

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
    return _out(a, ctx.node("MatMul", [an, bn], name=node.name), shape)


@op("batch_dot")
def _batch_dot(ctx, node, ins):
    a, b = ins
    ta, tb = node.bool("transpose_a"), node.bool("transpose_b")
    an = ctx.node("Transpose", [a], {"perm": [0, 2, 1]}) if ta else ctx.tensor(a)
    bn = ctx.node("Transpose", [b], {"perm": [0, 2, 1]}) if tb else ctx.tensor(b)
    shape = None
    if a.shape is not None and b.shape is not None:
        shape = (a.shape[0], a.shape[2] if ta else a.shape[1], b.shape[1] if tb else b.shape[2])
    return _out(a, ctx.node("MatMul", [an, bn], name=node.name), shape)


@op("Embedding")
def _embedding(ctx, node, ins):
    x, w = ins
    idx = ctx.node("Cast", [x], {"to": 7})
    shape = None if x.shape is None else (*x.shape, node.int("output_dim"))
    return _out(w, ctx.node("Gather", [w, idx], {"axis": 0}, name=node.name), shape)


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
    return _out(x, y, shape)
