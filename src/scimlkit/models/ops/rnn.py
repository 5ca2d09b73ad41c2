"""Recurrent layers: RNN, GRU and LSTM (every opset), run with `jax.lax.scan`.

Shapes follow ONNX: `X` is `[seq, batch, input]` (`layout=1`: `[batch, seq, input]`),
weights are stacked per direction, and gates are ordered `i o f c` (LSTM) and `z r h`
(GRU). Input projections for all time steps are computed in one matmul before the scan;
the scan carries only the recurrent part. `sequence_lens` masks finished batch entries:
their state is held and their outputs are zero, and the reverse direction starts at each
entry's own last step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..errors import ModelError
from ._registry import OpContext, register_op

Activation = Callable[[jax.Array], jax.Array]

# name -> (number of alpha values it consumes, of beta values, default alpha, default beta, fn)
_ACTIVATIONS: dict[str, tuple[int, int, float, float, Callable[..., jax.Array]]] = {
    "relu": (0, 0, 0.0, 0.0, lambda x, a, b: jax.nn.relu(x)),
    "tanh": (0, 0, 0.0, 0.0, lambda x, a, b: jnp.tanh(x)),
    "sigmoid": (0, 0, 0.0, 0.0, lambda x, a, b: jax.nn.sigmoid(x)),
    "affine": (1, 1, 1.0, 0.0, lambda x, a, b: a * x + b),
    "leakyrelu": (1, 0, 0.01, 0.0, lambda x, a, b: jnp.where(x >= 0, x, a * x)),
    "thresholdedrelu": (1, 0, 1.0, 0.0, lambda x, a, b: jnp.where(x > a, x, 0)),
    "scaledtanh": (1, 1, 1.0, 1.0, lambda x, a, b: a * jnp.tanh(b * x)),
    "hardsigmoid": (1, 1, 0.2, 0.5, lambda x, a, b: jnp.clip(a * x + b, 0, 1)),
    "elu": (1, 0, 1.0, 0.0, lambda x, a, b: jnp.where(x >= 0, x, a * (jnp.exp(x) - 1))),
    "softsign": (0, 0, 0.0, 0.0, lambda x, a, b: x / (1 + jnp.abs(x))),
    "softplus": (0, 0, 0.0, 0.0, lambda x, a, b: jax.nn.softplus(x)),
}


def _activations(
    ctx: OpContext,
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    defaults: tuple[str, ...],
    num_directions: int,
) -> list[Callable[[jax.Array], jax.Array]]:
    """One function per activation slot (f, g, h), each applied to `[direction, ...]` arrays.

    Names and alpha/beta values are consumed in order, as ONNX Runtime does; a slot whose
    function differs between the two directions is applied direction by direction.
    """
    names = list(names) if names else list(defaults) * num_directions
    if len(names) == len(defaults) and num_directions == 2:
        names = names * 2
    if len(names) != len(defaults) * num_directions:
        raise ModelError(
            f"{ctx.describe()}: expected {len(defaults) * num_directions} activations "
            f"({len(defaults)} per direction), got {names}"
        )
    alpha_iter, beta_iter = iter(alphas or ()), iter(betas or ())
    specs: list[tuple[str, float, float]] = []
    for name in names:
        key = (name.decode() if isinstance(name, bytes) else name).lower()
        if key not in _ACTIVATIONS:
            raise ModelError(f"{ctx.describe()}: unsupported activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
        n_alpha, n_beta, alpha, beta, _ = _ACTIVATIONS[key]
        if n_alpha:
            alpha = next(alpha_iter, alpha)
        if n_beta:
            beta = next(beta_iter, beta)
        specs.append((key, float(alpha), float(beta)))
    per = len(defaults)
    return [_slot([specs[d * per + k] for d in range(num_directions)]) for k in range(per)]


def _slot(specs: list[tuple[str, float, float]]) -> Callable[[jax.Array], jax.Array]:
    def one(spec: tuple[str, float, float]) -> Callable[[jax.Array], jax.Array]:
        key, a, b = spec
        fn = _ACTIVATIONS[key][4]
        return lambda x: fn(x, a, b)

    if len(set(specs)) == 1:
        return one(specs[0])
    fns = [one(spec) for spec in specs]
    return lambda x: jnp.stack([fn(x[d]) for d, fn in enumerate(fns)])


def _num_directions(ctx: OpContext, direction: str | bytes) -> tuple[str, int]:
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelError(f"{ctx.describe()}: direction must be forward, reverse or bidirectional, got {direction!r}")
    return direction, 2 if direction == "bidirectional" else 1


def _reverse_index(seq_len: int, lengths: jax.Array | None, batch: int) -> jax.Array | None:
    """Time index [seq, batch] that reverses each batch entry within its own length."""
    t = jnp.arange(seq_len)[:, None]
    if lengths is None:
        return jnp.broadcast_to(seq_len - 1 - t, (seq_len, batch))
    return jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _time_gather(x: jax.Array, index: jax.Array) -> jax.Array:
    """x[index[t, b], b, ...] for x of shape [seq, batch, ...]."""
    return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=0)


def _run(
    ctx: OpContext,
    X: Any,
    W: Any,
    R: Any,
    B: Any,
    sequence_lens: Any,
    initial_states: Sequence[Any],
    *,
    gates: int,
    step: Callable[..., tuple[tuple[jax.Array, ...], jax.Array]],
    direction: str,
    layout: int,
    hidden_size: int | None,
    extra: Sequence[Any] = (),
) -> tuple[jax.Array, ...]:
    """Shared driver: layout handling, directions, sequence lengths, output stacking.

    Both directions run in one `lax.scan` (the reverse one on time-reversed inputs), so
    `step(carry, xw_t, *extra, R, Rb)` sees `[direction, batch, ...]` arrays and returns
    (new carry, output h); `carry` is a tuple of states of shape [direction, batch, hidden].
    """
    X = jnp.asarray(X)
    if layout:
        X = jnp.swapaxes(X, 0, 1)
    dtype = X.dtype
    W, R = jnp.asarray(W, dtype), jnp.asarray(R, dtype)
    direction, num_dir = _num_directions(ctx, direction)
    hidden = int(hidden_size) if hidden_size else R.shape[-1]
    seq_len, batch = X.shape[0], X.shape[1]
    if W.shape[0] != num_dir or W.shape[1] != gates * hidden:
        raise ModelError(
            f"{ctx.describe()}: W has shape {tuple(W.shape)}, expected [{num_dir}, {gates * hidden}, input_size]"
        )
    B = jnp.zeros((num_dir, 2 * gates * hidden), dtype) if B is None else jnp.asarray(B, dtype)
    lengths = None if sequence_lens is None else jnp.asarray(sequence_lens).astype(jnp.int32)
    states = []
    for init in initial_states:
        if init is None:
            states.append(jnp.zeros((num_dir, batch, hidden), dtype))
        else:
            init = jnp.asarray(init, dtype)
            states.append(jnp.swapaxes(init, 0, 1) if layout else init)

    # Input projection for every step and direction at once: [dir, seq, batch, gates*hidden].
    xw = jnp.einsum("tbi,dgi->dtbg", X, W) + B[:, None, None, : gates * hidden]
    reversed_dirs = [direction == "reverse" or d == 1 for d in range(num_dir)]
    rev_index = _reverse_index(seq_len, lengths, batch) if any(reversed_dirs) else None
    xs = jnp.stack([_time_gather(xw[d], rev_index) if rev else xw[d] for d, rev in enumerate(reversed_dirs)], axis=1)
    # valid steps: the same mask in both time frames, since each entry is reversed within its length
    mask = None if lengths is None else (jnp.arange(seq_len)[:, None] < lengths[None, :])[:, None, :, None]
    extra_all = (*extra, R, B[:, gates * hidden :])

    def body(carry, inputs):
        xw_t, m_t = inputs
        new_carry, h = step(carry, xw_t, *extra_all)
        if m_t is not None:
            new_carry = tuple(jnp.where(m_t, n, c) for n, c in zip(new_carry, carry))
            h = jnp.where(m_t, h, jnp.zeros_like(h))
        return new_carry, h

    final, y = jax.lax.scan(body, tuple(states), (xs, mask))  # y: [seq, dir, batch, hidden]
    if any(reversed_dirs):
        y = jnp.stack([_time_gather(y[:, d], rev_index) if rev else y[:, d] for d, rev in enumerate(reversed_dirs)],
                      axis=1)
    outs = [y, *final]
    if layout:
        outs = [jnp.transpose(y, (2, 0, 1, 3))] + [jnp.swapaxes(o, 0, 1) for o in outs[1:]]
    return tuple(outs)


def _recur(h: jax.Array, R: jax.Array) -> jax.Array:
    """`h @ R^T` per direction: [dir, batch, hidden] x [dir, gates, hidden] -> [dir, batch, gates]."""
    return jnp.einsum("dbh,dgh->dbg", h, R)


def _clip(x: jax.Array, clip: float | None) -> jax.Array:
    return x if clip is None else jnp.clip(x, -clip, clip)


@register_op("RNN")
def rnn(
    ctx: OpContext,
    X: Any,
    W: Any,
    R: Any,
    B: Any = None,
    sequence_lens: Any = None,
    initial_h: Any = None,
    *,
    activations: Sequence[str] | None = None,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
) -> tuple[jax.Array, ...]:
    """Elman RNN: `H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)`."""
    _, num_dir = _num_directions(ctx, direction)
    (f,) = _activations(ctx, activations, activation_alpha, activation_beta, ("Tanh",), num_dir)

    def step(carry, xw_t, R, Rb):
        (h,) = carry
        h = f(_clip(xw_t + _recur(h, R) + Rb[:, None], clip))
        return (h,), h

    return _run(ctx, X, W, R, B, sequence_lens, [initial_h], gates=1, step=step,
                direction=direction, layout=layout, hidden_size=hidden_size)


@register_op("GRU")
def gru(
    ctx: OpContext,
    X: Any,
    W: Any,
    R: Any,
    B: Any = None,
    sequence_lens: Any = None,
    initial_h: Any = None,
    *,
    activations: Sequence[str] | None = None,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    layout: int = 0,
    linear_before_reset: int = 0,
) -> tuple[jax.Array, ...]:
    """Gated recurrent unit, gates `z r h`, with both `linear_before_reset` variants."""
    _, num_dir = _num_directions(ctx, direction)
    f, g = _activations(ctx, activations, activation_alpha, activation_beta, ("Sigmoid", "Tanh"), num_dir)

    def step(carry, xw_t, R, Rb):
        (h,) = carry
        n = R.shape[-1]
        Rb = Rb[:, None]
        xz, xr, xh = xw_t[..., :n], xw_t[..., n : 2 * n], xw_t[..., 2 * n :]
        hzr = _recur(h, R[:, : 2 * n]) + Rb[..., : 2 * n]
        z = f(_clip(xz + hzr[..., :n], clip))
        r = f(_clip(xr + hzr[..., n:], clip))
        if linear_before_reset:
            hh = g(_clip(xh + r * (_recur(h, R[:, 2 * n :]) + Rb[..., 2 * n :]), clip))
        else:
            hh = g(_clip(xh + _recur(r * h, R[:, 2 * n :]) + Rb[..., 2 * n :], clip))
        h = (1 - z) * hh + z * h
        return (h,), h

    return _run(ctx, X, W, R, B, sequence_lens, [initial_h], gates=3, step=step,
                direction=direction, layout=layout, hidden_size=hidden_size)


@register_op("LSTM")
def lstm(
    ctx: OpContext,
    X: Any,
    W: Any,
    R: Any,
    B: Any = None,
    sequence_lens: Any = None,
    initial_h: Any = None,
    initial_c: Any = None,
    P: Any = None,
    *,
    activations: Sequence[str] | None = None,
    activation_alpha: Sequence[float] | None = None,
    activation_beta: Sequence[float] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    input_forget: int = 0,
    layout: int = 0,
) -> tuple[jax.Array, ...]:
    """Long short-term memory, gates `i o f c`, with peepholes `P = [Pi, Po, Pf]`."""
    _, num_dir = _num_directions(ctx, direction)
    f, g, hf = _activations(ctx, activations, activation_alpha, activation_beta, ("Sigmoid", "Tanh", "Tanh"), num_dir)
    if P is not None:
        P = jnp.asarray(P, jnp.asarray(X).dtype)[:, None]  # [dir, 1, 3 * hidden]

    def step(carry, xw_t, P, R, Rb):
        h, c = carry
        n = R.shape[-1]
        gates = xw_t + _recur(h, R) + Rb[:, None]
        gi, go, gf, gc = (gates[..., k * n : (k + 1) * n] for k in range(4))
        if P is not None:
            gi = gi + P[..., :n] * c
            gf = gf + P[..., 2 * n :] * c
        i = f(_clip(gi, clip))
        fg = 1 - i if input_forget else f(_clip(gf, clip))
        c_new = fg * c + i * g(_clip(gc, clip))
        if P is not None:
            go = go + P[..., n : 2 * n] * c_new
        o = f(_clip(go, clip))
        h_new = o * hf(c_new)
        return (h_new, c_new), h_new

    return _run(ctx, X, W, R, B, sequence_lens, [initial_h, initial_c], gates=4, step=step,
                direction=direction, layout=layout, hidden_size=hidden_size, extra=(P,))

