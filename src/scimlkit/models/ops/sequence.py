"""ONNX sequences and optionals.

A sequence is a Python list of tensors (its length is always known at trace time); an
empty optional is `None` and a non-empty one is its value. Positions must be known at
trace time, except `SequenceAt` over tensors of one shape, which gathers from their stack.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DynamicShapeError, ModelError
from ..graph import Graph
from ._registry import OpContext, is_static, register_op
from ._util import normalize_axis, np_dtype, xp


def _position(ctx: OpContext, position: Any, length: int, *, inserting: bool = False) -> int:
    pos = int(ctx.static(position, "position").reshape(-1)[0])
    upper = length if inserting else length - 1
    if not -length <= pos <= upper:
        raise ModelError(f"{ctx.describe()}: position {pos} is out of range for a sequence of length {length}")
    return pos + length if pos < 0 else pos


def _sequence(ctx: OpContext, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ModelError(f"{ctx.describe()}: expected a sequence input, got {type(value).__name__}")
    return value


@register_op("SequenceEmpty")
def sequence_empty(ctx: OpContext, *, dtype: int = 1) -> list[Any]:
    """An empty sequence (the element type only matters for export)."""
    np_dtype(dtype)  # validates the attribute
    return []


@register_op("SequenceConstruct")
def sequence_construct(ctx: OpContext, *inputs: Any) -> list[Any]:
    """A sequence of the given tensors."""
    return list(inputs)


@register_op("SequenceLength")
def sequence_length(ctx: OpContext, seq: Any) -> np.ndarray:
    """The number of tensors in a sequence (int64 scalar, always static)."""
    return np.array(len(_sequence(ctx, seq)), np.int64)


@register_op("SequenceAt")
def sequence_at(ctx: OpContext, seq: Any, position: Any) -> Any:
    """The tensor at `position` (negative counts from the end)."""
    seq = _sequence(ctx, seq)
    if is_static(position) or not isinstance(position, jax.core.Tracer):
        return seq[_position(ctx, position, len(seq))]
    shapes = {tuple(np.shape(s)) for s in seq}
    if len(shapes) != 1:
        raise DynamicShapeError(
            f"{ctx.describe()}: its position depends on the input data and the sequence holds tensors "
            "of different shapes, so the output shape is unknown while tracing; run the model eagerly"
        )
    pos = jnp.asarray(position).reshape(-1)[0]
    return jnp.stack([jnp.asarray(s) for s in seq])[jnp.where(pos < 0, pos + len(seq), pos)]


@register_op("SequenceInsert")
def sequence_insert(ctx: OpContext, seq: Any, tensor: Any, position: Any = None) -> list[Any]:
    """A copy of the sequence with `tensor` inserted at `position` (default: appended)."""
    seq = list(_sequence(ctx, seq))
    pos = len(seq) if position is None else _position(ctx, position, len(seq), inserting=True)
    seq.insert(pos, tensor)
    return seq


@register_op("SequenceErase")
def sequence_erase(ctx: OpContext, seq: Any, position: Any = None) -> list[Any]:
    """A copy of the sequence without the tensor at `position` (default: the last)."""
    seq = list(_sequence(ctx, seq))
    if not seq:
        raise ModelError(f"{ctx.describe()}: cannot erase from an empty sequence")
    pos = len(seq) - 1 if position is None else _position(ctx, position, len(seq))
    del seq[pos]
    return seq


@register_op("SplitToSequence")
def split_to_sequence(ctx: OpContext, x: Any, split: Any = None, *, axis: int = 0, keepdims: int = 1) -> list[Any]:
    """Split a tensor along `axis` into a sequence (`split`: one length, or one per part)."""
    mod = xp(x)
    axis = normalize_axis(axis, np.ndim(x))
    dim = int(np.shape(x)[axis])
    if split is None:
        parts = [mod.take(x, i, axis=axis) for i in range(dim)]
        return parts if not keepdims else [mod.expand_dims(p, axis) for p in parts]
    sizes = ctx.static(split, "split").astype(np.int64)
    if sizes.ndim == 0:
        step = int(sizes)
        if step <= 0:
            raise ModelError(f"{ctx.describe()}: split must be positive, got {step}")
        lengths = [step] * (dim // step) + ([dim % step] if dim % step else [])
    else:
        lengths = [int(s) for s in sizes]
        if sum(lengths) != dim or min(lengths, default=0) < 0:
            raise ModelError(f"{ctx.describe()}: split {lengths} does not add up to dimension {dim}")
    bounds = np.cumsum([0, *lengths])
    index = [slice(None)] * np.ndim(x)
    out = []
    for start, stop in itertools.pairwise(bounds):
        index[axis] = slice(int(start), int(stop))
        out.append(x[tuple(index)])
    return out


@register_op("ConcatFromSequence")
def concat_from_sequence(ctx: OpContext, seq: Any, *, axis: int, new_axis: int = 0) -> Any:
    """Concatenate (or, with `new_axis=1`, stack) the tensors of a sequence."""
    seq = _sequence(ctx, seq)
    if not seq:
        raise ModelError(f"{ctx.describe()}: cannot concatenate an empty sequence")
    mod = xp(*seq)
    rank = np.ndim(seq[0])
    if new_axis:
        return mod.stack(seq, axis=normalize_axis(axis, rank + 1))
    return mod.concatenate(seq, axis=normalize_axis(axis, rank))


@register_op("SequenceMap")
def sequence_map(ctx: OpContext, seq: Any, *additional: Any, body: Graph) -> Any:
    """Apply `body` to every element; extra sequences are walked in step, tensors repeat."""
    seq = _sequence(ctx, seq)
    for extra in additional:
        if isinstance(extra, list) and len(extra) != len(seq):
            raise ModelError(f"{ctx.describe()}: sequences of lengths {len(seq)} and {len(extra)} cannot be mapped together")
    results: list[list[Any]] = [[] for _ in body.outputs]
    for i, element in enumerate(seq):
        args = [element, *(extra[i] if isinstance(extra, list) else extra for extra in additional)]
        for acc, value in zip(results, ctx.subgraph(body, args)):
            acc.append(value)
    return results[0] if len(results) == 1 else tuple(results)


# --------------------------------------------------------------------------- optionals


@register_op("Optional")
def optional(ctx: OpContext, value: Any = None, *, type: Any = None) -> Any:
    """An optional holding `value`, or an empty optional (None)."""
    return value


@register_op("OptionalHasElement")
def optional_has_element(ctx: OpContext, value: Any = None) -> np.ndarray:
    """True unless the optional is empty (or the input omitted)."""
    return np.array(value is not None)


@register_op("OptionalGetElement")
def optional_get_element(ctx: OpContext, value: Any = None) -> Any:
    """The value held by an optional (a plain tensor or sequence passes through)."""
    if value is None:
        raise ModelError(f"{ctx.describe()}: the optional is empty; check OptionalHasElement first")
    return value
