"""Convolution kernels: Conv, ConvTranspose, DeformConv, Col2Im, CausalConvWithState.

All work in ONNX's channels-first layout (N, C, D1, ..., Dn) and lower to
`jax.lax.conv_general_dilated`, whose default dimension numbers are exactly that layout,
so no transposes are inserted (XLA:CPU's layout assignment runs chains of them
channels-last by itself). Depthwise convolutions are slices computed channels-last, so
that they do not break such chains (see `_depthwise_taps`). `conv_nd` is the shared core
(QLinearConv and ConvInteger reuse it).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._registry import OpContext, register_op

__all__ = ["conv_nd", "conv_pads", "conv_transpose_nd"]


# ----------------------------------------------------------------------------- helpers


def _ints(values: Sequence[int] | None, n: int, default: int) -> list[int]:
    return [default] * n if values is None or len(values) == 0 else [int(v) for v in values]


def _auto_pad(auto_pad: str | bytes) -> str:
    return auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)


def conv_pads(
    auto_pad: str,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
) -> list[int]:
    """ONNX padding `[x1_begin, ..., x1_end, ...]` of a convolution or pooling window.

    `auto_pad` is ONNX's attribute: `NOTSET` keeps `pads` (default zeros), `VALID` pads
    nothing, `SAME_UPPER`/`SAME_LOWER` pad so that `out = ceil(in / stride)`, putting the
    odd element at the end (upper) or the beginning (lower).
    """
    n = len(spatial)
    auto_pad = _auto_pad(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-int(size) // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - int(size))
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        return begins + ends
    if auto_pad == "VALID":
        return [0] * (2 * n)
    return _ints(pads, 2 * n, 0)


def conv_nd(
    x: jax.Array,
    w: jax.Array,
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    group: int = 1,
    preferred_element_type: jnp.dtype | None = None,
) -> jax.Array:
    """N-d convolution (cross-correlation) in ONNX layout.

    **Arguments:**

    - `x`: input `(N, C, D1, ..., Dn)`.
    - `w`: weights `(M, C / group, k1, ..., kn)`.
    - `strides`, `dilations`: one value per spatial axis.
    - `pads`: ONNX order `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`.
    - `group`: number of channel groups.

    **Returns:** `(N, M, O1, ..., On)`.

    **Example:**

    ```python
    y = conv_nd(x, w, strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1)
    ```
    """
    n = x.ndim - 2
    padding = [(int(pads[i]), int(pads[i + n])) for i in range(n)]
    if _use_depthwise_taps(x, w, group, preferred_element_type):
        return _depthwise_taps(x, w, strides, padding, dilations)
    if _use_pointwise_dot(x, w, group, pads, preferred_element_type):
        return _pointwise_dot(x, w, strides)
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(int(s) for s in strides),
        padding=padding,
        rhs_dilation=tuple(int(d) for d in dilations),
        feature_group_count=int(group),
        preferred_element_type=preferred_element_type,
    )


def _use_depthwise_taps(x, w, group, preferred_element_type) -> bool:
    """Depthwise convolutions with small kernels run faster as a sum of shifted slices
    (one fused elementwise loop) than as XLA:CPU's grouped convolution."""
    return (
        int(group) > 1
        and int(group) == x.shape[1] == w.shape[0]
        and w.shape[1] == 1
        and int(np.prod(w.shape[2:])) <= 49
        and preferred_element_type is None
        and jnp.issubdtype(x.dtype, jnp.floating)
    )


def _depthwise_taps(x, w, strides, padding, dilations):
    """Depthwise convolution `(N, C, *S)` as a sum of strided slices times per-channel weights.

    The slices are taken channels-last, between a transpose in and a transpose out:
    XLA:CPU runs the surrounding convolutions channels-last, so its layout assignment
    turns both transposes into no-ops and a network's whole chain of convolutions stays
    channels-last (computed channels-first, each depthwise convolution would cost two
    real transposes of its activations).
    """
    n = x.ndim - 2
    dtype = x.dtype
    if jnp.finfo(dtype).bits < 32:  # accumulate half precision in float32, as convolutions do
        x = x.astype(jnp.float32)
    x = jnp.transpose(x, (0, *range(2, n + 2), 1))
    xp = jnp.pad(x, [(0, 0), *padding, (0, 0)])
    kernel = w.shape[2:]
    out_shape = [
        (xp.shape[1 + a] - (kernel[a] - 1) * int(dilations[a]) - 1) // int(strides[a]) + 1 for a in range(n)
    ]
    y = None
    for tap in itertools.product(*[range(k) for k in kernel]):
        start = [t * int(d) for t, d in zip(tap, dilations)]
        limit = [st + (o - 1) * int(s) + 1 for st, o, s in zip(start, out_shape, strides)]
        piece = lax.slice(
            xp, (0, *start, 0), (xp.shape[0], *limit, xp.shape[-1]), (1, *(int(s) for s in strides), 1)
        )
        weight = w[(slice(None), 0, *tap)].astype(x.dtype)  # (C,): broadcasts on the last axis
        y = piece * weight if y is None else y + piece * weight
    return jnp.transpose(y, (0, n + 1, *range(1, n + 1))).astype(dtype)


def _use_pointwise_dot(x, w, group, pads, preferred_element_type) -> bool:
    """Unpadded 1x1 convolutions run ~2x faster as a matrix product than as XLA:CPU's
    convolution (its matrix-multiply kernel reaches the CPU's peak, its convolution does not)."""
    return (
        int(group) == 1
        and all(int(k) == 1 for k in w.shape[2:])
        and not any(int(p) for p in pads)
        and preferred_element_type is None
        and x.dtype in (jnp.float32, jnp.float64)
    )


def _pointwise_dot(x, w, strides):
    """1x1 convolution `(N, C, *S)` as a channels-last matrix product with `(M, C)`.

    Strides subsample after the transpose in; the transposes in and out fold away between
    neighbouring convolutions (see `_depthwise_taps`).
    """
    n = x.ndim - 2
    x = jnp.transpose(x, (0, *range(2, n + 2), 1))
    if any(int(s) != 1 for s in strides):  # subsample channels-last: the layout stays channels-last
        x = x[(slice(None), *(slice(None, None, int(s)) for s in strides), slice(None))]
    y = jnp.matmul(x, w.reshape(w.shape[0], w.shape[1]).T, precision=lax.Precision.HIGHEST)
    return jnp.transpose(y, (0, n + 1, *range(1, n + 1)))


def conv_transpose_nd(
    x: jax.Array,
    w: jax.Array,
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
    group: int = 1,
) -> jax.Array:
    """N-d transposed convolution in ONNX layout; `w` is `(C, M / group, k1, ..., kn)`.

    Computed as a convolution of the stride-dilated input with the flipped kernel, so
    `output = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pads`.
    """
    n = x.ndim - 2
    c, m_per_group = w.shape[0], w.shape[1]
    kernel = w.shape[2:]
    # (C, M/g, k...) -> (g, C/g, M/g, k...) -> (g, M/g, C/g, k...) -> (M, C/g, k...)
    wt = w.reshape((group, c // group, m_per_group, *kernel))
    wt = jnp.swapaxes(wt, 1, 2).reshape((group * m_per_group, c // group, *kernel))
    wt = jnp.flip(wt, axis=tuple(range(2, 2 + n)))
    padding = []
    for i in range(n):
        span = (int(kernel[i]) - 1) * int(dilations[i])
        padding.append((span - int(pads[i]), span - int(pads[i + n]) + int(output_padding[i])))
    return lax.conv_general_dilated(
        x,
        wt,
        window_strides=(1,) * n,
        padding=padding,
        lhs_dilation=tuple(int(s) for s in strides),
        rhs_dilation=tuple(int(d) for d in dilations),
        feature_group_count=int(group),
    )


def _add_bias(y: jax.Array, b: jax.Array | None) -> jax.Array:
    if b is None:
        return y
    return y + jnp.reshape(b, (1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)


# ----------------------------------------------------------------------------- kernels


@register_op("Conv")
def conv(
    ctx: OpContext,
    x,
    w,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    x, w = jnp.asarray(x), jnp.asarray(w)
    n = x.ndim - 2
    kernel = _ints(kernel_shape, n, 1) if kernel_shape else [int(k) for k in w.shape[2:]]
    strides = _ints(strides, n, 1)
    dilations = _ints(dilations, n, 1)
    pads = conv_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    y = conv_nd(x, w.astype(x.dtype), strides=strides, pads=pads, dilations=dilations, group=group)
    return _add_bias(y, b)


@register_op("ConvTranspose")
def conv_transpose(
    ctx: OpContext,
    x,
    w,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    output_padding=None,
    output_shape=None,
    pads=None,
    strides=None,
):
    x, w = jnp.asarray(x), jnp.asarray(w)
    n = x.ndim - 2
    kernel = _ints(kernel_shape, n, 1) if kernel_shape else [int(k) for k in w.shape[2:]]
    strides = _ints(strides, n, 1)
    dilations = _ints(dilations, n, 1)
    output_padding = _ints(output_padding, n, 0)
    auto_pad = _auto_pad(auto_pad)
    spatial = x.shape[2:]
    full = [
        s * (i - 1) + op + (k - 1) * d + 1
        for s, i, op, k, d in zip(strides, spatial, output_padding, kernel, dilations)
    ]
    if output_shape:
        target = [int(v) for v in output_shape][-n:]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [int(i) * s for i, s in zip(spatial, strides)]
    else:
        target = None
    if target is not None:
        begins, ends = [], []
        for f, t in zip(full, target):
            total = f - t
            half = total // 2
            if auto_pad == "SAME_UPPER":
                begins.append(half)
                ends.append(total - half)
            else:
                begins.append(total - half)
                ends.append(half)
        pads = begins + ends
    elif auto_pad == "VALID":
        pads = [0] * (2 * n)
    else:
        pads = _ints(pads, 2 * n, 0)
    y = conv_transpose_nd(
        x,
        w.astype(x.dtype),
        strides=strides,
        pads=pads,
        dilations=dilations,
        output_padding=output_padding,
        group=group,
    )
    return _add_bias(y, b)


def _bilinear_gather(x: jax.Array, coords: jax.Array) -> jax.Array:
    """Sample `x` (N, G, Cg, *S) at real `coords` (N, G, P, n) with zeros outside.

    Returns (N, G, Cg, P): n-linear interpolation of the 2**n neighbours.
    """
    spatial = x.shape[3:]
    n = len(spatial)
    flat = x.reshape((*x.shape[:3], -1))
    base = jnp.floor(coords)
    frac = coords - base
    base = base.astype(jnp.int32)
    out = 0.0
    for corner in itertools.product((0, 1), repeat=n):
        weight = 1.0
        index = 0
        valid = True
        for axis, bit in enumerate(corner):
            pos = base[..., axis] + bit
            f = frac[..., axis]
            weight = weight * (f if bit else 1.0 - f)
            valid = valid & (pos >= 0) & (pos < spatial[axis])
            index = index * spatial[axis] + jnp.clip(pos, 0, spatial[axis] - 1)
        values = jnp.take_along_axis(flat, index[:, :, None, :], axis=3)
        out = out + values * jnp.where(valid, weight, 0.0).astype(x.dtype)[:, :, None, :]
    return out


@register_op("DeformConv")
def deform_conv(
    ctx: OpContext,
    x,
    w,
    offset,
    b=None,
    mask=None,
    *,
    dilations=None,
    group=1,
    kernel_shape=None,
    offset_group=1,
    pads=None,
    strides=None,
):
    x, w, offset = jnp.asarray(x), jnp.asarray(w), jnp.asarray(offset)
    batch, channels = x.shape[:2]
    n = x.ndim - 2
    kernel = _ints(kernel_shape, n, 1) if kernel_shape else [int(k) for k in w.shape[2:]]
    strides = _ints(strides, n, 1)
    dilations = _ints(dilations, n, 1)
    pads = _ints(pads, 2 * n, 0)
    out_spatial = tuple(offset.shape[2:])
    k_count = int(np.prod(kernel))
    o_count = int(np.prod(out_spatial))
    og = int(offset_group)
    # Base sampling positions (K, O, n) without offsets, from attributes only.
    kpos = np.stack(np.meshgrid(*[np.arange(k) * d for k, d in zip(kernel, dilations)], indexing="ij"), -1)
    opos = np.stack(
        np.meshgrid(*[np.arange(o) * s - p for o, s, p in zip(out_spatial, strides, pads[:n])], indexing="ij"), -1
    )
    base = kpos.reshape(k_count, 1, n) + opos.reshape(1, o_count, n)
    off = offset.reshape((batch, og, k_count, n, o_count))
    off = jnp.moveaxis(off, 3, -1)  # (N, og, K, O, n)
    coords = (jnp.asarray(base, x.dtype) + off).reshape((batch, og, k_count * o_count, n))
    xg = x.reshape((batch, og, channels // og, *x.shape[2:]))
    cols = _bilinear_gather(xg, coords).reshape((batch, og, channels // og, k_count, o_count))
    if mask is not None:
        cols = cols * jnp.asarray(mask, x.dtype).reshape((batch, og, 1, k_count, o_count))
    cols = cols.reshape((batch, group, (channels // group) * k_count, o_count))
    m = w.shape[0]
    wg = jnp.asarray(w, x.dtype).reshape((group, m // group, (channels // group) * k_count))
    y = jnp.einsum("gmk,ngko->ngmo", wg, cols).reshape((batch, m, *out_spatial))
    return _add_bias(y, b)


@register_op("Col2Im")
def col2im(ctx: OpContext, x, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    image = [int(v) for v in ctx.static(image_shape, "image_shape")]
    block = [int(v) for v in ctx.static(block_shape, "block_shape")]
    n = len(image)
    strides = _ints(strides, n, 1)
    dilations = _ints(dilations, n, 1)
    pads = _ints(pads, 2 * n, 0)
    x = jnp.asarray(x)
    batch = x.shape[0]
    b_count = int(np.prod(block))
    channels = x.shape[1] // b_count
    padded = [i + pads[a] + pads[a + n] for a, i in enumerate(image)]
    counts = [(p - (k - 1) * d - 1) // s + 1 for p, k, d, s in zip(padded, block, dilations, strides)]
    # Destination of each (block element, sliding position) in the padded image.
    kpos = np.stack(np.meshgrid(*[np.arange(k) * d for k, d in zip(block, dilations)], indexing="ij"), -1)
    lpos = np.stack(np.meshgrid(*[np.arange(c) * s for c, s in zip(counts, strides)], indexing="ij"), -1)
    pos = kpos.reshape(-1, 1, n) + lpos.reshape(1, -1, n)
    flat = np.ravel_multi_index(tuple(np.moveaxis(pos, -1, 0)), padded).reshape(-1)
    cols = x.reshape((batch, channels, -1))
    out = jnp.zeros((batch, channels, int(np.prod(padded))), x.dtype).at[:, :, flat].add(cols)
    out = out.reshape((batch, channels, *padded))
    index = tuple(slice(pads[a], pads[a] + image[a]) for a in range(n))
    return out[(slice(None), slice(None), *index)]


@register_op("CausalConvWithState")
def causal_conv_with_state(ctx: OpContext, x, w, b=None, past_state=None, *, activation="none"):
    x, w = jnp.asarray(x), jnp.asarray(w)
    batch, channels, _ = x.shape
    k = w.shape[-1]
    if past_state is None:
        past = jnp.zeros((batch, channels, k - 1), x.dtype)
    else:
        past = jnp.asarray(past_state, x.dtype)
    full = jnp.concatenate([past, x], axis=-1)
    y = conv_nd(full, w.astype(x.dtype), strides=[1], pads=[0, 0], dilations=[1], group=channels)
    y = _add_bias(y, b)
    act = activation.decode() if isinstance(activation, bytes) else activation
    if act in ("silu", "swish"):
        y = y * jax.nn.sigmoid(y)
    present = full[:, :, full.shape[-1] - (k - 1) :]
    return y, present
