"""Normalization kernels: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, RMSNormalization, LRN, MeanVarianceNormalization, LpNormalization."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._registry import OpContext, register_op
from ._util import normalize_axes, normalize_axis


def _channel(v, ndim: int):
    """Reshape a per-channel vector (or a (C, D1, ...) tensor) to broadcast over NC..."""
    v = jnp.asarray(v)
    if v.ndim == 1:
        return v.reshape((1, -1) + (1,) * (ndim - 2))
    return v.reshape((1, *v.shape))


def _stash(x: jax.Array, stash_type: int) -> jnp.dtype:
    """Computation dtype: float32 for `stash_type=1` unless the input is wider."""
    if int(stash_type) == 1 and jnp.finfo(x.dtype).bits < 32:
        return jnp.float32
    return x.dtype


@register_op("BatchNormalization")
def batch_normalization(
    ctx: OpContext,
    x,
    scale,
    b,
    mean,
    var,
    *,
    epsilon=1e-5,
    momentum=0.9,
    training_mode=0,
    is_test=0,
    spatial=1,
    consumed_inputs=None,
):
    x = jnp.asarray(x)
    nd = x.ndim
    # Training statistics: opset >= 14 asks through `training_mode`; older opsets
    # through extra outputs (`is_test=0` before 7).
    training = bool(training_mode) if ctx.version >= 14 else (ctx.num_outputs > 1 and not is_test)
    if not training:
        inv = lax.rsqrt(_channel(var, nd).astype(x.dtype) + jnp.asarray(epsilon, x.dtype))
        return (x - _channel(mean, nd).astype(x.dtype)) * inv * _channel(scale, nd).astype(x.dtype) + _channel(
            b, nd
        ).astype(x.dtype)
    axes = (0, *range(2, nd)) if (ctx.version >= 9 or spatial) else (0,)
    batch_mean = jnp.mean(x, axis=axes)
    batch_var = jnp.var(x, axis=axes)
    keep = (1, -1) + (1,) * (nd - 2) if len(axes) == nd - 1 else (1, *batch_mean.shape)
    y = (x - batch_mean.reshape(keep)) * lax.rsqrt(batch_var.reshape(keep) + epsilon)
    y = y * _channel(scale, nd).astype(x.dtype) + _channel(b, nd).astype(x.dtype)
    running_mean = jnp.asarray(mean) * momentum + batch_mean * (1 - momentum)
    running_var = jnp.asarray(var) * momentum + batch_var * (1 - momentum)
    outputs = (y, running_mean.astype(x.dtype), running_var.astype(x.dtype))
    if ctx.version < 14:
        outputs = (*outputs, batch_mean, batch_var)
    return outputs[: ctx.num_outputs]


@register_op("InstanceNormalization")
def instance_normalization(ctx: OpContext, x, scale, b, *, epsilon=1e-5):
    x = jnp.asarray(x)
    axes = tuple(range(2, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.var(x, axis=axes, keepdims=True)
    y = (x - mean) * lax.rsqrt(var + jnp.asarray(epsilon, x.dtype))
    return y * _channel(scale, x.ndim).astype(x.dtype) + _channel(b, x.ndim).astype(x.dtype)


@register_op("LayerNormalization")
def layer_normalization(ctx: OpContext, x, scale, b=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    x = jnp.asarray(x)
    axis = normalize_axis(axis, x.ndim)
    axes = tuple(range(axis, x.ndim))
    dtype = _stash(x, stash_type)
    xs = x.astype(dtype)
    mean = jnp.mean(xs, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xs - mean), axis=axes, keepdims=True)
    inv_std = lax.rsqrt(var + jnp.asarray(epsilon, dtype))
    y = ((xs - mean) * inv_std).astype(x.dtype) * jnp.asarray(scale).astype(x.dtype)
    if b is not None:
        y = y + jnp.asarray(b).astype(x.dtype)
    return (y, mean, inv_std)[: ctx.num_outputs] if ctx.num_outputs > 1 else y


@register_op("GroupNormalization")
def group_normalization(ctx: OpContext, x, scale, bias, *, epsilon=1e-5, num_groups, stash_type=1):
    x = jnp.asarray(x)
    n, c = x.shape[:2]
    g = int(num_groups)
    dtype = _stash(x, stash_type)
    xg = x.astype(dtype).reshape((n, g, -1))
    mean = jnp.mean(xg, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(xg - mean), axis=-1, keepdims=True)
    y = ((xg - mean) * lax.rsqrt(var + jnp.asarray(epsilon, dtype))).astype(x.dtype).reshape(x.shape)
    scale, bias = jnp.asarray(scale).astype(x.dtype), jnp.asarray(bias).astype(x.dtype)
    if ctx.version < 21:  # opset 18: scale and bias are per group
        scale, bias = jnp.repeat(scale, c // g), jnp.repeat(bias, c // g)
    return y * _channel(scale, x.ndim) + _channel(bias, x.ndim)


@register_op("RMSNormalization")
def rms_normalization(ctx: OpContext, x, scale, *, axis=-1, epsilon=1e-5, stash_type=1):
    x = jnp.asarray(x)
    axis = normalize_axis(axis, x.ndim)
    dtype = _stash(x, stash_type)
    xs = x.astype(dtype)
    ms = jnp.mean(jnp.square(xs), axis=tuple(range(axis, x.ndim)), keepdims=True)
    y = (xs * lax.rsqrt(ms + jnp.asarray(epsilon, dtype))).astype(x.dtype)
    return y * jnp.asarray(scale).astype(x.dtype)


@register_op("LRN")
def lrn(ctx: OpContext, x, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    x = jnp.asarray(x)
    size = int(size)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    square = jnp.square(x)
    window = (1, size) + (1,) * (x.ndim - 2)
    padding = ((0, 0), (lo, hi)) + ((0, 0),) * (x.ndim - 2)
    total = lax.reduce_window(square, jnp.asarray(0, x.dtype), lax.add, window, (1,) * x.ndim, padding)
    return x / (bias + (alpha / size) * total) ** beta


@register_op("MeanVarianceNormalization")
def mean_variance_normalization(ctx: OpContext, x, *, axes=(0, 2, 3)):
    x = jnp.asarray(x)
    axes = normalize_axes(axes, x.ndim)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x), axis=axes, keepdims=True) - jnp.square(mean)
    return (x - mean) / (jnp.sqrt(var) + jnp.asarray(1e-9, x.dtype))


@register_op("LpNormalization")
def lp_normalization(ctx: OpContext, x, *, axis=-1, p=2):
    x = jnp.asarray(x)
    axis = normalize_axis(axis, x.ndim)
    if int(p) == 1:
        norm = jnp.sum(jnp.abs(x), axis=axis, keepdims=True)
    else:
        norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    safe = jnp.where(norm == 0, jnp.ones((), x.dtype), norm)
    return jnp.where(norm == 0, jnp.zeros((), x.dtype), x / safe)
