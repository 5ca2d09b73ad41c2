"""Tensor construction, shape manipulation, indexing and data-movement ONNX operators.

These kernels run in NumPy when all their inputs are static (so shape arithmetic
folds at trace time, int64 is kept without `jax_enable_x64`, and string tensors
flow through), and in `jax.numpy` otherwise. Shape-like inputs (Reshape's shape,
Slice's starts/ends/axes/steps, Pad's pads, ...) are read with `ctx.static`; ops
whose output shape depends on the data (NonZero, Unique, Compress, Range, ...)
therefore work eagerly and raise `DynamicShapeError` under `jax.jit`. `Shape` and
`Size` always return static NumPy int64.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax import lax

from ._registry import OpContext, is_static, register_op
from ._util import (
    OpAttributeError,
    int_list,
    is_string,
    normalize_axes,
    normalize_axis,
    np_dtype,
    xp,
)

_INT64 = np.int64


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- identity, casts


@register_op("Identity")
def identity(ctx: OpContext, x: Any) -> Any:
    return x


_FLOAT8_SATURATING = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz")


def _parse_string(s: Any) -> float:
    text = s.decode() if isinstance(s, bytes) else str(s)
    return float(text.strip())


def _to_string(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=object)
    flat = x.reshape(-1)
    for i, v in enumerate(flat.tolist() if x.dtype.kind in "biu" else flat):
        if isinstance(v, np.floating):
            fv = float(v)
            out.flat[i] = (
                "NaN"
                if math.isnan(fv)
                else ("INF" if fv == math.inf else "-INF" if fv == -math.inf else str(v))
            )
        else:
            out.flat[i] = str(v)
    return out


_SUB_BYTE_INTS = ("int4", "uint4", "int2", "uint2")


def _to_e8m0(m: Any, x: Any, *, saturate: int, round_mode: str) -> Any:
    """float -> FLOAT8E8M0 (a bare power-of-two exponent), rounding per `round_mode`."""
    x = x.astype(np.float32)
    bits = x.view(np.uint32) if m is np else lax.bitcast_convert_type(x, jnp.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint16 if m is np else jnp.uint16)
    mantissa = bits & 0x7FFFFF
    special = exponent == 0xFF
    mode = _str(round_mode)
    if mode == "up":
        bump = mantissa > 0
    elif mode == "nearest":
        bump = ((mantissa & 0x400000) > 0) & (((mantissa & 0x3FFFFF) > 0) | (exponent > 0))
    elif mode == "down":
        bump = m.zeros(exponent.shape, bool)
    else:
        raise OpAttributeError(f"Cast: round_mode must be 'up', 'down' or 'nearest', got {mode!r}")
    if saturate:
        bump = bump & (exponent != 0xFE)
    exponent = exponent + bump.astype(exponent.dtype)
    if saturate:  # +-inf saturates to the largest exponent; NaN stays NaN
        exponent = m.where(special & (mantissa == 0), 0xFE, exponent)
    out = m.where(special & ((mantissa > 0) | (not saturate)), 0xFF, exponent).astype(np.uint8)
    return (
        out.view(ml_dtypes.float8_e8m0fnu)
        if m is np
        else lax.bitcast_convert_type(out, ml_dtypes.float8_e8m0fnu)
    )


def cast_array(x: Any, dtype: np.dtype, *, saturate: int = 1, round_mode: str = "up") -> Any:
    """Convert `x` to `dtype` with ONNX Cast semantics (strings via NumPy, float8 saturation)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        return x if is_string(x) else _to_string(np.asarray(x))
    if is_string(x):
        values = np.asarray([_parse_string(s) for s in np.asarray(x).reshape(-1)], dtype=np.float64)
        return values.reshape(np.shape(x)).astype(dtype)
    m = xp(x)
    x = m.asarray(x)
    if dtype.name == "float8_e8m0fnu":
        return _to_e8m0(m, x, saturate=saturate, round_mode=round_mode)
    if dtype.itemsize == 1 and dtype.name in _SUB_BYTE_INTS and x.dtype.kind == "f":
        # The spec leaves out-of-range float -> int4/int2 undefined: truncate and saturate, as
        # ONNX Runtime and XLA do (NaN -> 0), so constant-folded and traced casts agree.
        info = ml_dtypes.iinfo(dtype)
        x = m.clip(m.nan_to_num(m.trunc(x)), int(info.min), int(info.max))
        x = x.astype(np.int64 if m is np else jnp.int32)
    if dtype.name in _FLOAT8_SATURATING and x.dtype.kind == "f":
        hi = float(ml_dtypes.finfo(dtype).max)
        if saturate:  # out-of-range values (and infinities) clamp to the largest finite value
            x = m.where(m.isnan(x), x, m.clip(x, -hi, hi)).astype(x.dtype)
        elif dtype.name == "float8_e5m2":  # has infinities: overflow goes to +-inf
            x = m.where((m.abs(x) > hi) & ~m.isinf(x), m.sign(x) * np.inf, x).astype(x.dtype)
        else:  # no infinities: overflow goes to NaN
            x = m.where(m.abs(x) > hi, np.nan, x).astype(x.dtype)
    if dtype == np.bool_ and x.dtype.kind == "f":
        return x != 0
    if (
        m is jnp
    ):  # int64/float64 become 32-bit without jax_enable_x64: say so once (at load), not per call
        dtype = jax.dtypes.canonicalize_dtype(dtype)
    return x.astype(dtype)


@register_op("Cast")
def cast(ctx: OpContext, x: Any, *, to: int, saturate: int = 1, round_mode: str = "up") -> Any:
    return cast_array(x, np_dtype(to), saturate=saturate, round_mode=round_mode)


@register_op("CastLike")
def cast_like(
    ctx: OpContext, x: Any, target: Any, *, saturate: int = 1, round_mode: str = "up"
) -> Any:
    dtype = np.asarray(target).dtype if is_static(target) else np.dtype(target.dtype)
    return cast_array(x, dtype, saturate=saturate, round_mode=round_mode)


@register_op("BitCast")
def bitcast(ctx: OpContext, x: Any, *, to: int) -> Any:
    dtype = np_dtype(to)
    if (
        np.asarray(x).dtype.itemsize != dtype.itemsize
        if is_static(x)
        else x.dtype.itemsize != dtype.itemsize
    ):
        raise OpAttributeError(
            f"{ctx.describe()}: BitCast needs types of the same bit width, got {x.dtype} -> {dtype}"
        )
    if is_static(x):
        return np.asarray(x).view(dtype)
    if x.dtype == jnp.bool_ or dtype == np.bool_:
        return x.view(dtype)
    return lax.bitcast_convert_type(x, dtype)


# --------------------------------------------------------------------------- shapes


@register_op("Shape")
def shape(ctx: OpContext, x: Any, *, start: int = 0, end: int | None = None) -> np.ndarray:
    dims = _shape(x)
    rank = len(dims)
    lo = min(max(start + rank if start < 0 else start, 0), rank)
    hi = rank if end is None else min(max(end + rank if end < 0 else end, 0), rank)
    return np.asarray(dims[lo:hi], dtype=_INT64)


@register_op("Size")
def size(ctx: OpContext, x: Any) -> np.ndarray:
    return np.asarray(math.prod(_shape(x)), dtype=_INT64)


@register_op("Reshape")
def reshape(ctx: OpContext, x: Any, shape: Any = None, *, allowzero: int = 0) -> Any:
    target = int_list(ctx.static(shape, "shape"))  # an attribute before opset 5
    dims = _shape(x)
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(dims):
                raise OpAttributeError(
                    f"{ctx.describe()}: shape {target} copies dim {i} of an input of rank {len(dims)}"
                )
            out.append(dims[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise OpAttributeError(f"{ctx.describe()}: shape {target} has more than one -1")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        total = math.prod(dims)
        if known == 0 or total % known:
            raise OpAttributeError(f"{ctx.describe()}: cannot reshape {dims} to {target}")
        out[out.index(-1)] = total // known
    if math.prod(out) != math.prod(dims):
        raise OpAttributeError(
            f"{ctx.describe()}: cannot reshape {dims} ({math.prod(dims)} elements) to {out}"
        )
    return xp(x).reshape(x, tuple(out))


@register_op("Flatten")
def flatten(ctx: OpContext, x: Any, *, axis: int = 1) -> Any:
    dims = _shape(x)
    if not -len(dims) <= axis <= len(dims):
        raise OpAttributeError(
            f"{ctx.describe()}: axis {axis} is out of range for rank {len(dims)}"
        )
    axis = axis + len(dims) if axis < 0 else axis
    return xp(x).reshape(x, (math.prod(dims[:axis]), math.prod(dims[axis:])))


@register_op("Squeeze")
def squeeze(ctx: OpContext, x: Any, axes: Any = None) -> Any:
    dims = _shape(x)
    raw = None if axes is None else ctx.static(axes, "axes")  # an attribute before opset 13
    if raw is None or len(int_list(raw)) == 0:
        ax = tuple(i for i, d in enumerate(dims) if d == 1)
    else:
        ax = normalize_axes(int_list(raw), len(dims))
        bad = [a for a in ax if dims[a] != 1]
        if bad:
            raise OpAttributeError(
                f"{ctx.describe()}: cannot squeeze axes {bad} of shape {dims} (size is not 1)"
            )
    return xp(x).reshape(x, tuple(d for i, d in enumerate(dims) if i not in ax))


@register_op("Unsqueeze")
def unsqueeze(ctx: OpContext, x: Any, axes: Any = None) -> Any:
    if axes is None:
        raise OpAttributeError(f"{ctx.describe()}: axes are required")
    raw = ctx.static(axes, "axes")  # an attribute before opset 13
    dims = list(_shape(x))
    raw = int_list(raw)
    ax = sorted(normalize_axes(raw, len(dims) + len(raw)))
    for a in ax:
        dims.insert(a, 1)
    return xp(x).reshape(x, tuple(dims))


@register_op("Transpose")
def transpose(ctx: OpContext, x: Any, *, perm: Any = None) -> Any:
    rank = len(_shape(x))
    order = tuple(reversed(range(rank))) if perm is None else normalize_axes(perm, rank, "perm")
    return xp(x).transpose(x, order)


@register_op("Expand")
def expand(ctx: OpContext, x: Any, shape: Any) -> Any:
    target = tuple(int_list(ctx.static(shape, "shape")))
    try:
        out = np.broadcast_shapes(_shape(x), target)
    except ValueError:
        raise OpAttributeError(
            f"{ctx.describe()}: cannot expand shape {_shape(x)} to {target}"
        ) from None
    return xp(x).broadcast_to(x, out)


@register_op("Tile")
def tile(ctx: OpContext, x: Any, repeats: Any, *legacy: Any) -> Any:
    reps = tuple(int_list(ctx.static(repeats, "repeats")))
    if ctx.version < 6:  # Tile-1: (input, tiles, axis)
        ax = normalize_axis(int_list(ctx.static(legacy[0], "axis"))[0], len(_shape(x)))
        full = [1] * len(_shape(x))
        full[ax] = reps[0]
        reps = tuple(full)
    if len(reps) != len(_shape(x)):
        raise OpAttributeError(
            f"{ctx.describe()}: repeats {list(reps)} must have one entry per input axis"
        )
    return xp(x).tile(x, reps)


@register_op("Concat")
def concat(ctx: OpContext, *xs: Any, axis: int = 1) -> Any:
    xs = tuple(x for x in xs if x is not None)
    if not xs:
        raise OpAttributeError(f"{ctx.describe()}: needs at least one input")
    m = xp(*xs)
    if m is np and any(is_string(x) for x in xs):
        xs = tuple(np.asarray(x, dtype=object) for x in xs)
    rank = len(_shape(xs[0]))
    return m.concatenate(xs, axis=normalize_axis(axis, rank))


@register_op("Split")
def split(
    ctx: OpContext, x: Any, split: Any = None, *, axis: int = 0, num_outputs: int | None = None
) -> Any:
    dims = _shape(x)
    ax = normalize_axis(axis, len(dims))
    n = dims[ax]
    if split is not None and np.size(ctx.static(split, "split")):  # an attribute before opset 13
        sizes = int_list(ctx.static(split, "split"))
    else:
        count = num_outputs or ctx.num_outputs
        if num_outputs is not None:
            chunk = -(-n // count)
            sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
            if len(sizes) != count:
                raise OpAttributeError(
                    f"{ctx.describe()}: cannot split {n} elements into {count} outputs"
                )
        else:
            if n % count:
                raise OpAttributeError(
                    f"{ctx.describe()}: axis of size {n} does not split evenly into {count} outputs"
                )
            sizes = [n // count] * count
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise OpAttributeError(
            f"{ctx.describe()}: split sizes {sizes} do not sum to the axis size {n}"
        )
    m = xp(x)
    out, start = [], 0
    for s in sizes:
        index = [slice(None)] * len(dims)
        index[ax] = slice(start, start + s)
        out.append(m.asarray(x)[tuple(index)])
        start += s
    return tuple(out)


def _onnx_slice(start: int, end: int, step: int, dim: int) -> slice:
    """A Python slice that selects what ONNX Slice selects (ONNX clamps differently for step < 0)."""
    if step == 0:
        raise OpAttributeError("Slice: steps must not be 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    if dim == 0:
        return slice(0, 0, step)
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


@register_op("Slice")
def slice_(
    ctx: OpContext,
    x: Any,
    starts: Any = None,
    ends: Any = None,
    axes: Any = None,
    steps: Any = None,
) -> Any:
    dims = _shape(x)
    # starts/ends/axes were attributes before opset 10; they arrive under the same names
    starts_l, ends_l = int_list(ctx.static(starts, "starts")), int_list(ctx.static(ends, "ends"))
    axes_l = list(range(len(starts_l))) if axes is None else int_list(ctx.static(axes, "axes"))
    steps_l = [1] * len(starts_l) if steps is None else int_list(ctx.static(steps, "steps"))
    if not len(starts_l) == len(ends_l) == len(axes_l) == len(steps_l):
        raise OpAttributeError(
            f"{ctx.describe()}: starts, ends, axes and steps must have the same length"
        )
    index = [slice(None)] * len(dims)
    for a, s, e, st in zip(
        normalize_axes(axes_l, len(dims)), starts_l, ends_l, steps_l, strict=True
    ):
        index[a] = _onnx_slice(s, e, st, dims[a])
    return xp(x).asarray(x)[tuple(index)]


# --------------------------------------------------------------------------- gather / scatter


def _wrap(m: Any, indices: Any, dim: Any) -> Any:
    indices = m.asarray(indices)
    return m.where(indices < 0, indices + dim, indices)


@register_op("Gather")
def gather(ctx: OpContext, x: Any, indices: Any, *, axis: int = 0) -> Any:
    dims = _shape(x)
    ax = normalize_axis(axis, len(dims))
    m = xp(x, indices)
    idx = _wrap(m, indices, dims[ax])
    if m is np:
        try:
            return np.take(np.asarray(x), idx, axis=ax)
        except IndexError as exc:
            raise OpAttributeError(f"{ctx.describe()}: {exc}") from None
    return jnp.take(jnp.asarray(x), idx, axis=ax, mode="clip")


@register_op("GatherElements")
def gather_elements(ctx: OpContext, x: Any, indices: Any, *, axis: int = 0) -> Any:
    dims = _shape(x)
    ax = normalize_axis(axis, len(dims))
    m = xp(x, indices)
    idx = _wrap(m, indices, dims[ax])
    if m is np:
        return np.take_along_axis(np.asarray(x), idx, axis=ax)
    return jnp.take_along_axis(jnp.asarray(x), idx, axis=ax, mode="clip")


@register_op("GatherND")
def gather_nd(ctx: OpContext, x: Any, indices: Any, *, batch_dims: int = 0) -> Any:
    m = xp(x, indices)
    x = m.asarray(x)
    dims = x.shape
    idx = m.asarray(indices)
    k = idx.shape[-1]
    b = batch_dims
    idx = m.where(idx < 0, idx + m.asarray(dims[b : b + k], dtype=idx.dtype), idx)
    batch_shape = dims[:b]
    nb = math.prod(batch_shape)
    xf = x.reshape((nb, *dims[b:]))
    idf = idx.reshape((nb, *idx.shape[b:]))
    batch = m.arange(nb).reshape((nb,) + (1,) * (idf.ndim - 2))
    gathered = xf[(batch, *[idf[..., i] for i in range(k)])]
    return gathered.reshape(idx.shape[:-1] + dims[b + k :])


def _reduction_name(reduction: Any) -> str:
    name = _str(reduction)
    if name not in ("none", "add", "mul", "max", "min"):
        raise OpAttributeError(
            f"scatter reduction must be none, add, mul, max or min; got {name!r}"
        )
    return name


def _apply_at(ref: Any, updates: Any, reduction: str) -> Any:
    return {
        "none": ref.set,
        "add": ref.add,
        "mul": ref.multiply,
        "max": ref.max,
        "min": ref.min,
    }[reduction](updates)


@register_op("ScatterElements")
def scatter_elements(
    ctx: OpContext, x: Any, indices: Any, updates: Any, *, axis: int = 0, reduction: str = "none"
) -> Any:
    x = jnp.asarray(x)
    ax = normalize_axis(axis, x.ndim)
    idx = _wrap(jnp, indices, x.shape[ax])
    grid = list(jnp.indices(idx.shape, sparse=True))
    grid[ax] = idx
    return _apply_at(x.at[tuple(grid)], jnp.asarray(updates, x.dtype), _reduction_name(reduction))


@register_op("Scatter")
def scatter(ctx: OpContext, x: Any, indices: Any, updates: Any, *, axis: int = 0) -> Any:
    return scatter_elements(ctx, x, indices, updates, axis=axis)


@register_op("ScatterND")
def scatter_nd(
    ctx: OpContext, x: Any, indices: Any, updates: Any, *, reduction: str = "none"
) -> Any:
    x = jnp.asarray(x)
    idx = jnp.asarray(indices)
    k = idx.shape[-1]
    idx = jnp.where(idx < 0, idx + jnp.asarray(x.shape[:k], dtype=idx.dtype), idx)
    where = tuple(idx[..., i] for i in range(k))
    return _apply_at(x.at[where], jnp.asarray(updates, x.dtype), _reduction_name(reduction))


@register_op("TensorScatter")
def tensor_scatter(
    ctx: OpContext,
    past: Any,
    update: Any,
    write_indices: Any = None,
    *,
    mode: str = "linear",
    axis: int = -2,
) -> Any:
    past, update = jnp.asarray(past), jnp.asarray(update)
    ax = normalize_axis(axis, past.ndim)
    if ax == 0:
        raise OpAttributeError(f"{ctx.describe()}: axis must not be the batch axis 0")
    cache = jnp.moveaxis(past, ax, 1)
    upd = jnp.moveaxis(update, ax, 1)
    batch, max_len, seq = cache.shape[0], cache.shape[1], upd.shape[1]
    start = jnp.zeros((batch,), jnp.int32) if write_indices is None else jnp.asarray(write_indices)
    pos = start[:, None] + jnp.arange(seq)[None, :]
    if _str(mode) == "circular":
        pos = pos % max_len
    out = cache.at[jnp.arange(batch)[:, None], pos].set(upd, mode="drop")
    return jnp.moveaxis(out, 1, ax)


# --------------------------------------------------------------------------- padding


@register_op("Pad")
def pad(
    ctx: OpContext,
    x: Any,
    pads: Any = None,
    constant_value: Any = None,
    axes: Any = None,
    *,
    mode: str = "constant",
    **attrs: Any,
) -> Any:
    dims = _shape(x)
    rank = len(dims)
    if ctx.version < 11:  # pads (paddings in Pad-1) and value were attributes
        pad_list = int_list(pads if pads is not None else attrs["paddings"])
        value: Any = np.asarray(
            attrs.get("value", 0.0), dtype=np.asarray(x).dtype if is_static(x) else x.dtype
        )
        ax = list(range(rank))
    else:
        pad_list = int_list(ctx.static(pads, "pads"))
        value = None if constant_value is None or np.size(constant_value) == 0 else constant_value
        ax = (
            list(range(rank))
            if axes is None
            else list(normalize_axes(int_list(ctx.static(axes, "axes")), rank))
        )
    if len(pad_list) != 2 * len(ax):
        raise OpAttributeError(
            f"{ctx.describe()}: pads {pad_list} must have 2 entries per padded axis ({len(ax)})"
        )
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(ax):
        before[a], after[a] = pad_list[i], pad_list[i + len(ax)]
    mode = _str(mode)
    m = xp(x, value)
    x = m.asarray(x)
    # negative pads crop
    crop = tuple(
        slice(-b if b < 0 else 0, d + a if a < 0 else d)
        for b, a, d in zip(before, after, dims, strict=True)
    )
    x = x[crop]
    widths = [(max(b, 0), max(a, 0)) for b, a in zip(before, after, strict=True)]
    if mode == "constant":
        fill = 0 if value is None else m.asarray(value).reshape(()).astype(x.dtype)
        if x.dtype == object:
            fill = "" if value is None else np.asarray(value).reshape(()).item()
        return m.pad(x, widths, mode="constant", constant_values=fill)
    if mode in ("reflect", "edge", "wrap"):
        return m.pad(x, widths, mode=mode)
    raise OpAttributeError(
        f"{ctx.describe()}: unknown mode {mode!r}; expected constant, reflect, edge or wrap"
    )


# --------------------------------------------------------------------------- constants, generators


def _attr_tensor(value: Any) -> np.ndarray:
    return np.asarray(value)


@register_op("Constant")
def constant(ctx: OpContext, **attrs: Any) -> np.ndarray:
    if "value" in attrs:
        return _attr_tensor(attrs["value"])
    if "value_float" in attrs:
        return np.asarray(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.asarray(attrs["value_floats"], dtype=np.float32).reshape(-1)
    if "value_int" in attrs:
        return np.asarray(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.asarray(attrs["value_ints"], dtype=np.int64).reshape(-1)
    if "value_string" in attrs:
        return np.asarray(_str(attrs["value_string"]), dtype=object)
    if "value_strings" in attrs:
        return np.asarray([_str(s) for s in attrs["value_strings"]], dtype=object).reshape(-1)
    if "sparse_value" in attrs:
        sparse = attrs["sparse_value"]
        if isinstance(sparse, np.ndarray):
            return sparse
        raise OpAttributeError(
            f"{ctx.describe()}: sparse_value must be given to scimlkit as a dense array"
        )
    raise OpAttributeError(f"{ctx.describe()}: has none of the value attributes")


@register_op("ConstantOfShape")
def constant_of_shape(ctx: OpContext, shape: Any, *, value: Any = None) -> np.ndarray:
    dims = tuple(int_list(ctx.static(shape, "shape")))
    fill = np.zeros((), np.float32) if value is None else np.asarray(value).reshape(-1)[0]
    return np.full(dims, fill, dtype=np.asarray(fill).dtype)


@register_op("EyeLike")
def eye_like(ctx: OpContext, x: Any, *, dtype: int | None = None, k: int = 0) -> np.ndarray:
    dims = _shape(x)
    if len(dims) != 2:
        raise OpAttributeError(f"{ctx.describe()}: input must be 2-D, got shape {dims}")
    out_dtype = (
        np_dtype(dtype)
        if dtype is not None
        else (np.asarray(x).dtype if is_static(x) else np.dtype(x.dtype))
    )
    return np.eye(dims[0], dims[1], k=k, dtype=out_dtype)


@register_op("Range")
def range_(ctx: OpContext, start: Any, limit: Any, delta: Any, *, stash_type: int = 1) -> Any:
    s, lim, d = (
        ctx.static(v, name).reshape(-1)[0]
        for v, name in ((start, "start"), (limit, "limit"), (delta, "delta"))
    )
    dtype = s.dtype
    if d == 0:
        raise OpAttributeError(f"{ctx.describe()}: delta must not be 0")
    if dtype.kind in "iu":
        n = max(-(-(int(lim) - int(s)) // int(d)), 0)
        return (int(s) + np.arange(n, dtype=np.int64) * int(d)).astype(dtype)
    work = np.float32 if dtype.itemsize < 4 and stash_type else dtype
    n = max(int(np.ceil((float(lim) - float(s)) / float(d))), 0)
    if n == 0:
        return np.zeros(0, dtype)
    # ONNX defines Range as repeated addition; np.cumsum adds sequentially, rounding like that loop
    steps = np.full(n, d, dtype=work)
    steps[0] = s
    out = np.cumsum(steps, dtype=work)
    return out.astype(dtype)


@register_op("OneHot")
def one_hot(ctx: OpContext, indices: Any, depth: Any, values: Any, *, axis: int = -1) -> Any:
    n = int(np.asarray(ctx.static(depth, "depth")).reshape(-1)[0])
    m = xp(indices, values)
    idx = m.asarray(indices)
    if idx.dtype.kind == "f":
        idx = idx.astype(np.int64)
    idx = m.where(idx < 0, idx + n, idx)
    rank = idx.ndim + 1
    ax = normalize_axis(axis, rank)
    classes = m.arange(n).reshape((n,) + (1,) * (rank - 1 - ax))
    hot = m.expand_dims(idx, ax) == classes
    vals = m.asarray(values).reshape(-1)
    return m.where(hot, vals[1], vals[0])


# --------------------------------------------------------------------------- data-dependent shapes


@register_op("NonZero")
def non_zero(ctx: OpContext, x: Any) -> np.ndarray:
    data = ctx.static(x, "input")
    return np.asarray(np.nonzero(data.reshape(1) if data.ndim == 0 else data), dtype=np.int64)


@register_op("Compress")
def compress(ctx: OpContext, x: Any, condition: Any, *, axis: int | None = None) -> Any:
    cond = ctx.static(condition, "condition").astype(bool).reshape(-1)
    keep = np.nonzero(cond)[0]
    m = xp(x)
    x = m.asarray(x)
    if axis is None:
        flat = x.reshape(-1)
        return flat[keep[keep < flat.shape[0]]]
    ax = normalize_axis(axis, x.ndim)
    return m.take(x, keep[keep < x.shape[ax]], axis=ax)


@register_op("Unique")
def unique(
    ctx: OpContext, x: Any, *, axis: int | None = None, sorted: int = 1
) -> tuple[np.ndarray, ...]:
    data = ctx.static(x, "input")
    if axis is not None:
        axis = normalize_axis(axis, data.ndim)
        values, first, inverse, counts = np.unique(
            data, return_index=True, return_inverse=True, return_counts=True, axis=axis
        )
    else:
        values, first, inverse, counts = np.unique(
            data.reshape(-1), return_index=True, return_inverse=True, return_counts=True
        )
    inverse = inverse.reshape(-1)
    if not sorted:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return values, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)


# --------------------------------------------------------------------------- rearrangements


@register_op("DepthToSpace")
def depth_to_space(ctx: OpContext, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    m = xp(x)
    x = m.asarray(x)
    n, c, h, w = x.shape
    b = blocksize
    if c % (b * b):
        raise OpAttributeError(
            f"{ctx.describe()}: channels {c} are not divisible by blocksize^2 = {b * b}"
        )
    if _str(mode) == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


@register_op("SpaceToDepth")
def space_to_depth(ctx: OpContext, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    m = xp(x)
    x = m.asarray(x)
    n, c, h, w = x.shape
    b = blocksize
    if h % b or w % b:
        raise OpAttributeError(
            f"{ctx.describe()}: spatial dims {h}x{w} are not divisible by blocksize {b}"
        )
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.transpose(0, 3, 5, 1, 2, 4) if _str(mode) == "DCR" else y.transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@register_op("ReverseSequence")
def reverse_sequence(
    ctx: OpContext, x: Any, sequence_lens: Any, *, batch_axis: int = 1, time_axis: int = 0
) -> Any:
    m = xp(x, sequence_lens)
    x = m.asarray(x)
    lens = m.asarray(sequence_lens)
    t = m.arange(x.shape[time_axis])
    # src[t, b] = len[b] - 1 - t for t < len[b], else t
    src = m.where(t[:, None] < lens[None, :], lens[None, :] - 1 - t[:, None], t[:, None])
    if time_axis > batch_axis:
        src = src.T
    shape = [1] * x.ndim
    shape[time_axis], shape[batch_axis] = x.shape[time_axis], x.shape[batch_axis]
    src = m.broadcast_to(src.reshape(shape), x.shape)
    return m.take_along_axis(x, src, axis=time_axis)
