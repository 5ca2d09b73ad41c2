"""Helpers shared by the op kernels: ONNX dtypes, axes, array-module dispatch, legacy broadcasting.

Kept small and stable: kernels in every family (and format readers) import from here.

```python
from scimlkit.models.ops._util import np_dtype, normalize_axes, xp

np_dtype(1)                    # dtype('float32')  (TensorProto.FLOAT)
normalize_axes([-1, 0], 3)     # (2, 0)
xp(np.ones(3)) is np           # True: all inputs static -> NumPy; any JAX array -> jax.numpy
```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from ..errors import ModelError
from ._registry import is_static

# --------------------------------------------------------------------------- dtypes

#: ONNX `TensorProto.DataType` enum value -> NumPy dtype (strings are NumPy object arrays).
ONNX_TO_NUMPY: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    8: np.dtype(object),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
    14: np.dtype(np.complex64),
    15: np.dtype(np.complex128),
    16: np.dtype(ml_dtypes.bfloat16),
    17: np.dtype(ml_dtypes.float8_e4m3fn),
    18: np.dtype(ml_dtypes.float8_e4m3fnuz),
    19: np.dtype(ml_dtypes.float8_e5m2),
    20: np.dtype(ml_dtypes.float8_e5m2fnuz),
    21: np.dtype(ml_dtypes.uint4),
    22: np.dtype(ml_dtypes.int4),
    23: np.dtype(ml_dtypes.float4_e2m1fn),
    24: np.dtype(ml_dtypes.float8_e8m0fnu),
    25: np.dtype(ml_dtypes.uint2),
    26: np.dtype(ml_dtypes.int2),
    27: np.dtype(ml_dtypes.float6_e2m3fn),
    28: np.dtype(ml_dtypes.float6_e3m2fn),
}

#: ONNX enum value -> TensorProto name (for messages).
ONNX_TYPE_NAMES: dict[int, str] = {
    1: "FLOAT",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "STRING",
    9: "BOOL",
    10: "FLOAT16",
    11: "DOUBLE",
    12: "UINT32",
    13: "UINT64",
    14: "COMPLEX64",
    15: "COMPLEX128",
    16: "BFLOAT16",
    17: "FLOAT8E4M3FN",
    18: "FLOAT8E4M3FNUZ",
    19: "FLOAT8E5M2",
    20: "FLOAT8E5M2FNUZ",
    21: "UINT4",
    22: "INT4",
    23: "FLOAT4E2M1",
    24: "FLOAT8E8M0",
    25: "UINT2",
    26: "INT2",
    27: "FLOAT6E2M3",
    28: "FLOAT6E3M2",
}

_NUMPY_TO_ONNX: dict[np.dtype, int] = {dt: code for code, dt in ONNX_TO_NUMPY.items()}
_NUMPY_TO_ONNX[np.dtype(np.str_)] = 8


def np_dtype(onnx_type: int) -> np.dtype:
    """The NumPy dtype of an ONNX `TensorProto.DataType` value.

    Raises:
        UnsupportedDTypeError: for UNDEFINED or unknown enum values.

    Example:
        >>> np_dtype(7)
        dtype('int64')
    """
    try:
        return ONNX_TO_NUMPY[int(onnx_type)]
    except (KeyError, TypeError, ValueError):
        raise UnsupportedDTypeError(
            f"ONNX element type {onnx_type!r} is not supported; known types are "
            + ", ".join(f"{k} ({v})" for k, v in ONNX_TYPE_NAMES.items())
        ) from None


def onnx_dtype(dtype: Any) -> int:
    """The ONNX `TensorProto.DataType` value of a NumPy (or ml_dtypes / JAX) dtype.

    Example:
        >>> onnx_dtype(np.float32)
        1
    """
    dt = np.dtype(dtype)
    if dt.kind in "US":
        return 8
    try:
        return _NUMPY_TO_ONNX[dt]
    except KeyError:
        raise UnsupportedDTypeError(f"NumPy dtype {dt} has no ONNX element type") from None


def is_string(value: Any) -> bool:
    """True for NumPy arrays of strings (object or unicode/bytes dtype)."""
    return isinstance(value, np.ndarray | np.generic) and np.asarray(value).dtype.kind in "OUS"


# --------------------------------------------------------------------------- errors


class UnsupportedDTypeError(ModelError, TypeError):
    """An ONNX element type (or NumPy dtype) that scimlkit cannot represent."""


class OpAttributeError(ModelError, ValueError):
    """A node's attributes or static inputs are invalid for its operator."""


# --------------------------------------------------------------------------- array modules


def all_static(*values: Any) -> bool:
    """True if every non-None value is known at trace time (NumPy or Python scalar)."""
    return all(v is None or is_static(v) for v in values)


def xp(*values: Any) -> Any:
    """`numpy` when every non-None value is static, else `jax.numpy`.

    Data-movement kernels use this so that shape arithmetic, strings and exact ONNX
    dtypes (int64 without `jax_enable_x64`) stay in NumPy at trace time.
    """
    return np if all_static(*values) else jnp


def index_dtype() -> np.dtype:
    """int64, or int32 when JAX runs without `jax_enable_x64` (ONNX index outputs)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


# --------------------------------------------------------------------------- axes


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """Map a possibly negative ONNX axis into `[0, rank)`.

    Example:
        >>> normalize_axis(-1, 4)
        3
    """
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise OpAttributeError(f"{what} {axis} is out of range for a tensor of rank {rank}")
    return axis + rank if axis < 0 else axis


def normalize_axes(axes: Iterable[int], rank: int, what: str = "axes") -> tuple[int, ...]:
    """Normalise a list of axes (negative allowed); duplicates raise.

    Example:
        >>> normalize_axes([-1, 0], 3)
        (2, 0)
    """
    out = tuple(normalize_axis(a, rank, what) for a in np.asarray(axes).reshape(-1).tolist())
    if len(set(out)) != len(out):
        raise OpAttributeError(f"{what} {list(out)} contains duplicates")
    return out


def int_list(value: Any) -> list[int]:
    """A static 0-d or 1-d integer tensor (or sequence) as a list of Python ints."""
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


# --------------------------------------------------------------------------- broadcasting


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Multidirectional (NumPy) broadcast of shapes, as ONNX opset >= 7 defines it."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError as exc:
        raise OpAttributeError(
            f"shapes {[tuple(s) for s in shapes]} cannot be broadcast together"
        ) from exc


def legacy_broadcast(
    a: Any, b: Any, broadcast: int = 0, axis: int | None = None
) -> tuple[Any, Any]:
    """ONNX opset < 7 unidirectional broadcasting of `b` onto `a` (`broadcast`/`axis` attributes).

    With `broadcast=1`, `b`'s shape must match a contiguous run of `a`'s dims starting at
    `axis` (default: suffix match). Returns `(a, b')` with `b'` reshaped to broadcast
    numpy-style.
    """
    if not broadcast:
        return a, b
    ra, rb = np.ndim(a), np.ndim(b)
    if axis is None or rb == 0:
        return a, b
    axis = normalize_axis(axis, ra)
    trailing = ra - axis - rb
    if trailing < 0:
        raise OpAttributeError(
            f"legacy broadcast: B of rank {rb} does not fit A of rank {ra} at axis {axis}"
        )
    return a, b.reshape(tuple(np.shape(b)) + (1,) * trailing)
