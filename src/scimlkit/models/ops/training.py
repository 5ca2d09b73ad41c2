"""Optimizer updates of `ai.onnx.preview.training`: Adagrad, Adam, Momentum.

Each op updates n tensors at once. Its variadic inputs come grouped by kind, `X_1..X_n`,
`G_1..G_n` (gradients), then the optimizer states (`H` for Adagrad; `V`, `H` for Adam; `V`
for Momentum), and its outputs the same way (`X_new`, then the new states). `R` is the
learning rate and `T` the update count, both scalars. The formulas are the pseudo code of
the ONNX operator specification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from ._registry import OpContext, register_op
from ._util import OpAttributeError

DOMAIN = "ai.onnx.preview.training"


def _groups(ctx: OpContext, tensors: Sequence[Any], kinds: int) -> list[list[Any]]:
    """Split the variadic inputs into `kinds` equal groups (X, G, states...)."""
    if len(tensors) % kinds:
        raise OpAttributeError(
            f"{ctx.describe()}: expected {kinds} groups of equally many tensors after R and T, "
            f"got {len(tensors)} tensors"
        )
    n = len(tensors) // kinds
    return [[jnp.asarray(t) for t in tensors[i * n : (i + 1) * n]] for i in range(kinds)]


def _scalar(value: Any) -> jnp.ndarray:
    return jnp.asarray(value).reshape(())


@register_op("Adagrad", domain=DOMAIN)
def adagrad(ctx: OpContext, r, t, *tensors, decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0):
    xs, gs, hs = _groups(ctx, tensors, 3)
    rate = _scalar(r) / (1 + _scalar(t) * decay_factor)
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        g = norm_coefficient * x + g
        h = h + g * g
        new_x.append((x - rate * g / (jnp.sqrt(h) + epsilon)).astype(x.dtype))
        new_h.append(h.astype(x.dtype))
    return tuple(new_x + new_h)


@register_op("Adam", domain=DOMAIN)
def adam(
    ctx: OpContext, r, t, *tensors, alpha=0.9, beta=0.999, epsilon=1e-6, norm_coefficient=0.0,
    norm_coefficient_post=0.0,
):
    xs, gs, vs, hs = _groups(ctx, tensors, 4)
    r, t = _scalar(r), _scalar(t)
    rate = jnp.where(t > 0, r * jnp.sqrt(1 - beta**t) / (1 - alpha**t), r)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        g = norm_coefficient * x + g
        v = alpha * v + (1 - alpha) * g
        h = beta * h + (1 - beta) * g * g
        x_new = (1 - norm_coefficient_post) * (x - rate * v / (jnp.sqrt(h) + epsilon))
        new_x.append(x_new.astype(x.dtype))
        new_v.append(v.astype(x.dtype))
        new_h.append(h.astype(x.dtype))
    return tuple(new_x + new_v + new_h)


@register_op("Momentum", domain=DOMAIN)
def momentum(ctx: OpContext, r, t, *tensors, alpha, beta, mode, norm_coefficient):
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in ("standard", "nesterov"):
        raise OpAttributeError(f"{ctx.describe()}: mode must be 'standard' or 'nesterov', not {mode!r}")
    xs, gs, vs = _groups(ctx, tensors, 3)
    r, t = _scalar(r), _scalar(t)
    beta_t = jnp.where(t > 0, beta, 1.0)
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        g = norm_coefficient * x + g
        v = alpha * v + beta_t * g
        step = g + alpha * v if mode == "nesterov" else v
        new_x.append((x - r * step).astype(x.dtype))
        new_v.append(v.astype(x.dtype))
    return tuple(new_x + new_v)
