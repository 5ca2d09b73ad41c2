"""Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare, ArgMax, ArgMin.

`axes` is an attribute in early schema versions and an input later (ReduceSum from
13, the others from 18); both are read statically. An empty or missing `axes`
reduces over every axis unless `noop_with_empty_axes` is set. Reductions over an
empty set give the operation's identity (0, 1, -inf or +inf).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from ._registry import OpContext, register_op
from ._util import index_dtype, int_list, normalize_axes, normalize_axis


def _axes(ctx: OpContext, x: Any, axes: Any, noop_with_empty_axes: int) -> tuple[int, ...]:
    """Reduced axes; `()` for a noop, which still applies the elementwise part (ReduceSumSquare squares)."""
    axes_list = (
        [] if axes is None else int_list(ctx.static(axes, "axes"))
    )  # an attribute in early versions
    if not axes_list:
        return () if noop_with_empty_axes else tuple(range(jnp.ndim(x)))
    return normalize_axes(axes_list, jnp.ndim(x))


def _float(x: Any) -> Any:
    return (
        x
        if jnp.issubdtype(x.dtype, jnp.inexact)
        else x.astype(jnp.promote_types(x.dtype, jnp.float32))
    )


def _lowest(dtype: Any) -> Any:
    return (
        -jnp.inf
        if jnp.issubdtype(dtype, jnp.inexact)
        else (False if dtype == jnp.bool_ else jnp.iinfo(dtype).min)
    )


def _highest(dtype: Any) -> Any:
    return (
        jnp.inf
        if jnp.issubdtype(dtype, jnp.inexact)
        else (True if dtype == jnp.bool_ else jnp.iinfo(dtype).max)
    )


def _max(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.max(x, axis=axes, keepdims=keep, initial=_lowest(x.dtype))


def _min(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.min(x, axis=axes, keepdims=keep, initial=_highest(x.dtype))


def _sum(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.sum(x, axis=axes, keepdims=keep, dtype=x.dtype)


def _mean(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.mean(x, axis=axes, keepdims=keep)
    return jnp.mean(_float(x), axis=axes, keepdims=keep).astype(x.dtype)


def _prod(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.prod(x, axis=axes, keepdims=keep, dtype=x.dtype)


def _l1(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.sum(jnp.abs(x), axis=axes, keepdims=keep, dtype=x.dtype)


def _l2(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.sqrt(jnp.sum(jnp.square(_float(x)), axis=axes, keepdims=keep)).astype(x.dtype)


def _sum_square(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.sum(jnp.square(x), axis=axes, keepdims=keep, dtype=x.dtype)


def _log_sum(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    return jnp.log(jnp.sum(_float(x), axis=axes, keepdims=keep)).astype(x.dtype)


def _log_sum_exp(x: Any, axes: tuple[int, ...], keep: bool) -> Any:
    xf = _float(x)
    m = jnp.max(xf, axis=axes, keepdims=True, initial=-jnp.inf)
    m = jnp.where(jnp.isfinite(m), m, 0)
    s = jnp.log(jnp.sum(jnp.exp(xf - m), axis=axes, keepdims=True)) + m
    if not keep:
        s = jnp.squeeze(s, axis=axes)
    return s.astype(x.dtype)


def _reduction(op_type: str, fn: Callable[[Any, tuple[int, ...], bool], Any]) -> None:
    def kernel(
        ctx: OpContext,
        x: Any,
        axes: Any = None,
        *,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> Any:
        x = jnp.asarray(x)
        return fn(x, _axes(ctx, x, axes, noop_with_empty_axes), bool(keepdims))

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


_reduction("ReduceSum", _sum)
_reduction("ReduceMean", _mean)
_reduction("ReduceMax", _max)
_reduction("ReduceMin", _min)
_reduction("ReduceProd", _prod)
_reduction("ReduceL1", _l1)
_reduction("ReduceL2", _l2)
_reduction("ReduceSumSquare", _sum_square)
_reduction("ReduceLogSum", _log_sum)
_reduction("ReduceLogSumExp", _log_sum_exp)


def _arg(op_type: str, fn: Callable[..., Any]) -> None:
    def kernel(
        ctx: OpContext, x: Any, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
    ) -> Any:
        x = jnp.asarray(x)
        ax = normalize_axis(axis, x.ndim)
        if select_last_index:
            n = x.shape[ax]
            idx = (n - 1) - fn(jnp.flip(x, ax), axis=ax, keepdims=bool(keepdims))
        else:
            idx = fn(x, axis=ax, keepdims=bool(keepdims))
        return idx.astype(index_dtype())

    kernel.__name__ = op_type.lower()
    register_op(op_type)(kernel)


_arg("ArgMax", jnp.argmax)
_arg("ArgMin", jnp.argmin)
