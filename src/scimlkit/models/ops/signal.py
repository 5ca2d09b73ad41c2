"""Signal kernels: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

ONNX stores complex tensors as real tensors with a trailing axis of 2 (real, imag);
real signals have a trailing axis of 1. Windows and mel matrices depend only on their
(static) sizes, so they are built in NumPy and fold into constants.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._registry import OpContext, register_op
from ._util import normalize_axis, np_dtype


def _to_complex(x):
    x = jnp.asarray(x)
    if x.shape[-1] == 1:
        # Real signals transform in double precision where available, as NumPy does
        # (float32 FFTs of long sums are off by ~1e-6 where the exact value is 0).
        wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        return x[..., 0].astype(jnp.promote_types(x.dtype, wide))
    return jax.lax.complex(x[..., 0], x[..., 1])


def _to_real(c, dtype):
    return jnp.stack([jnp.real(c), jnp.imag(c)], axis=-1).astype(dtype)


def _scalar(ctx: OpContext, value, what: str) -> int:
    return int(ctx.static(value, what).reshape(-1)[0])


def _dft(x, length: int | None, axis: int, *, inverse: bool, onesided: bool):
    x = jnp.asarray(x)
    dtype = x.dtype
    if length is None:
        length = 2 * (x.shape[axis] - 1) if (inverse and onesided) else x.shape[axis]
    signal = _to_complex(x)
    if inverse:
        if onesided:
            return jnp.fft.irfft(signal, n=length, axis=axis)[..., None].astype(dtype)
        return _to_real(jnp.fft.ifft(signal, n=length, axis=axis), dtype)
    result = jnp.fft.fft(signal, n=length, axis=axis)
    if onesided:
        result = jnp.take(result, jnp.arange(length // 2 + 1), axis=axis)
    return _to_real(result, dtype)


@register_op("DFT")
def dft(ctx: OpContext, x, dft_length=None, axis_input=None, *, axis=None, inverse=0, onesided=0):
    x = jnp.asarray(x)
    if ctx.version >= 20:
        axis = -2 if axis_input is None else _scalar(ctx, axis_input, "axis")
    else:
        axis = 1 if axis is None else int(axis)
    axis = normalize_axis(axis, x.ndim)
    length = None if dft_length is None else _scalar(ctx, dft_length, "dft_length")
    return _dft(x, length, axis, inverse=bool(inverse), onesided=bool(onesided))


@register_op("STFT")
def stft(ctx: OpContext, signal, frame_step, window=None, frame_length=None, *, onesided=1):
    x = jnp.asarray(signal)
    step = _scalar(ctx, frame_step, "frame_step")
    if frame_length is not None:
        length = _scalar(ctx, frame_length, "frame_length")
    elif window is not None:
        length = int(jnp.shape(window)[0])
    else:
        length = int(x.shape[-2])
    frames = 1 + (x.shape[-2] - length) // step
    index = np.arange(frames)[:, None] * step + np.arange(length)[None, :]  # (frames, length)
    framed = x[:, index, :]  # (batch, frames, length, 1|2)
    if window is not None:
        framed = framed * jnp.asarray(window, x.dtype)[None, None, :, None]
    return _dft(framed, length, 2, inverse=False, onesided=bool(onesided))


def _window(ctx: OpContext, size, periodic, output_datatype, terms: tuple[float, ...]):
    n = _scalar(ctx, size, "size")
    denom = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    w = np.zeros(n)
    for i, a in enumerate(terms):
        w = w + ((-1) ** i) * a * np.cos(2 * np.pi * i * k / denom)
    return w.astype(np_dtype(int(output_datatype)))


@register_op("HannWindow")
def hann_window(ctx: OpContext, size, *, output_datatype=1, periodic=1):
    return _window(ctx, size, periodic, output_datatype, (0.5, 0.5))


@register_op("HammingWindow")
def hamming_window(ctx: OpContext, size, *, output_datatype=1, periodic=1):
    return _window(ctx, size, periodic, output_datatype, (25 / 46, 1 - 25 / 46))


@register_op("BlackmanWindow")
def blackman_window(ctx: OpContext, size, *, output_datatype=1, periodic=1):
    return _window(ctx, size, periodic, output_datatype, (0.42, 0.5, 0.08))


@register_op("MelWeightMatrix")
def mel_weight_matrix(
    ctx: OpContext, num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *, output_datatype=1
):
    bins = _scalar(ctx, num_mel_bins, "num_mel_bins")
    length = _scalar(ctx, dft_length, "dft_length")
    rate = _scalar(ctx, sample_rate, "sample_rate")
    low = float(ctx.static(lower_edge_hertz, "lower_edge_hertz").reshape(-1)[0])
    high = float(ctx.static(upper_edge_hertz, "upper_edge_hertz").reshape(-1)[0])
    # Triangular filters between mel-spaced edges, on the DFT bins (as the ONNX spec's reference).
    mel_low = 2595 * np.log10(1 + low / 700)
    mel_high = 2595 * np.log10(1 + high / 700)
    edges = np.arange(bins + 2) * ((mel_high - mel_low) / (bins + 2)) + mel_low
    hertz = 700 * (10 ** (edges / 2595) - 1)
    points = (((length + 1) * hertz) // rate).astype(int)
    out = np.zeros((length // 2 + 1, bins))
    for i in range(bins):
        left, center, right = points[i], points[i + 1], points[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            j = np.arange(left, center + 1)
            out[j, i] = (j - left) / (center - left)
        if right > center:
            j = np.arange(center, right)
            out[j, i] = (right - j) / (right - center)
    return out.astype(np_dtype(int(output_datatype)))
