"""Activation functions: Relu family, sigmoids, Softmax/LogSoftmax/Hardmax, Gelu, Mish, Swish, SwiGLU, ...

Softmax, LogSoftmax and Hardmax before opset 13 coerce the input to 2-D
(`[prod(shape[:axis]), prod(shape[axis:])]`, default `axis=1`) and normalise over the
second dimension; from 13 on they work along one `axis` (default -1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._registry import OpContext, register_op
from ._util import OpAttributeError, normalize_axis


def _const(x: Any, value: float) -> Any:
    return jnp.asarray(value, x.dtype)


def _elementwise(op_type: str, fn: Callable[..., Any]) -> None:
    def kernel(ctx: OpContext, x: Any, **attrs: Any) -> Any:
        attrs.pop("consumed_inputs", None)  # opset 1 legacy attribute
        return fn(jnp.asarray(x), **attrs)

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


def _relu(x: Any) -> Any:
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _leaky_relu(x: Any, alpha: float = 0.01) -> Any:
    return jnp.where(x >= 0, x, x * _const(x, alpha))


def _elu(x: Any, alpha: float = 1.0) -> Any:
    return jnp.where(x > 0, x, _const(x, alpha) * jnp.expm1(jnp.minimum(x, 0)))


def _selu(
    x: Any, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875
) -> Any:
    a, g = _const(x, alpha), _const(x, gamma)
    return jnp.where(x > 0, g * x, g * a * jnp.expm1(jnp.minimum(x, 0)))


def _celu(x: Any, alpha: float = 1.0) -> Any:
    a = _const(x, alpha)
    return jnp.maximum(x, 0) + jnp.minimum(jnp.zeros((), x.dtype), a * jnp.expm1(x / a))


def _gelu(x: Any, approximate: str | bytes = "none") -> Any:
    if isinstance(approximate, bytes):
        approximate = approximate.decode()
    if approximate not in ("none", "tanh"):
        raise OpAttributeError(f"Gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return jax.nn.gelu(x, approximate=approximate == "tanh")


def _hard_sigmoid(x: Any, alpha: float = 0.2, beta: float = 0.5) -> Any:
    return jnp.clip(_const(x, alpha) * x + _const(x, beta), 0, 1).astype(x.dtype)


def _hard_swish(x: Any) -> Any:
    return x * _hard_sigmoid(x, 1.0 / 6.0, 0.5)


def _softplus(x: Any) -> Any:
    return jnp.logaddexp(x, jnp.zeros((), x.dtype))


def _softsign(x: Any) -> Any:
    return x / (1 + jnp.abs(x))


def _thresholded_relu(x: Any, alpha: float = 1.0) -> Any:
    return jnp.where(x > _const(x, alpha), x, jnp.zeros((), x.dtype))


def _mish(x: Any) -> Any:
    return x * jnp.tanh(_softplus(x))


def _shrink(x: Any, bias: float = 0.0, lambd: float = 0.5) -> Any:
    b, lam = _const(x, bias), _const(x, lambd)
    zero = jnp.zeros((), x.dtype)
    return jnp.where(x < -lam, x + b, jnp.where(x > lam, x - b, zero))


def _swish(x: Any, alpha: float = 1.0) -> Any:
    return x * jax.nn.sigmoid(_const(x, alpha) * x)


_elementwise("Relu", _relu)
_elementwise("LeakyRelu", _leaky_relu)
_elementwise("Elu", _elu)
_elementwise("Selu", _selu)
_elementwise("Celu", _celu)
_elementwise("Gelu", _gelu)
_elementwise("Sigmoid", jax.nn.sigmoid)
_elementwise("HardSigmoid", _hard_sigmoid)
_elementwise("HardSwish", _hard_swish)
_elementwise("Softplus", _softplus)
_elementwise("Softsign", _softsign)
_elementwise("ThresholdedRelu", _thresholded_relu)
_elementwise("Mish", _mish)
_elementwise("Shrink", _shrink)
_elementwise("Swish", _swish)


@register_op("PRelu")
def prelu(ctx: OpContext, x: Any, slope: Any, **_legacy: Any) -> Any:
    x, slope = jnp.asarray(x), jnp.asarray(slope)
    if ctx.version < 7 and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1]:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))  # per-channel slope of old exporters
    return jnp.where(x < 0, x * slope.astype(x.dtype), x)


@register_op("SwiGLU")
def swiglu(ctx: OpContext, a: Any, b: Any, *, alpha: float = 1.0) -> Any:
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise OpAttributeError(
            f"{ctx.describe()}: A {a.shape} and B {b.shape} must have the same shape"
        )
    return _swish(a, alpha) * b


def _normalizer(op_type: str, fn: Callable[[Any, int], Any]) -> None:
    def kernel(ctx: OpContext, x: Any, *, axis: int | None = None) -> Any:
        x = jnp.asarray(x)
        if ctx.version >= 13:
            return fn(x, normalize_axis(-1 if axis is None else axis, x.ndim))
        ax = normalize_axis(1 if axis is None else axis, x.ndim) if x.ndim else 0
        shape = x.shape
        flat = x.reshape(math.prod(shape[:ax]), math.prod(shape[ax:]))
        return fn(flat, 1).reshape(shape)

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


def _hardmax(x: Any, axis: int) -> Any:
    idx = jnp.argmax(x, axis=axis)
    return jax.nn.one_hot(idx, x.shape[axis], axis=axis, dtype=x.dtype)


_normalizer("Softmax", lambda x, axis: jax.nn.softmax(x, axis=axis))
_normalizer("LogSoftmax", lambda x, axis: jax.nn.log_softmax(x, axis=axis))
_normalizer("Hardmax", _hardmax)
