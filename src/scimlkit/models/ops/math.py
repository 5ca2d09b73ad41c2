"""Elementwise math, logic, comparison, bitwise and linear-algebra ONNX operators.

Kernels follow ONNX semantics exactly where NumPy/JAX differ: integer `Div`
truncates toward zero, `Mod` rounds the quotient per its `fmod` attribute, `Pow`
returns the base's dtype, `Round` rounds half to even, `Min`/`Max` propagate NaN,
`TopK` breaks ties by the lower index, and opset < 7 binary ops honour the legacy
`broadcast`/`axis` attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._registry import OpContext, register_op
from ._util import OpAttributeError, index_dtype, is_string, legacy_broadcast, normalize_axis

# --------------------------------------------------------------------------- elementwise helpers


def _unary(op_type: str, fn: Callable[[Any], Any]) -> None:
    def kernel(ctx: OpContext, x: Any, **_legacy: Any) -> Any:  # opset 1 carried `consumed_inputs`
        return fn(jnp.asarray(x))

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


def _binary(
    op_type: str, fn: Callable[[Any, Any], Any], *, strings: Callable[[Any, Any], Any] | None = None
) -> None:
    def kernel(
        ctx: OpContext,
        a: Any,
        b: Any,
        *,
        broadcast: int = 0,
        axis: int | None = None,
        **_legacy: Any,
    ) -> Any:
        if strings is not None and (is_string(a) or is_string(b)):
            return strings(np.asarray(a), np.asarray(b))
        a, b = legacy_broadcast(a, b, broadcast, axis)
        return fn(jnp.asarray(a), jnp.asarray(b))

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


def _is_int(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jnp.integer)


def _div(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        return lax.div(a, b.astype(a.dtype))  # C semantics: truncate toward zero
    return a / b


def _pow(x: Any, y: Any) -> Any:
    # ONNX: the output has the base's type; the exponent may have another numeric type.
    if x.dtype == y.dtype:
        return jnp.power(x, y)
    common = jnp.result_type(x, y)
    if jnp.issubdtype(common, jnp.integer) and jnp.issubdtype(x.dtype, jnp.integer):
        return jnp.power(x.astype(common), y.astype(common)).astype(x.dtype)
    ftype = jnp.promote_types(common, jnp.float32)
    return jnp.power(x.astype(ftype), y.astype(ftype)).astype(x.dtype)


def _bitshift_mask(x: Any, y: Any) -> Any:
    bits = jnp.iinfo(x.dtype).bits
    return (y < 0) | (y >= bits)


_binary("Add", jnp.add)
_binary("Sub", jnp.subtract)
_binary("Mul", jnp.multiply)
_binary("Div", _div)
_binary("Pow", _pow)
_binary("And", jnp.logical_and)
_binary("Or", jnp.logical_or)
_binary("Xor", jnp.logical_xor)
_binary("Equal", jnp.equal, strings=lambda a, b: np.asarray(a == b, dtype=bool))
_binary("Greater", jnp.greater)
_binary("Less", jnp.less)
_binary("GreaterOrEqual", jnp.greater_equal)
_binary("LessOrEqual", jnp.less_equal)
_binary("BitwiseAnd", jnp.bitwise_and)
_binary("BitwiseOr", jnp.bitwise_or)
_binary("BitwiseXor", jnp.bitwise_xor)

_unary("Neg", jnp.negative)
_unary("Abs", jnp.abs)
_unary("Sign", jnp.sign)
_unary("Reciprocal", jnp.reciprocal)
_unary("Sqrt", jnp.sqrt)
_unary("Exp", jnp.exp)
_unary("Log", jnp.log)
_unary("Floor", jnp.floor)
_unary("Ceil", jnp.ceil)
_unary("Round", jnp.round)  # half to even, as ONNX
_unary("Sin", jnp.sin)
_unary("Cos", jnp.cos)
_unary("Tan", jnp.tan)
_unary("Asin", jnp.arcsin)
_unary("Acos", jnp.arccos)
_unary("Atan", jnp.arctan)
_unary("Sinh", jnp.sinh)
_unary("Cosh", jnp.cosh)
_unary("Tanh", jnp.tanh)
_unary("Asinh", jnp.arcsinh)
_unary("Acosh", jnp.arccosh)
_unary("Atanh", jnp.arctanh)
_unary("Erf", jax.scipy.special.erf)
_unary("IsNaN", jnp.isnan)
_unary("Not", jnp.logical_not)
_unary("BitwiseNot", jnp.bitwise_not)


@register_op("Mod")
def mod(ctx: OpContext, a: Any, b: Any, *, fmod: int = 0) -> Any:
    a, b = jnp.asarray(a), jnp.asarray(b)
    if fmod:
        return jnp.fmod(a, b)  # sign of the dividend (C fmod)
    if _is_int(a):
        return jnp.remainder(a, b)  # sign of the divisor (Python %)
    r = jnp.fmod(a, b)
    fix = (r != 0) & ((r < 0) != (b < 0))
    r = jnp.where(fix, r + b, r)
    # ±0 takes the sign of the divisor; x finite, b = ±inf with opposite signs gives b
    return jnp.where(r == 0, jnp.copysign(jnp.zeros_like(r), b), r)


@register_op("BitShift")
def bitshift(ctx: OpContext, x: Any, y: Any, *, direction: str = "") -> Any:
    x, y = jnp.asarray(x), jnp.asarray(y)
    x, y = jnp.broadcast_arrays(x, y)
    y = y.astype(x.dtype)
    if isinstance(direction, bytes):
        direction = direction.decode()
    out_of_range = _bitshift_mask(x, y)
    safe = jnp.where(out_of_range, 0, y).astype(x.dtype)
    if direction.upper() == "LEFT":
        return jnp.where(out_of_range, jnp.zeros_like(x), jnp.left_shift(x, safe))
    if direction.upper() == "RIGHT":
        fill = (
            jnp.where(x < 0, -1, 0).astype(x.dtype)
            if jnp.issubdtype(x.dtype, jnp.signedinteger)
            else 0
        )
        return jnp.where(out_of_range, fill, jnp.right_shift(x, safe))
    raise OpAttributeError(
        f"{ctx.describe()}: direction must be 'LEFT' or 'RIGHT', got {direction!r}"
    )


@register_op("IsInf")
def isinf(ctx: OpContext, x: Any, *, detect_negative: int = 1, detect_positive: int = 1) -> Any:
    x = jnp.asarray(x)
    result = jnp.zeros(x.shape, bool)
    if detect_positive:
        result = result | (x == jnp.inf)
    if detect_negative:
        result = result | (x == -jnp.inf)
    return result


# --------------------------------------------------------------------------- variadic


def _variadic(op_type: str, fn: Callable[[Any, Any], Any], *, mean: bool = False) -> None:
    def kernel(ctx: OpContext, *xs: Any, **_legacy: Any) -> Any:
        xs = [jnp.asarray(x) for x in xs if x is not None]
        if not xs:
            raise OpAttributeError(f"{ctx.describe()}: needs at least one input")
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        if mean:
            out = out / len(xs) if not _is_int(out) else out // len(xs)
        return out

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


_variadic("Max", jnp.maximum)  # NaN propagates, as ONNX
_variadic("Min", jnp.minimum)
_variadic("Sum", jnp.add)
_variadic("Mean", jnp.add, mean=True)


# --------------------------------------------------------------------------- selection


@register_op("Where")
def where(ctx: OpContext, condition: Any, x: Any, y: Any) -> Any:
    if is_string(x) or is_string(y):
        return np.where(ctx.static(condition, "condition"), np.asarray(x), np.asarray(y))
    return jnp.where(condition, x, y)


@register_op("Clip")
def clip(ctx: OpContext, x: Any, min: Any = None, max: Any = None) -> Any:
    # before opset 11 min/max were attributes; they arrive under the same names
    x = jnp.asarray(x)
    if min is not None:
        x = jnp.maximum(x, jnp.asarray(min, x.dtype))
    if max is not None:
        x = jnp.minimum(x, jnp.asarray(max, x.dtype))
    return x


@register_op("Trilu")
def trilu(ctx: OpContext, x: Any, k: Any = None, *, upper: int = 1) -> Any:
    x = jnp.asarray(x)
    offset = (
        0 if k is None else jnp.asarray(k).reshape(-1)[0]
    )  # may be traced: only a mask depends on it
    rows = lax.broadcasted_iota(index_dtype(), x.shape[-2:], 0)
    cols = lax.broadcasted_iota(rows.dtype, x.shape[-2:], 1)
    keep = (cols - rows >= offset) if upper else (cols - rows <= offset)
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


@register_op("TopK")
def topk(
    ctx: OpContext, x: Any, k: Any = None, *, axis: int = -1, largest: int = 1, sorted: int = 1
) -> Any:
    x = jnp.asarray(x)
    kk = int(ctx.static(k, "K").reshape(-1)[0])  # an attribute before opset 10, an input after
    axis = normalize_axis(axis, x.ndim)
    if not 0 <= kk <= x.shape[axis]:
        raise OpAttributeError(f"{ctx.describe()}: K={kk} is outside [0, {x.shape[axis]}]")
    moved = jnp.moveaxis(x, axis, -1)
    key = moved
    if key.dtype == jnp.bool_:
        key = key.astype(jnp.int8)
    if not largest:
        key = (
            -key if jnp.issubdtype(key.dtype, jnp.inexact) else ~key
        )  # order reversing, no overflow
    # lax.top_k puts the lower index first among equal values, as ONNX requires.
    _, idx = lax.top_k(key, kk)
    values = jnp.take_along_axis(moved, idx, axis=-1)
    return jnp.moveaxis(values, -1, axis), jnp.moveaxis(idx.astype(index_dtype()), -1, axis)


# --------------------------------------------------------------------------- cumulative


def _cumulative(op_type: str, fn: Callable[..., Any], identity: int) -> None:
    def kernel(ctx: OpContext, x: Any, axis: Any, *, exclusive: int = 0, reverse: int = 0) -> Any:
        x = jnp.asarray(x)
        ax = normalize_axis(int(ctx.static(axis, "axis").reshape(-1)[0]), x.ndim)
        if reverse:
            x = jnp.flip(x, ax)
        out = fn(x, axis=ax, dtype=x.dtype)
        if exclusive:
            pad = [(0, 0)] * x.ndim
            pad[ax] = (1, 0)
            out = jnp.pad(
                lax.slice_in_dim(out, 0, x.shape[ax] - 1, axis=ax), pad, constant_values=identity
            )
        if reverse:
            out = jnp.flip(out, ax)
        return out

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


_cumulative("CumSum", jnp.cumsum, 0)
_cumulative("CumProd", jnp.cumprod, 1)


# --------------------------------------------------------------------------- linear algebra


@register_op("MatMul")
def matmul(ctx: OpContext, a: Any, b: Any) -> Any:
    return jnp.matmul(a, b)


@register_op("Gemm")
def gemm(
    ctx: OpContext,
    a: Any,
    b: Any,
    c: Any = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    broadcast: int = 0,
) -> Any:
    a, b = jnp.asarray(a), jnp.asarray(b)
    if transA:
        a = a.T
    if transB:
        b = b.T
    y = jnp.matmul(a, b)
    if alpha != 1.0:
        y = (y * jnp.asarray(alpha, y.dtype)).astype(y.dtype)
    if c is not None:
        c = jnp.asarray(c)
        if beta != 1.0:
            c = (c * jnp.asarray(beta, c.dtype)).astype(c.dtype)
        y = y + c
    return y


@register_op("Einsum")
def einsum(ctx: OpContext, *xs: Any, equation: str | bytes = "") -> Any:
    if isinstance(equation, bytes):
        equation = equation.decode()
    equation = equation.replace(" ", "")
    try:
        return jnp.einsum(equation, *[jnp.asarray(x) for x in xs])
    except ValueError as exc:
        raise OpAttributeError(f"{ctx.describe()}: invalid equation {equation!r}: {exc}") from exc


@register_op("Det")
def det(ctx: OpContext, x: Any) -> Any:
    return jnp.linalg.det(jnp.asarray(x))
