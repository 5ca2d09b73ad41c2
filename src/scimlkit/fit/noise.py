"""Noise models: how a measurement scatters around an observable's prediction.

Each noise model has a scale (`sigma` for Gaussian and log-normal, `scale` for Laplace) given
as one of

- a number: known, the same for every point;
- a parameter name (`str`): estimated with the other parameters (declare a `Parameter`);
- a callable `sigma(t, y, p, prediction) -> scale`: any JAX expression (for example a
  proportional error model `lambda t, y, p, m: p["s_abs"] + p["s_rel"] * m`).

An `Experiment` may also carry per-measurement scales (`sigma=` array), which win.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import jax.numpy as jnp

SigmaSpec = float | str | Callable[..., Any]

_LOG_2PI = math.log(2.0 * math.pi)


class NoiseModel:
    """Abstract base: the negative log-likelihood of one measurement given its prediction.

    Subclasses define `nll`, `residual` (the standardized residual whose square is twice the
    data-dependent part of `nll`, used by Gauss-Newton methods) and `log_norm` (the part of
    `nll` that depends on the scale only).
    """

    scale_spec: SigmaSpec
    residual_form: ClassVar[bool] = True

    def nll(self, y: Any, m: Any, s: Any) -> Any:
        """Elementwise negative log-likelihood of data `y` given prediction `m`, scale `s`."""
        return 0.5 * self.residual(y, m, s) ** 2 + self.log_norm(y, s)

    def residual(self, y: Any, m: Any, s: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_norm(self, y: Any, s: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, m: Any, s: Any, rng: Any) -> Any:  # pragma: no cover - abstract
        """Draw noisy measurements around predictions `m` (NumPy `Generator` `rng`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Gaussian(NoiseModel):
    """Additive Gaussian noise, `y ~ N(m, sigma^2)`.

    Example:
        >>> from scimlkit import fit
        >>> fit.Gaussian(sigma=0.5)            # known
        Gaussian(sigma=0.5)
        >>> fit.Gaussian(sigma="sigma_prey")  # estimated: declare fit.Parameter("sigma_prey", ...)
        Gaussian(sigma='sigma_prey')
    """

    sigma: SigmaSpec = 1.0

    @property
    def scale_spec(self) -> SigmaSpec:  # type: ignore[override]
        return self.sigma

    def residual(self, y: Any, m: Any, s: Any) -> Any:
        return (y - m) / s

    def log_norm(self, y: Any, s: Any) -> Any:
        return jnp.log(s) + 0.5 * _LOG_2PI

    def sample(self, m: Any, s: Any, rng: Any) -> Any:
        return m + s * rng.standard_normal(size=jnp.shape(m))


@dataclass(frozen=True)
class LogNormal(NoiseModel):
    """Multiplicative noise, `log y ~ N(log m, sigma^2)`; data and predictions must be positive.

    Example:
        >>> from scimlkit import fit
        >>> fit.LogNormal(sigma=0.1)
        LogNormal(sigma=0.1)
    """

    sigma: SigmaSpec = 1.0

    @property
    def scale_spec(self) -> SigmaSpec:  # type: ignore[override]
        return self.sigma

    def residual(self, y: Any, m: Any, s: Any) -> Any:
        return (jnp.log(y) - jnp.log(m)) / s

    def log_norm(self, y: Any, s: Any) -> Any:
        return jnp.log(s) + 0.5 * _LOG_2PI + jnp.log(y)

    def sample(self, m: Any, s: Any, rng: Any) -> Any:
        return m * jnp.exp(s * rng.standard_normal(size=jnp.shape(m)))


@dataclass(frozen=True)
class Laplace(NoiseModel):
    """Laplace (double-exponential) noise, robust to outliers: `nll = |y - m| / b + log(2 b)`.

    It has no smooth least-squares form, so Gauss-Newton methods (`"lm"`) refuse it; use a
    gradient method (`"lbfgs"`, `"bfgs"`, `"trust"`) or a global one.

    Example:
        >>> from scimlkit import fit
        >>> fit.Laplace(scale=0.2)
        Laplace(scale=0.2)
    """

    scale: SigmaSpec = 1.0
    residual_form: ClassVar[bool] = False

    @property
    def scale_spec(self) -> SigmaSpec:  # type: ignore[override]
        return self.scale

    def nll(self, y: Any, m: Any, s: Any) -> Any:
        return jnp.abs(y - m) / s + jnp.log(2.0 * s)

    def residual(self, y: Any, m: Any, s: Any) -> Any:
        return (y - m) / s  # used only for plots and diagnostics

    def log_norm(self, y: Any, s: Any) -> Any:
        return jnp.log(2.0 * s)

    def sample(self, m: Any, s: Any, rng: Any) -> Any:
        return m + rng.laplace(0.0, 1.0, size=jnp.shape(m)) * s
