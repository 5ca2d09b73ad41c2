"""The 64-bit policy of `scimlkit.models`.

JAX computes in 32 bits unless `jax_enable_x64` is on, and importing `scimlkit.models`
never flips that switch. With x64 on, a model keeps its own dtypes exactly. With x64 off,
its 64-bit tensors (float64, int64, uint64, complex128) run as their 32-bit counterparts,
and a `UserWarning` says so once per process.

**Example:**

```python
import jax
jax.config.update("jax_enable_x64", True)   # before loading: run float64 models exactly
```
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

__all__ = ["NARROW", "narrow_dtype", "warn_64bit_once", "x64_enabled"]

NARROW = {
    np.dtype(np.float64): np.dtype(np.float32),
    np.dtype(np.int64): np.dtype(np.int32),
    np.dtype(np.uint64): np.dtype(np.uint32),
    np.dtype(np.complex128): np.dtype(np.complex64),
}
_warned = False


def x64_enabled() -> bool:
    """Whether JAX runs 64-bit types (`jax_enable_x64`)."""
    return bool(jax.config.read("jax_enable_x64"))


def narrow_dtype(dtype: Any) -> np.dtype:
    """The dtype JAX will actually use for `dtype` under the current x64 setting."""
    dtype = np.dtype(dtype)
    return dtype if x64_enabled() else NARROW.get(dtype, dtype)


def warn_64bit_once(what: str) -> None:
    """Warn (once per process) that 64-bit tensors run in 32 bits because x64 is off."""
    global _warned
    if _warned or x64_enabled():
        return
    _warned = True
    warnings.warn(
        f"{what} uses 64-bit tensors, but jax_enable_x64 is off, so they run as 32-bit. "
        "To keep them exact, call jax.config.update('jax_enable_x64', True) before loading.",
        UserWarning,
        stacklevel=3,
    )
