"""MXNet array ops beyond the core set: padding, tiling, broadcasting, indexing, comparisons, LRN."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .mxnet_ops import LowerContext, MxNode, MxValue, binary, norm_axis, op, result, unsupported

_COMPARE = {
    "Equal": ("broadcast_equal", "_equal", "_equal_scalar"),
    "Greater": ("broadcast_greater", "_greater", "_greater_scalar"),
    "GreaterOrEqual": ("broadcast_greater_equal", "_greater_equal", "_greater_equal_scalar"),
    "Less": ("broadcast_lesser", "_lesser", "_lesser_scalar"),
    "LessOrEqual": ("broadcast_lesser_equal", "_lesser_equal", "_lesser_equal_scalar"),
    "NotEqual": ("broadcast_not_equal", "_not_equal", "_not_equal_scalar"),
}


def _compare(onnx_op: str, scalar: bool):
    def lower(ctx: LowerContext, node: MxNode, ins: list[MxValue]) -> MxValue:
        a = ins[0]
        b = (
            ctx.const(np.array(node.float("scalar", 0.0), a.dtype))
            if scalar
            else ctx.tensor(ins[1])
        )
        flag = ctx.node("Equal" if onnx_op == "NotEqual" else onnx_op, [a, b])
        if onnx_op == "NotEqual":  # not an ONNX op
            flag = ctx.node("Not", [flag])
        y = ctx.node(
            "Cast", [flag], {"to": _onnx_type(a.dtype)}, name=node.name
        )  # MXNet returns 0/1 in x's dtype
        return result(a, y, a.shape if scalar else None)

    return lower


def _onnx_type(dtype) -> int:
    from ..ops._util import onnx_dtype

    return onnx_dtype(np.dtype(dtype))


for _onnx, (_b, _e, _s) in _COMPARE.items():
    op(_b, _e)(_compare(_onnx, False))
    op(_s)(_compare(_onnx, True))

op("broadcast_hypot")(lambda ctx, node, ins: result(
    ins[0], ctx.node("Sqrt", [ctx.node("Add", [ctx.node("Mul", [ins[0], ins[0]]), ctx.node("Mul", [ins[1], ins[1]])])],
                     name=node.name)))  # fmt: skip


@op("broadcast_mod", "_mod")
def _mod(ctx, node, ins):
    a, b = ins
    if a.dtype.kind != "f":
        return binary("Mod")(ctx, node, ins)
    # Python's (floor) modulo, as MXNet computes it; ONNX's float Mod is C's fmod
    q = ctx.node("Floor", [ctx.node("Div", [a, b])])
    y = ctx.node("Sub", [a, ctx.node("Mul", [q, b])], name=node.name)
    return result(a, y, None)


@op("Pad", "pad")
def _pad(ctx, node, ins):
    x = ins[0]
    width = node.ints("pad_width")
    mode = node.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise ModelFormatError(f"Pad {node.name!r}: unknown mode {mode!r}")
    n = len(width) // 2
    begins, ends = width[0::2], width[1::2]
    attrs = {"mode": mode}
    inputs = [x, ctx.const(begins + ends)]
    if mode == "constant":
        inputs.append(ctx.const(np.array(node.float("constant_value", 0.0), x.dtype)))
    shape = None
    if x.shape is not None and len(x.shape) == n:
        shape = tuple(
            None if d is None else d + b + e for d, b, e in zip(x.shape, begins, ends, strict=True)
        )
    return result(x, ctx.node("Pad", inputs, attrs, name=node.name), shape)


@op("LRN")
def _lrn(ctx, node, ins):
    attrs = {
        "size": node.int("nsize"),
        "alpha": node.float("alpha", 1e-4),
        "beta": node.float("beta", 0.75),
        "bias": node.float("knorm", 2.0),
    }
    return result(ins[0], ctx.node("LRN", ins[:1], attrs, name=node.name), keep_shape=True)


@op("hard_sigmoid")
def _hard_sigmoid(ctx, node, ins):
    attrs = {"alpha": node.float("alpha", 0.2), "beta": node.float("beta", 0.5)}
    return result(ins[0], ctx.node("HardSigmoid", ins, attrs, name=node.name), keep_shape=True)


@op("tile")
def _tile(ctx, node, ins):
    x = ins[0]
    reps = node.ints("reps")
    rank = ctx.need_rank(x, node)
    n = max(rank, len(reps))
    reps = [1] * (n - len(reps)) + reps
    if n > rank:
        lead = list(range(n - rank))
        x = result(
            x, ctx.node("Unsqueeze", [x, ctx.const(lead)]), (1,) * (n - rank) + tuple(x.shape)
        )
    shape = tuple(None if d is None else d * r for d, r in zip(x.shape, reps, strict=True))
    return result(x, ctx.node("Tile", [x, ctx.const(reps)], name=node.name), shape)


@op("repeat")
def _repeat(ctx, node, ins):
    x = ins[0]
    reps = node.int("repeats", 1)
    axis = node.int("axis")
    if axis is None:
        flat = result(x, ctx.node("Reshape", [x, ctx.const([-1])]), None)
        x, axis = flat, 0
        rank = 1
    else:
        rank = ctx.need_rank(x, node)
        axis = norm_axis(axis, rank, node)
    # (.., d, ..) -> (.., d, 1, ..) -> tile -> (.., d*reps, ..)
    expanded = ctx.node("Unsqueeze", [x, ctx.const([axis + 1])])
    tiles = [1] * (rank + 1)
    tiles[axis + 1] = reps
    tiled = ctx.node("Tile", [expanded, ctx.const(tiles)])
    parts = [("dim", i) for i in range(axis)] + [-1] + [("dim", i) for i in range(axis + 1, rank)]
    shape = None
    if x.shape is not None:
        shape = tuple(
            (None if d is None else d * reps) if i == axis else d for i, d in enumerate(x.shape)
        )
        parts = [d if d is not None else p for d, p in zip(shape, _dims(rank), strict=True)]
        parts[axis] = -1
    return result(x, ctx.node("Reshape", [tiled, ctx.shape_of(x, parts)], name=node.name), shape)


def _dims(rank: int) -> list:
    return [("dim", i) for i in range(rank)]


@op("stack")
def _stack(ctx, node, ins):
    axis = node.int("axis", 0)
    rank = next((v.rank for v in ins if v.rank is not None), None)
    if axis < 0:
        if rank is None:
            raise ModelFormatError(f"stack {node.name!r}: a negative axis needs the input rank")
        axis += rank + 1
    parts = [ctx.node("Unsqueeze", [v, ctx.const([axis])]) for v in ins]
    shape = None if ins[0].shape is None else (*ins[0].shape[:axis], len(ins), *ins[0].shape[axis:])
    return result(ins[0], ctx.node("Concat", parts, {"axis": axis}, name=node.name), shape)


@op("broadcast_to")
def _broadcast_to(ctx, node, ins):
    x = ins[0]
    target = node.ints("shape")
    parts = [("dim", i) if t == 0 else t for i, t in enumerate(target)]  # 0: keep the input's size
    if x.shape is not None:
        parts = [
            x.shape[i] if isinstance(p, tuple) and x.shape[i] is not None else p
            for i, p in enumerate(parts)
        ]
    shape = tuple(p if isinstance(p, int) else None for p in parts)
    return result(x, ctx.node("Expand", [x, ctx.shape_of(x, parts)], name=node.name), shape)


@op("broadcast_like")
def _broadcast_like(ctx, node, ins):
    x, like = ins
    if node.get("lhs_axes") is not None or node.get("rhs_axes") is not None:
        raise unsupported(node, "lhs_axes/rhs_axes")
    return result(x, ctx.node("Expand", [x, ctx.node("Shape", [like])], name=node.name), like.shape)


@op("broadcast_axis", "broadcast_axes")
def _broadcast_axis(ctx, node, ins):
    x = ins[0]
    rank = ctx.need_rank(x, node)
    axes = [norm_axis(a, rank, node) for a in node.ints("axis")]
    sizes = node.ints("size")
    reps = [1] * rank
    for a, s in zip(axes, sizes, strict=True):
        reps[a] = s
    shape = (
        None
        if x.shape is None
        else tuple(reps[i] if i in axes else d for i, d in enumerate(x.shape))
    )
    return result(x, ctx.node("Tile", [x, ctx.const(reps)], name=node.name), shape)


@op("where")
def _where(ctx, node, ins):
    cond, a, b = ins
    flag = ctx.node("Cast", [cond], {"to": 9})
    return result(a, ctx.node("Where", [flag, a, b], name=node.name), a.shape)


@op("argmax", "argmin")
def _argmax(ctx, node, ins):
    x = ins[0]
    axis = node.int("axis")
    keep = node.bool("keepdims")
    if axis is None:
        x = result(x, ctx.node("Reshape", [x, ctx.const([-1])]), None)
        axis = 0
    onnx_op = "ArgMax" if node.op == "argmax" else "ArgMin"
    idx = ctx.node(onnx_op, [x], {"axis": axis, "keepdims": int(keep)})
    shape = None
    if x.shape is not None:
        a = norm_axis(axis, len(x.shape), node)
        shape = tuple(1 if i == a else d for i, d in enumerate(x.shape) if keep or i != a)
    # MXNet returns the indices as floats of the input's dtype
    return result(x, ctx.node("Cast", [idx], {"to": _onnx_type(x.dtype)}, name=node.name), shape)


@op("take")
def _take(ctx, node, ins):
    a, idx = ins
    mode = node.get("mode", "clip")
    axis = node.int("axis", 0)
    rank = a.rank
    axis_n = norm_axis(axis, rank, node)
    indices = ctx.node("Cast", [idx], {"to": 7})
    if a.shape is None or a.shape[axis_n] is None:
        raise ModelFormatError(
            f"take {node.name!r}: needs the size of the indexed axis (pass input_shapes=)"
        )
    size = a.shape[axis_n]
    if mode == "clip":
        indices = ctx.node(
            "Clip",
            [indices, ctx.const(np.array(0, np.int64)), ctx.const(np.array(size - 1, np.int64))],
        )
    elif mode == "wrap":
        indices = ctx.node("Mod", [indices, ctx.const(np.array(size, np.int64))])
    shape = None
    if idx.shape is not None:
        shape = (*a.shape[:axis_n], *idx.shape, *a.shape[axis_n + 1 :])
    return result(a, ctx.node("Gather", [a, indices], {"axis": axis_n}, name=node.name), shape)


@op("one_hot")
def _one_hot(ctx, node, ins):
    x = ins[0]
    depth = node.int("depth")
    dtype = np.dtype(node.get("dtype", "float32"))
    values = ctx.const(np.array([node.float("off_value", 0.0), node.float("on_value", 1.0)], dtype))
    indices = ctx.node("Cast", [x], {"to": 7})
    y = ctx.node(
        "OneHot",
        [indices, ctx.const(np.array(depth, np.int64)), values],
        {"axis": -1},
        name=node.name,
    )
    return result(x, y, None if x.shape is None else (*x.shape, depth), dtype)


@op("reshape_like")
def _reshape_like(ctx, node, ins):
    x, like = ins
    return result(
        x, ctx.node("Reshape", [x, ctx.node("Shape", [like])], name=node.name), like.shape
    )


@op("shape_array")
def _shape_array(ctx, node, ins):
    x = ins[0]
    return result(
        x, ctx.node("Shape", [x], name=node.name), None if x.rank is None else (x.rank,), np.int64
    )


@op("Crop")
def _crop(ctx, node, ins):
    x = ins[0]
    if len(ins) != 1 or node.bool("center_crop"):
        raise unsupported(node, "only single-input crops at an offset are supported")
    h, w = node.ints("h_w")
    oy, ox = (node.ints("offset") or [0, 0])[:2]
    shape = None if x.shape is None else (*x.shape[:2], h, w)
    inputs = [x, ctx.const([oy, ox]), ctx.const([oy + h, ox + w]), ctx.const([2, 3])]
    return result(x, ctx.node("Slice", inputs, name=node.name), shape)
