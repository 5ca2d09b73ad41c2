"""Random kernels: RandomNormal, RandomUniform, their *Like forms, Bernoulli, Multinomial.

Draws use `jax.random` with a key made from the node's `seed` attribute, so a model is
a pure function: the same seed gives the same numbers on every call. Without a seed the
key is derived from the node's name (ONNX leaves the stream unspecified), so distinct
nodes still draw independent numbers. The streams differ from ONNX Runtime's and NumPy's:
only shapes, dtypes and distributions are comparable.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np

from ._registry import OpContext, register_op
from ._util import np_dtype


def _key(ctx: OpContext, seed) -> jax.Array:
    if seed is None:
        value = zlib.crc32(f"{ctx.node.name}/{ctx.node.op_type}/{','.join(ctx.node.outputs)}".encode())
    else:
        value = int(np.float32(seed).view(np.uint32))
    return jax.random.PRNGKey(value)


def _dtype(dtype, like=None) -> np.dtype:
    if dtype is None:
        return np.dtype(jnp.asarray(like).dtype) if like is not None else np.dtype(np.float32)
    return np_dtype(int(dtype))


def _normal(ctx, shape, dtype, mean, scale, seed):
    draw = jax.random.normal(_key(ctx, seed), tuple(int(d) for d in shape), jnp.float32)
    return (draw * scale + mean).astype(dtype)


def _uniform(ctx, shape, dtype, low, high, seed):
    draw = jax.random.uniform(_key(ctx, seed), tuple(int(d) for d in shape), jnp.float32, low, high)
    return draw.astype(dtype)


@register_op("RandomNormal")
def random_normal(ctx: OpContext, *, shape, dtype=1, mean=0.0, scale=1.0, seed=None):
    return _normal(ctx, shape, _dtype(dtype), float(mean), float(scale), seed)


@register_op("RandomNormalLike")
def random_normal_like(ctx: OpContext, x, *, dtype=None, mean=0.0, scale=1.0, seed=None):
    return _normal(ctx, jnp.shape(x), _dtype(dtype, x), float(mean), float(scale), seed)


@register_op("RandomUniform")
def random_uniform(ctx: OpContext, *, shape, dtype=1, high=1.0, low=0.0, seed=None):
    return _uniform(ctx, shape, _dtype(dtype), float(low), float(high), seed)


@register_op("RandomUniformLike")
def random_uniform_like(ctx: OpContext, x, *, dtype=None, high=1.0, low=0.0, seed=None):
    return _uniform(ctx, jnp.shape(x), _dtype(dtype, x), float(low), float(high), seed)


@register_op("Bernoulli")
def bernoulli(ctx: OpContext, x, *, dtype=None, seed=None):
    p = jnp.asarray(x)
    draw = jax.random.uniform(_key(ctx, seed), p.shape, jnp.float32) < p.astype(jnp.float32)
    return draw.astype(_dtype(dtype, p))


@register_op("Multinomial")
def multinomial(ctx: OpContext, x, *, dtype=6, sample_size=1, seed=None):
    logits = jnp.asarray(x).astype(jnp.float32)  # unnormalized log-probabilities (batch, classes)
    draws = jax.random.categorical(_key(ctx, seed), logits, axis=-1, shape=(int(sample_size), logits.shape[0]))
    return draws.T.astype(np_dtype(int(dtype)))
