"""MXNet shape ops: Flatten, Reshape (with MXNet's special codes), transpose, slicing, split,
concatenation, casts and constant fills."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ._tf_common import INT64_MAX, INT64_MIN
from .mxnet_ops import MxNode, MxValue, Shape, norm_axis, op, result


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
    return result(x, ctx.node("Flatten", [x], {"axis": 1}, name=node.name), shape)


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
    return result(x, y, shape)


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
    return result(x, ctx.node("Transpose", [x], {"perm": axes}, name=node.name), shape)


@op("SwapAxis", "swapaxes")
def _swap_axis(ctx, node, ins):
    x = ins[0]
    rank = ctx.need_rank(x, node)
    d1, d2 = norm_axis(node.int("dim1", 0), rank, node), norm_axis(node.int("dim2", 0), rank, node)
    perm = list(range(rank))
    perm[d1], perm[d2] = perm[d2], perm[d1]
    shape = tuple(x.shape[a] for a in perm)
    return result(x, ctx.node("Transpose", [x], {"perm": perm}, name=node.name), shape)


@op("expand_dims")
def _expand_dims(ctx, node, ins):
    x = ins[0]
    axis = node.int("axis", 0)
    shape = None
    if x.shape is not None:
        a = axis if axis >= 0 else axis + len(x.shape) + 1
        shape = (*x.shape[:a], 1, *x.shape[a:])
    return result(x, ctx.node("Unsqueeze", [x, ctx.const([axis])], name=node.name), shape)


@op("squeeze")
def _squeeze(ctx, node, ins):
    x = ins[0]
    axes = node.ints("axis")
    if axes:
        rank = x.rank
        norm = {norm_axis(a, rank, node) for a in axes}
        shape = (
            None if x.shape is None else tuple(d for i, d in enumerate(x.shape) if i not in norm)
        )
        return result(x, ctx.node("Squeeze", [x, ctx.const(axes)], name=node.name), shape)
    if x.shape is None or any(d is None for d in x.shape):
        raise ModelFormatError(
            f"squeeze {node.name!r} without axis needs the input shape (pass input_shapes=)"
        )
    shape = tuple(d for d in x.shape if d != 1)
    return result(x, ctx.node("Squeeze", [x], name=node.name), shape)


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
    return result(x, ctx.node("Slice", inputs, name=node.name), shape)


@op("slice_axis")
def _slice_axis(ctx, node, ins):
    x = ins[0]
    axis = norm_axis(node.int("axis", 0), x.rank, node)
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
    axis = norm_axis(node.int("axis", 1), x.rank, node)
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
                result(x, o, None if shape is None else tuple(shape[:axis] + shape[axis + 1 :]))
            )
        else:
            values.append(result(x, o, None if shape is None else tuple(shape)))
    return values


@op("Concat", "concat", "_rnn_param_concat")
def _concat(ctx, node, ins):
    axis = node.int("dim", 1)
    if all(v.const is not None for v in ins):
        return MxValue.constant(np.concatenate([v.const for v in ins], axis=axis), node.name)
    rank = next((v.rank for v in ins if v.rank is not None), None)
    axis = norm_axis(axis, rank, node)
    shape = None
    if all(v.shape is not None for v in ins):
        shape = list(ins[0].shape)
        sizes = [v.shape[axis] for v in ins]
        shape[axis] = None if any(s is None for s in sizes) else sum(sizes)
        shape = tuple(shape)
    return result(ins[0], ctx.node("Concat", ins, {"axis": axis}, name=node.name), shape)


@op("Cast", "cast", "amp_cast")
def _cast(ctx, node, ins):
    from ..ops._util import onnx_dtype

    x = ins[0]
    dtype = np.dtype(node.get("dtype", "float32"))
    return result(
        x, ctx.node("Cast", [x], {"to": onnx_dtype(dtype)}, name=node.name), x.shape, dtype
    )


@op("zeros_like", "ones_like")
def _fill_like(ctx, node, ins):
    x = ins[0]
    value = np.array([0 if node.op == "zeros_like" else 1], x.dtype)
    y = ctx.node("ConstantOfShape", [ctx.node("Shape", [x])], {"value": value}, name=node.name)
    return result(x, y, keep_shape=True)


@op("_zeros", "_ones", "_full")
def _fill(ctx, node, ins):
    shape = node.ints("shape")
    dtype = np.dtype(node.get("dtype", "float32"))
    fill = {"_zeros": 0.0, "_ones": 1.0}.get(node.op, node.float("value", 0.0))
    if any(d == 0 for d in shape):  # a size MXNet infers from the consumer (RNN begin states)
        return MxValue("", tuple(shape), dtype, None, "zeros_state")
    return MxValue.constant(np.full(shape, fill, dtype), node.name)
