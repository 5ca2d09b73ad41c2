"""Quantization: Quantize/DequantizeLinear (per tensor, per axis, blocked; integer, int4/int2
and float8/float4 outputs), DynamicQuantizeLinear, and the integer kernels QLinearMatMul,
QLinearConv, MatMulInteger and ConvInteger.

Integer products accumulate in int32 (`preferred_element_type`), as ONNX Runtime does;
requantization multiplies by `scale_a * scale_b / scale_y` in float32 and rounds half to
even. Narrow types come from `ml_dtypes` (`int4`, `float8_e4m3fn`, ...). Static inputs stay
in NumPy, so quantized weights fold at load time.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from ..errors import ModelError
from ._registry import OpContext, register_op
from ._util import normalize_axis, np_dtype, xp
from .conv import conv_nd, conv_pads

_FLOAT8 = {np.dtype(t) for t in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
                                 ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz)}
_SMALL_FLOATS = {np.dtype(t) for t in (ml_dtypes.float4_e2m1fn, ml_dtypes.float6_e2m3fn,
                                       ml_dtypes.float6_e3m2fn, ml_dtypes.float8_e8m0fnu)}


def _int_range(dtype: np.dtype) -> tuple[int, int] | None:
    """(min, max) of an integer quantized type (None for float types)."""
    try:
        info = ml_dtypes.iinfo(dtype)
    except (TypeError, ValueError):
        return None
    return int(info.min), int(info.max)


def _expand(ctx: OpContext, value: Any, shape: tuple[int, ...], axis: int, block_size: int) -> Any:
    """Make a scale / zero point broadcast against `x` (per tensor, per axis or blocked)."""
    mod = xp(value)
    if np.ndim(value) == 0 or (np.size(value) == 1 and not block_size):
        return mod.reshape(value, ())
    axis = normalize_axis(axis, len(shape))
    if not block_size:
        if np.ndim(value) != 1 or np.shape(value)[0] != shape[axis]:
            raise ModelError(
                f"{ctx.describe()}: per-axis scale/zero point of shape {np.shape(value)} does not match "
                f"dimension {shape[axis]} of axis {axis}"
            )
        dims = [1] * len(shape)
        dims[axis] = shape[axis]
        return mod.reshape(value, dims)
    if block_size < 0 or np.ndim(value) != len(shape):
        raise ModelError(f"{ctx.describe()}: blocked quantization needs a scale of rank {len(shape)} and block_size > 0")
    value = mod.repeat(value, block_size, axis=axis)
    value = mod.take(value, mod.arange(shape[axis]), axis=axis)
    if tuple(np.shape(value)) != tuple(shape):
        raise ModelError(
            f"{ctx.describe()}: blocked scale of shape {np.shape(value)} does not match input shape {tuple(shape)}"
        )
    return value


def _cast(mod: Any, x: Any, dtype: np.dtype) -> Any:
    if mod is jnp and dtype in (np.dtype(ml_dtypes.float6_e2m3fn), np.dtype(ml_dtypes.float6_e3m2fn)):
        raise ModelError(f"{dtype} tensors can only be produced from values known at load time")
    return x.astype(dtype)


def _divide(x: Any, scale: Any) -> Any:
    """`x / scale` rounded once to the working type, as NumPy and ONNX Runtime compute it.

    XLA's float32 division can be one ulp off, which moves values sitting at .5 across a
    rounding boundary; with x64 on, divide in float64 and round to float32 once.
    """
    if all(isinstance(v, np.ndarray | np.generic) for v in (x, scale)):
        return x / scale
    x, scale = jnp.asarray(x), jnp.asarray(scale)
    dtype = jnp.result_type(x, scale)
    if dtype == jnp.float32 and jax.config.jax_enable_x64:
        return (x.astype(jnp.float64) / scale.astype(jnp.float64)).astype(dtype)
    return x / scale


def _quantize(ctx: OpContext, x: Any, dtype: np.dtype, zero_point: Any = None, saturate: bool = True) -> Any:
    """Round/saturate the already scaled `x` into `dtype` and add the zero point."""
    mod = xp(x, zero_point)
    bounds = _int_range(dtype)
    if bounds is not None:
        q = mod.rint(x)
        if zero_point is not None:
            q = q + zero_point.astype(q.dtype)
        return mod.clip(q, *bounds).astype(dtype)
    if dtype in _FLOAT8:
        if saturate:
            limit = float(ml_dtypes.finfo(dtype).max)
            x = mod.clip(x, -limit, limit)
        return _cast(mod, x, dtype)
    if dtype in _SMALL_FLOATS:
        if zero_point is not None:
            x = x + zero_point.astype(x.dtype)
        return _cast(mod, x, dtype)
    raise ModelError(f"{ctx.describe()}: {dtype} is not a quantized type")


@register_op("QuantizeLinear")
def quantize_linear(
    ctx: OpContext,
    x: Any,
    y_scale: Any,
    y_zero_point: Any = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    saturate: int = 1,
    precision: int = 0,
) -> Any:
    """`saturate(round(x / y_scale) + y_zero_point)`, output type from the zero point or `output_dtype`."""
    if y_zero_point is not None:
        dtype = np.dtype(y_zero_point.dtype)
        if output_dtype and np_dtype(output_dtype) != dtype:
            raise ModelError(f"{ctx.describe()}: output_dtype {np_dtype(output_dtype)} differs from the zero point's {dtype}")
    else:
        dtype = np_dtype(output_dtype) if output_dtype else np.dtype(np.uint8)
    shape = tuple(np.shape(x))
    scale = _expand(ctx, y_scale, shape, axis, block_size)
    zp = None if y_zero_point is None else _expand(ctx, y_zero_point, shape, axis, block_size)
    if precision:
        work = np_dtype(precision)
        scaled = _divide(x.astype(work), scale.astype(work))
    else:
        scaled = _divide(x, scale)
    if dtype in _FLOAT8:
        zp = None  # ONNX requires a zero float8 zero point; it has no effect
    return _quantize(ctx, scaled, dtype, zp, bool(saturate))


@register_op("DequantizeLinear")
def dequantize_linear(
    ctx: OpContext,
    x: Any,
    x_scale: Any,
    x_zero_point: Any = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
) -> Any:
    """`(x - x_zero_point) * x_scale`, in the scale's type (or `output_dtype`)."""
    shape = tuple(np.shape(x))
    scale = _expand(ctx, x_scale, shape, axis, block_size)
    mod = xp(x, scale, x_zero_point)
    out_dtype = np_dtype(output_dtype) if output_dtype else np.dtype(x_scale.dtype)
    xf = x.astype(np.float32)
    if x_zero_point is not None and np.dtype(x.dtype) not in _FLOAT8 | _SMALL_FLOATS:
        xf = xf - _expand(ctx, x_zero_point, shape, axis, block_size).astype(np.float32)
    y = xf * (scale.astype(np.float32) if mod is np else jnp.asarray(scale, jnp.float32))
    return y.astype(out_dtype)


@register_op("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: OpContext, x: Any) -> tuple[Any, Any, Any]:
    """uint8 quantization with scale and zero point from the data's range (which includes 0)."""
    mod = xp(x)
    x = x.astype(np.float32)
    hi = mod.maximum(0.0, mod.max(x))
    lo = mod.minimum(0.0, mod.min(x))
    scale = mod.where(hi == lo, 1.0, hi - lo).astype(np.float32) / np.float32(255.0)
    zp = mod.rint(mod.clip(-_divide(lo, scale), 0.0, 255.0))
    y = mod.clip(mod.rint(_divide(x, scale)) + zp, 0, 255).astype(np.uint8)
    return y, scale, zp.astype(np.uint8)


# --------------------------------------------------------------------------- integer kernels


def _centered(x: Any, zero_point: Any, shape: tuple[int, ...] | None = None) -> Any:
    """`x - zero_point` in int32 (or float32 for float8 inputs); `shape` reshapes the zero point."""
    work = np.float32 if np.dtype(x.dtype) in _FLOAT8 else np.int32
    x = jnp.asarray(x).astype(work)
    if zero_point is None:
        return x
    zp = jnp.asarray(zero_point).astype(work)
    return x - (zp.reshape(shape) if shape is not None else zp)


def _row_shape(a: Any, zero_point: Any) -> tuple[int, ...] | None:
    """A 1-D per-row zero point/scale of `a` ([..., M, K]) becomes [M, 1]."""
    if zero_point is None or np.ndim(zero_point) != 1 or np.size(zero_point) == 1:
        return None
    return (int(np.size(zero_point)), 1)


def _matmul(a: Any, b: Any) -> Any:
    out = jnp.float32 if a.dtype == jnp.float32 or b.dtype == jnp.float32 else jnp.int32
    return jnp.matmul(a.astype(out), b.astype(out), preferred_element_type=out)


def _requantize(ctx: OpContext, acc: Any, multiplier: Any, y_zero_point: Any, fallback: np.dtype) -> Any:
    dtype = np.dtype(y_zero_point.dtype) if y_zero_point is not None else np.dtype(fallback)
    scaled = acc.astype(jnp.float32) * multiplier
    zp = None if y_zero_point is None else jnp.asarray(y_zero_point)
    if dtype in _FLOAT8:
        return _quantize(ctx, scaled, dtype, None)
    return _quantize(ctx, scaled, dtype, zp)


def _scale(value: Any, shape: tuple[int, ...] | None = None) -> Any:
    s = jnp.asarray(value, jnp.float32)
    return s.reshape(shape) if shape is not None else s


@register_op("MatMulInteger")
def matmul_integer(ctx: OpContext, A: Any, B: Any, a_zero_point: Any = None, b_zero_point: Any = None) -> Any:
    """`(A - a_zero_point) @ (B - b_zero_point)` accumulated in int32."""
    a = _centered(A, a_zero_point, _row_shape(A, a_zero_point))
    b = _centered(B, b_zero_point)
    return _matmul(a, b)


@register_op("QLinearMatMul")
def qlinear_matmul(
    ctx: OpContext, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any, b_zero_point: Any,
    y_scale: Any, y_zero_point: Any = None,
) -> Any:
    """Quantized matmul: integer product, then requantized with `a_scale * b_scale / y_scale`."""
    acc = _matmul(_centered(a, a_zero_point, _row_shape(a, a_zero_point)), _centered(b, b_zero_point))
    multiplier = _scale(a_scale, _row_shape(a, a_scale)) * _scale(b_scale) / _scale(y_scale)
    return _requantize(ctx, acc, multiplier, y_zero_point, np.dtype(a.dtype))


def _conv(
    ctx: OpContext, x: Any, w: Any, *, auto_pad: str, dilations: Any, group: int, kernel_shape: Any,
    pads: Any, strides: Any,
) -> Any:
    n = x.ndim - 2
    kernel = [int(k) for k in (kernel_shape or w.shape[2:])]
    strides = [int(s) for s in (strides or [1] * n)]
    dilations = [int(d) for d in (dilations or [1] * n)]
    pads = conv_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    return conv_nd(x, w, strides=strides, pads=pads, dilations=dilations, group=group,
                   preferred_element_type=x.dtype)


def _channel_shape(value: Any, rank: int) -> tuple[int, ...] | None:
    if value is None or np.ndim(value) != 1 or np.size(value) == 1:
        return None
    return (int(np.size(value)),) + (1,) * (rank - 1)


@register_op("ConvInteger")
def conv_integer(
    ctx: OpContext, x: Any, w: Any, x_zero_point: Any = None, w_zero_point: Any = None, *,
    auto_pad: str = "NOTSET", dilations: Any = None, group: int = 1, kernel_shape: Any = None,
    pads: Any = None, strides: Any = None,
) -> Any:
    """Integer convolution of `x - x_zero_point` and `w - w_zero_point` (per output channel), int32."""
    xc = _centered(x, x_zero_point)
    wc = _centered(w, w_zero_point, _channel_shape(w_zero_point, np.ndim(w)))
    return _conv(ctx, xc, wc, auto_pad=auto_pad, dilations=dilations, group=group,
                 kernel_shape=kernel_shape, pads=pads, strides=strides)


@register_op("QLinearConv")
def qlinear_conv(
    ctx: OpContext, x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any, w_zero_point: Any,
    y_scale: Any, y_zero_point: Any = None, B: Any = None, *,
    auto_pad: str = "NOTSET", dilations: Any = None, group: int = 1, kernel_shape: Any = None,
    pads: Any = None, strides: Any = None,
) -> Any:
    """Quantized convolution with int32 bias, requantized with `x_scale * w_scale / y_scale`."""
    rank = np.ndim(x)
    xc = _centered(x, x_zero_point)
    wc = _centered(w, w_zero_point, _channel_shape(w_zero_point, np.ndim(w)))
    acc = _conv(ctx, xc, wc, auto_pad=auto_pad, dilations=dilations, group=group,
                kernel_shape=kernel_shape, pads=pads, strides=strides)
    if B is not None:
        acc = acc + jnp.asarray(B).astype(acc.dtype).reshape((1, -1) + (1,) * (rank - 2))
    w_shape = None if np.size(w_scale) == 1 else (1, int(np.size(w_scale))) + (1,) * (rank - 2)
    multiplier = _scale(x_scale) * _scale(w_scale, w_shape) / _scale(y_scale)
    if w_shape is None:
        multiplier = multiplier.reshape(())
    return _requantize(ctx, acc, multiplier, y_zero_point, np.dtype(x.dtype))
