"""Pooling kernels: MaxPool, AveragePool, LpPool, their Global forms, MaxUnpool, MaxRoiPool.

Windows reduce with `jax.lax.reduce_window` in ONNX's channels-first layout. Output
sizes follow ONNX (and ONNX Runtime): explicit `pads` with floor or `ceil_mode`
rounding, where a ceil-mode window must start inside the padded input; `SAME_*` gives
`ceil(in / stride)`; `VALID` pads nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._registry import OpContext, register_op
from .conv import _auto_pad, _ints, conv_pads


def pool_geometry(
    spatial: Sequence[int],
    kernel: Sequence[int],
    *,
    auto_pad: str = "NOTSET",
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    ceil_mode: int = 0,
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Resolve a pooling window: `(out_shape, pads, extra_end, strides, dilations)`.

    `pads` is ONNX order; `extra_end` is the additional padding after `pads` that
    ceil-mode windows reach into (it never counts as input or as padding).
    """
    n = len(spatial)
    strides = _ints(strides, n, 1)
    dilations = _ints(dilations, n, 1)
    auto_pad = _auto_pad(auto_pad)
    pads = conv_pads(auto_pad, spatial, kernel, strides, dilations, pads)
    out, extra = [], []
    for i in range(n):
        span = (kernel[i] - 1) * dilations[i] + 1
        padded = spatial[i] + pads[i] + pads[i + n]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            size = -(-spatial[i] // strides[i])
        else:
            size = (padded - span) / strides[i] + 1
            size = math.ceil(size) if ceil_mode else math.floor(size)
            if ceil_mode and (size - 1) * strides[i] >= spatial[i] + pads[i]:
                size -= 1
        out.append(int(size))
        extra.append(max(0, (int(size) - 1) * strides[i] + span - padded))
    return out, pads, extra, strides, dilations


def _window(x: jax.Array, kernel, strides, dilations, padding, init, op) -> jax.Array:
    return lax.reduce_window(
        x,
        jnp.asarray(init, x.dtype),
        op,
        window_dimensions=(1, 1, *kernel),
        window_strides=(1, 1, *strides),
        padding=((0, 0), (0, 0), *padding),
        window_dilation=(1, 1, *dilations),
    )


def _lowest(dtype) -> float | int:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).min)
    if dtype.kind == "b":
        return False
    return -np.inf


def _kernel(kernel_shape, x) -> list[int]:
    if not kernel_shape:
        return [int(d) for d in x.shape[2:]]
    return [int(k) for k in kernel_shape]


def _max_indices(x: jax.Array, kernel, out, pads, extra, strides, dilations, storage_order) -> jax.Array:
    """Flat input indices of the maxima (ONNX MaxPool's second output)."""
    spatial = [int(d) for d in x.shape[2:]]
    n = len(spatial)
    # Positions (in input coordinates) of each window element, per output location.
    grids = [
        (np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d)
        for o, s, p, k, d in zip(out, strides, pads[:n], kernel, dilations)
    ]
    # Broadcast to (O1, ..., On, K1, ..., Kn) per axis.
    full = []
    for a in range(n):
        shape = [1] * (2 * n)
        shape[a] = out[a]
        shape[n + a] = kernel[a]
        full.append(np.broadcast_to(grids[a].reshape(shape), tuple(out) + tuple(kernel)))
    valid = np.ones(tuple(out) + tuple(kernel), bool)
    for a in range(n):
        valid &= (full[a] >= 0) & (full[a] < spatial[a])
    clipped = [np.clip(full[a], 0, spatial[a] - 1) for a in range(n)]
    flat_in = np.ravel_multi_index(tuple(clipped), spatial).reshape(int(np.prod(out)), -1)
    valid = valid.reshape(flat_in.shape)
    xf = x.reshape((*x.shape[:2], -1))
    vals = xf[:, :, flat_in]  # (N, C, O, K)
    vals = jnp.where(jnp.asarray(valid), vals, jnp.asarray(_lowest(x.dtype), x.dtype))
    best = jnp.argmax(vals, axis=-1)
    spatial_index = jnp.take_along_axis(jnp.broadcast_to(jnp.asarray(flat_in), vals.shape), best[..., None], -1)[..., 0]
    if storage_order:
        coords = jnp.unravel_index(spatial_index, spatial)
        col = jnp.zeros_like(spatial_index)
        for a in reversed(range(n)):
            col = col * spatial[a] + coords[a]
        spatial_index = col
    batch, channels = x.shape[:2]
    base = (jnp.arange(batch)[:, None] * channels + jnp.arange(channels)[None, :]) * int(np.prod(spatial))
    index = spatial_index + base[:, :, None]
    dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    return index.astype(dtype).reshape((batch, channels, *out))


@register_op("MaxPool")
def max_pool(
    ctx: OpContext,
    x,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    dilations=None,
    kernel_shape=None,
    pads=None,
    storage_order=0,
    strides=None,
):
    x = jnp.asarray(x)
    kernel = _kernel(kernel_shape, x)
    out, pads, extra, strides, dilations = pool_geometry(
        x.shape[2:], kernel, auto_pad=auto_pad, pads=pads, strides=strides, dilations=dilations, ceil_mode=ceil_mode
    )
    n = len(kernel)
    padding = [(pads[i], pads[i + n] + extra[i]) for i in range(n)]
    y = _window(x, kernel, strides, dilations, padding, _lowest(x.dtype), lax.max)
    if ctx.num_outputs < 2:
        return y
    return y, _max_indices(x, kernel, out, pads, extra, strides, dilations, storage_order)


def _window_counts(spatial, kernel, strides, dilations, pads, extra, include_pad: bool) -> np.ndarray:
    """How many input (or input+pad) elements each window covers, computed in NumPy."""
    n = len(spatial)
    counts = np.ones((1,), np.int64)
    for a in range(n):
        lo, hi = pads[a], pads[a + n]
        span = (kernel[a] - 1) * dilations[a] + 1
        size = (spatial[a] + lo + hi + extra[a] - span) // strides[a] + 1
        starts = np.arange(size) * strides[a]
        taps = starts[:, None] + np.arange(kernel[a])[None, :] * dilations[a]
        inside = (taps < spatial[a] + lo + hi) if include_pad else ((taps >= lo) & (taps < spatial[a] + lo))
        counts = np.multiply.outer(counts, inside.sum(axis=1))
    return counts.reshape(counts.shape[1:])


@register_op("AveragePool")
def average_pool(
    ctx: OpContext,
    x,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    count_include_pad=0,
    dilations=None,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    x = jnp.asarray(x)
    kernel = _kernel(kernel_shape, x)
    _, pads, extra, strides, dilations = pool_geometry(
        x.shape[2:], kernel, auto_pad=auto_pad, pads=pads, strides=strides, dilations=dilations, ceil_mode=ceil_mode
    )
    n = len(kernel)
    padding = [(pads[i], pads[i + n] + extra[i]) for i in range(n)]
    total = _window(x, kernel, strides, dilations, padding, 0, lax.add)
    counts = _window_counts(x.shape[2:], kernel, strides, dilations, pads, extra, bool(count_include_pad))
    return total / jnp.asarray(np.maximum(counts, 1), x.dtype)


@register_op("LpPool")
def lp_pool(
    ctx: OpContext,
    x,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    dilations=None,
    kernel_shape=None,
    p=2,
    pads=None,
    strides=None,
):
    x = jnp.asarray(x)
    kernel = _kernel(kernel_shape, x)
    _, pads, extra, strides, dilations = pool_geometry(
        x.shape[2:], kernel, auto_pad=auto_pad, pads=pads, strides=strides, dilations=dilations, ceil_mode=ceil_mode
    )
    n = len(kernel)
    padding = [(pads[i], pads[i + n] + extra[i]) for i in range(n)]
    p = float(p)
    total = _window(jnp.abs(x) ** p, kernel, strides, dilations, padding, 0, lax.add)
    return (total ** (1.0 / p)).astype(x.dtype)


def _spatial_axes(x) -> tuple[int, ...]:
    return tuple(range(2, jnp.ndim(x)))


@register_op("GlobalAveragePool")
def global_average_pool(ctx: OpContext, x):
    return jnp.mean(jnp.asarray(x), axis=_spatial_axes(x), keepdims=True)


@register_op("GlobalMaxPool")
def global_max_pool(ctx: OpContext, x):
    return jnp.max(jnp.asarray(x), axis=_spatial_axes(x), keepdims=True)


@register_op("GlobalLpPool")
def global_lp_pool(ctx: OpContext, x, *, p=2):
    x = jnp.asarray(x)
    p = float(p)
    return (jnp.sum(jnp.abs(x) ** p, axis=_spatial_axes(x), keepdims=True) ** (1.0 / p)).astype(x.dtype)


@register_op("MaxUnpool")
def max_unpool(ctx: OpContext, x, indices, output_shape=None, *, kernel_shape=None, pads=None, strides=None):
    x = jnp.asarray(x)
    n = x.ndim - 2
    kernel = [int(k) for k in kernel_shape]
    strides = _ints(strides, n, 1)
    pads = _ints(pads, 2 * n, 0)
    spatial = [
        (int(i) - 1) * s + k - pads[a] - pads[a + n] for a, (i, s, k) in enumerate(zip(x.shape[2:], strides, kernel))
    ]
    default = [*x.shape[:2], *spatial]
    index = jnp.asarray(indices).reshape(-1)
    shape = default
    if output_shape is not None:
        # Indices address the default-sized output; place them at the same coordinates.
        shape = [int(v) for v in ctx.static(output_shape, "output_shape")]
        if shape != default:
            index = jnp.ravel_multi_index(jnp.unravel_index(index, default), shape, mode="clip")
    flat = jnp.zeros((int(np.prod(shape)),), x.dtype)
    flat = flat.at[index].set(x.reshape(-1))
    return flat.reshape(shape)


@register_op("MaxRoiPool")
def max_roi_pool(ctx: OpContext, x, rois, *, pooled_shape, spatial_scale=1.0):
    x, rois = jnp.asarray(x), jnp.asarray(rois)
    height, width = x.shape[2:]
    ph, pw = (int(v) for v in pooled_shape)
    batch_index = rois[:, 0].astype(jnp.int32)
    box = jnp.round(rois[:, 1:] * spatial_scale).astype(jnp.int32)  # x1, y1, x2, y2
    x1, y1, x2, y2 = (box[:, i] for i in range(4))
    roi_h = jnp.maximum(y2 - y1 + 1, 1).astype(x.dtype)
    roi_w = jnp.maximum(x2 - x1 + 1, 1).astype(x.dtype)

    def bins(start, size, count, limit):
        step = size / count
        k = jnp.arange(count, dtype=x.dtype)
        lo = jnp.clip(jnp.floor(k[None, :] * step[:, None]).astype(jnp.int32) + start[:, None], 0, limit)
        hi = jnp.clip(jnp.ceil((k[None, :] + 1) * step[:, None]).astype(jnp.int32) + start[:, None], 0, limit)
        pos = jnp.arange(limit)
        return (pos[None, None, :] >= lo[:, :, None]) & (pos[None, None, :] < hi[:, :, None])  # (R, count, limit)

    mask_h = bins(y1, roi_h, ph, height)
    mask_w = bins(x1, roi_w, pw, width)
    low = jnp.asarray(_lowest(x.dtype), x.dtype)
    feats = x[batch_index]  # (R, C, H, W)
    over_w = jnp.max(jnp.where(mask_w[:, None, None, :, :], feats[:, :, :, None, :], low), axis=-1)  # (R, C, H, pw)
    pooled = jnp.max(jnp.where(mask_h[:, None, :, None, :], jnp.swapaxes(over_w, 2, 3)[:, :, None], low), axis=-1)
    empty = ~(jnp.any(mask_h, -1)[:, :, None] & jnp.any(mask_w, -1)[:, None, :])  # (R, ph, pw)
    return jnp.where(empty[:, None], jnp.zeros((), x.dtype), pooled)
