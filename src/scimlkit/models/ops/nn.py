"""Neural-network kernels: Dropout, Attention, RotaryEmbedding, LinearAttention and the
losses NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._registry import OpContext, register_op
from ._util import OpAttributeError, np_dtype

# ============================================================================ Dropout


@register_op("Dropout")
def dropout(ctx: OpContext, data, ratio=None, training_mode=None, *, seed=None, is_test=0, consumed_inputs=None):
    data = jnp.asarray(data)
    if ctx.version >= 12:
        rate = 0.5 if ratio is None else float(ctx.static(ratio, "ratio").reshape(-1)[0])
        training = training_mode is not None and bool(ctx.static(training_mode, "training_mode").reshape(-1)[0])
    else:  # ratio is an attribute before opset 12; `is_test` before 7
        rate = 0.5 if ratio is None else float(ratio)
        training = ctx.version < 7 and not is_test
    mask_dtype = jnp.bool_ if ctx.version >= 10 else data.dtype
    if not training or rate == 0.0:
        mask = jnp.ones(data.shape, mask_dtype)
        return (data, mask)[: max(ctx.num_outputs, 1)] if ctx.num_outputs > 1 else data
    key = jax.random.PRNGKey(0 if seed is None else int(seed))
    keep = jax.random.uniform(key, data.shape) >= rate
    out = jnp.where(keep, data / jnp.asarray(1.0 - rate, data.dtype), jnp.zeros((), data.dtype))
    return (out, keep.astype(mask_dtype)) if ctx.num_outputs > 1 else out


# ============================================================================ Attention


def _heads(x: jax.Array, num_heads: int) -> jax.Array:
    """(B, S, H * D) -> (B, H, S, D)."""
    b, s, hd = x.shape
    return x.reshape((b, s, num_heads, hd // num_heads)).transpose(0, 2, 1, 3)


def _window_bias(q_len: int, kv_len: int, offset, *, causal: bool, left: int, right: int):
    """Boolean `allowed` of shape (q, kv) or (B, 1, q, kv) for a per-batch offset."""
    i = jnp.arange(q_len)[:, None]
    j = jnp.arange(kv_len)[None, :]
    per_batch = jnp.ndim(offset) > 0
    pos = i + (jnp.reshape(offset, (-1, 1, 1)) if per_batch else offset)
    allowed = jnp.ones(jnp.broadcast_shapes(jnp.shape(pos), j.shape), bool)
    if causal:
        allowed &= j <= pos
    if left >= 0:
        allowed &= pos - j <= left
    if right >= 0:
        allowed &= j - pos <= right
    return allowed[:, None] if per_batch else allowed


def _share_kv_heads(k: jax.Array, v: jax.Array, heads_q: int) -> tuple[jax.Array, jax.Array]:
    """Grouped-query attention: repeat each K/V head for its contiguous group of query heads."""
    group = heads_q // k.shape[1]
    return (k, v) if group == 1 else (jnp.repeat(k, group, axis=1), jnp.repeat(v, group, axis=1))


@register_op("Attention")
def attention(
    ctx: OpContext,
    q,
    k,
    v,
    attn_mask=None,
    past_key=None,
    past_value=None,
    nonpad_kv_seqlen=None,
    *,
    is_causal=0,
    kv_num_heads=None,
    q_num_heads=None,
    qk_matmul_output_mode=0,
    scale=None,
    softcap=0.0,
    softmax_precision=None,
    left_window_size=-1,
    right_window_size=-1,
):
    q, k, v = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
    dtype = q.dtype
    packed = q.ndim == 3
    if packed:
        if q_num_heads is None or kv_num_heads is None:
            raise OpAttributeError(f"{ctx.describe()}: 3-D inputs need q_num_heads and kv_num_heads")
        q, k, v = _heads(q, int(q_num_heads)), _heads(k, int(kv_num_heads)), _heads(v, int(kv_num_heads))
    if past_key is not None:
        k = jnp.concatenate([jnp.asarray(past_key, dtype), k], axis=2)
        v = jnp.concatenate([jnp.asarray(past_value, dtype), v], axis=2)
    present_key, present_value = k, v
    q_len, kv_len = q.shape[2], k.shape[2]
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else float(scale)
    root = jnp.asarray(np.sqrt(scale), dtype)

    # Additive bias (q, kv) or broadcastable to (B, H, q, kv).
    bias = jnp.zeros((q_len, kv_len), dtype)
    if attn_mask is not None:
        mask = jnp.asarray(attn_mask)
        pad = kv_len - mask.shape[-1]
        if pad > 0:
            fill = False if mask.dtype == jnp.bool_ else -jnp.inf
            mask = jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)], constant_values=fill)
        if mask.dtype == jnp.bool_:
            mask = jnp.where(mask, jnp.zeros((), dtype), jnp.asarray(-jnp.inf, dtype))
        bias = bias + mask.astype(dtype)
    if past_key is None and nonpad_kv_seqlen is not None:
        offset = jnp.asarray(nonpad_kv_seqlen).reshape(-1) - q_len
    else:
        offset = past_key.shape[2] if past_key is not None else 0
    left, right = int(left_window_size), int(right_window_size)
    if is_causal or left >= 0 or right >= 0:
        allowed = _window_bias(q_len, kv_len, offset, causal=bool(is_causal), left=left, right=right)
        bias = bias + jnp.where(allowed, jnp.zeros((), dtype), jnp.asarray(-jnp.inf, dtype))
    if nonpad_kv_seqlen is not None:
        valid = jnp.arange(kv_len)[None, :] < jnp.asarray(nonpad_kv_seqlen).reshape(-1, 1)
        bias = bias + jnp.where(valid, 0.0, -jnp.inf).astype(dtype)[:, None, None, :]

    k, v = _share_kv_heads(k, v, q.shape[1])
    qk = jnp.einsum("bhqd,bhkd->bhqk", q * root, k * root)
    raw = qk
    if softcap and float(softcap) > 0:
        qk = jnp.tanh(qk / float(softcap)) * float(softcap)
    capped = qk
    logits = qk + bias
    if softmax_precision is not None:
        logits = logits.astype(np_dtype(int(softmax_precision)))
    row_max = jnp.max(logits, axis=-1, keepdims=True)
    row_max = jnp.where(jnp.isneginf(row_max), jnp.zeros((), logits.dtype), row_max)
    e = jnp.exp(logits - lax.stop_gradient(row_max))
    total = jnp.sum(e, axis=-1, keepdims=True)
    probs = e / jnp.where(total == 0, jnp.ones((), total.dtype), total)
    dead = jnp.isneginf(jnp.max(bias, axis=-1, keepdims=True))
    probs = jnp.where(dead, jnp.zeros((), probs.dtype), probs).astype(dtype)
    y = jnp.einsum("bhqk,bhkd->bhqd", probs, v)
    if packed:
        y = y.transpose(0, 2, 1, 3).reshape((y.shape[0], q_len, -1))
    mode = int(qk_matmul_output_mode)
    qk_out = {0: raw, 1: capped, 2: logits, 3: probs}.get(mode, raw).astype(dtype)
    outputs = (y, present_key, present_value, qk_out)
    return outputs[: ctx.num_outputs] if ctx.num_outputs > 1 else y


@register_op("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: OpContext, q, k, v, *, scale=None, score_mod=None, prob_mod=None, softmax_precision=None):
    """Scaled dot-product attention with optional `score_mod` / `prob_mod` subgraphs.

    `(B, Hq, L, E)` queries against `(B, Hkv, S, E)` keys and `(B, Hkv, S, Ev)` values
    (grouped-query when `Hq` is a multiple of `Hkv`). The scores are computed in the
    input dtype from `sqrt(scale)`-scaled `q` and `k`, then cast to the softmax precision
    (float32 for 16-bit inputs unless `softmax_precision` says otherwise), where the
    modifiers, the softmax and the product with `v` run; the result has `v`'s dtype.
    """
    q, k, v = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise OpAttributeError(
            f"{ctx.describe()}: Q, K and V must be rank 4 (batch, heads, sequence, head size), "
            f"got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    heads_q, heads_kv = q.shape[1], k.shape[1]
    if v.shape[1] != heads_kv or v.shape[2] != k.shape[2] or k.shape[3] != q.shape[3]:
        raise OpAttributeError(
            f"{ctx.describe()}: K {k.shape} and V {v.shape} must share heads and sequence length, "
            f"and K's head size must be Q's {q.shape[3]}"
        )
    if heads_q % heads_kv:
        raise OpAttributeError(f"{ctx.describe()}: {heads_q} query heads are not a multiple of {heads_kv} K/V heads")
    k, v = _share_kv_heads(k, v, heads_q)
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else float(scale)
    root = jnp.asarray(np.sqrt(np.float32(scale)), q.dtype)
    scores = jnp.einsum("bhqd,bhkd->bhqk", q * root, k * root)
    if softmax_precision is not None:
        compute = np_dtype(int(softmax_precision))
    else:
        compute = np.dtype(np.float32) if jnp.finfo(q.dtype).bits < 32 else np.dtype(q.dtype)
    scores = scores.astype(compute)

    def modify(graph, value):
        out = ctx.subgraph(graph, [value])
        if len(out) != 1:
            raise OpAttributeError(f"{ctx.describe()}: a modifier subgraph must return one tensor, got {len(out)}")
        return jnp.asarray(out[0]).astype(compute)

    if score_mod is not None:
        scores = modify(score_mod, scores)
    e = jnp.exp(scores - lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
    probs = e / jnp.sum(e, axis=-1, keepdims=True)
    if prob_mod is not None:
        probs = modify(prob_mod, probs)
    return jnp.einsum("bhqk,bhkd->bhqd", probs, v.astype(compute)).astype(v.dtype)


@register_op("RotaryEmbedding")
def rotary_embedding(
    ctx: OpContext, x, cos_cache, sin_cache, position_ids=None, *, interleaved=0, num_heads=0, rotary_embedding_dim=0
):
    x = jnp.asarray(x)
    shape = x.shape
    if x.ndim == 4:  # (B, H, S, D) -> (B, S, H, D)
        x = x.transpose(0, 2, 1, 3)
    else:
        if not num_heads:
            raise OpAttributeError(f"{ctx.describe()}: 3-D input needs the num_heads attribute")
        x = x.reshape((shape[0], shape[1], int(num_heads), -1))
    head = x.shape[3]
    dim = int(rotary_embedding_dim) or head
    rot, keep = x[..., :dim], x[..., dim:]
    cos, sin = jnp.asarray(cos_cache), jnp.asarray(sin_cache)
    if position_ids is not None:
        ids = jnp.asarray(position_ids).astype(jnp.int32)
        cos, sin = cos[ids], sin[ids]
    cos, sin = cos[:, :, None, :].astype(x.dtype), sin[:, :, None, :].astype(x.dtype)
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., : dim // 2], rot[..., dim // 2 :]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        rot = jnp.stack([real, imag], axis=-1).reshape(rot.shape)
    else:
        rot = jnp.concatenate([real, imag], axis=-1)
    y = jnp.concatenate([rot, keep], axis=-1)
    return y.reshape(shape) if len(shape) == 3 else y.transpose(0, 2, 1, 3)


@register_op("LinearAttention")
def linear_attention(
    ctx: OpContext,
    query,
    key,
    value,
    past_state=None,
    decay=None,
    beta=None,
    *,
    chunk_size=64,
    kv_num_heads,
    q_num_heads,
    scale=0.0,
    update_rule="gated_delta",
):
    rule = update_rule.decode() if isinstance(update_rule, bytes) else str(update_rule)
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise OpAttributeError(f"{ctx.describe()}: unknown update_rule {rule!r}")
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if (decay is None) == gating or (beta is None) == delta:
        raise OpAttributeError(f"{ctx.describe()}: update_rule {rule!r} needs decay={gating}, beta={delta}")
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    out_dtype = query.dtype
    hq, hkv = int(q_num_heads), int(kv_num_heads)
    b, t, _ = query.shape
    d_k = query.shape[-1] // hq
    d_v = value.shape[-1] // hkv
    f32 = jnp.promote_types(jnp.float32, out_dtype) if jnp.finfo(out_dtype).bits > 32 else jnp.float32
    q4 = _heads(query, hq).astype(f32)
    k4 = _heads(key, hkv).astype(f32)
    v4 = _heads(value, hkv).astype(f32)
    zeros_t = jnp.zeros((b, hkv, t, 1), f32)
    if gating:
        decay = jnp.asarray(decay)
        g4 = (
            decay.reshape((b, t, hkv, 1)).transpose(0, 2, 1, 3)
            if decay.shape[-1] == hkv
            else _heads(decay, hkv)
        ).astype(f32)
    else:
        g4 = zeros_t
    if delta:
        beta = jnp.asarray(beta)
        b4 = beta.reshape((b, t, beta.shape[-1], 1)).transpose(0, 2, 1, 3).astype(f32)
        b4 = jnp.broadcast_to(b4, (b, hkv, t, 1))
    else:
        b4 = zeros_t
    if past_state is not None:
        state_dtype = jnp.asarray(past_state).dtype
        state0 = jnp.asarray(past_state).astype(f32)
    else:
        state_dtype = out_dtype
        state0 = jnp.zeros((b, hkv, d_k, d_v), f32)
    scale_val = float(scale) if scale else 1.0 / np.sqrt(d_k)
    group = hq // hkv

    def step(state, xs):
        q_t, k_t, v_t, g_t, b_t = xs
        if gating:
            state = state * jnp.exp(g_t)[..., None]
        if delta:
            v_t = b_t * (v_t - jnp.einsum("bhdm,bhd->bhm", state, k_t))
        state = state + k_t[..., :, None] * v_t[..., None, :]
        read = jnp.repeat(state, group, axis=1) if group > 1 else state
        return state, scale_val * jnp.einsum("bhd,bhdm->bhm", q_t, read)

    xs = tuple(jnp.moveaxis(a, 2, 0) for a in (q4, k4, v4, g4, b4))
    state, outs = lax.scan(step, state0, xs)  # outs: (T, B, Hq, d_v)
    output = jnp.transpose(outs, (1, 0, 2, 3)).reshape((b, t, hq * d_v)).astype(out_dtype)
    return output, state.astype(state_dtype)


# ============================================================================ losses


def _nll(ctx: OpContext, log_prob, target, weight, reduction, ignore_index):
    log_prob = jnp.asarray(log_prob)
    target = jnp.asarray(target)
    classes = log_prob.shape[1]
    safe = target.astype(jnp.int32)
    ignored = None
    if ignore_index is not None:
        ignored = safe == int(ignore_index)
        safe = jnp.where(ignored, 0, safe)
    picked = jnp.take_along_axis(log_prob, jnp.clip(safe, 0, classes - 1)[:, None], axis=1)[:, 0]
    w = jnp.ones_like(picked) if weight is None else jnp.asarray(weight, log_prob.dtype)[jnp.clip(safe, 0, classes - 1)]
    if ignored is not None:
        w = jnp.where(ignored, jnp.zeros((), w.dtype), w)
    loss = -picked * w
    reduction = reduction.decode() if isinstance(reduction, bytes) else str(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    if reduction == "mean":
        return jnp.sum(loss) / jnp.sum(w)
    raise OpAttributeError(f"{ctx.describe()}: unknown reduction {reduction!r}")


@register_op("NegativeLogLikelihoodLoss")
def negative_log_likelihood_loss(ctx: OpContext, x, target, weight=None, *, ignore_index=None, reduction="mean"):
    return _nll(ctx, x, target, weight, reduction, ignore_index)


@register_op("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy_loss(ctx: OpContext, scores, labels, weights=None, *, ignore_index=None, reduction="mean"):
    scores = jnp.asarray(scores)
    log_prob = jax.nn.log_softmax(scores, axis=1)
    loss = _nll(ctx, log_prob, labels, weights, reduction, ignore_index)
    return (loss, log_prob) if ctx.num_outputs > 1 else loss
