"""Priors on parameters, used by MAP estimation (they add `-log p(theta)` to the objective)
and by Bayesian sampling.

A prior is defined on the parameter's natural scale by default (`on="natural"`), or on its
estimation scale (`on="scale"`, PEtab's `parameterScale...` priors). The objective adds the log
density at the parameter's value on that scale; no change-of-variables term is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import jax.numpy as jnp

On = Literal["natural", "scale"]
_LOG_2PI = math.log(2.0 * math.pi)


class Prior:
    """Abstract base: a univariate log density in JAX."""

    on: On

    def log_density(self, v: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def residual(self, v: Any) -> Any | None:
        """`r(v)` with `-log p(v) = r^2/2 + const` for Gauss-Newton methods, or None."""
        return None


@dataclass(frozen=True)
class NormalPrior(Prior):
    """Normal prior `N(mean, std^2)`.

    Example:
        >>> from scimlkit import fit
        >>> fit.Parameter("k", bounds=(0.01, 10), scale="log10", prior=fit.NormalPrior(1.0, 0.5))
        Parameter(name='k', bounds=(0.01, 10.0), scale='log10', value=None, estimate=True, prior=NormalPrior(mean=1.0, std=0.5, on='natural'))
    """

    mean: float
    std: float
    on: On = "natural"

    def log_density(self, v: Any) -> Any:
        return -0.5 * ((v - self.mean) / self.std) ** 2 - jnp.log(self.std) - 0.5 * _LOG_2PI

    def residual(self, v: Any) -> Any:
        return (v - self.mean) / self.std


@dataclass(frozen=True)
class LaplacePrior(Prior):
    """Laplace prior with location `loc` and scale `scale`.

    Example:
        >>> from scimlkit import fit
        >>> round(float(fit.LaplacePrior(0.0, 1.0).log_density(0.0)), 6)  # -log 2
        -0.693147
    """

    loc: float
    scale: float
    on: On = "natural"

    def log_density(self, v: Any) -> Any:
        return -jnp.abs(v - self.loc) / self.scale - jnp.log(2.0 * self.scale)


@dataclass(frozen=True)
class LogNormalPrior(Prior):
    """Log-normal prior: `log v ~ N(mu, sigma^2)` (v > 0).

    Example:
        >>> from scimlkit import fit
        >>> round(float(fit.LogNormalPrior(0.0, 1.0).log_density(1.0)), 6)  # -log sqrt(2 pi)
        -0.918939
    """

    mu: float
    sigma: float
    on: On = "natural"

    def log_density(self, v: Any) -> Any:
        lv = jnp.log(v)
        return -0.5 * ((lv - self.mu) / self.sigma) ** 2 - jnp.log(self.sigma) - lv - 0.5 * _LOG_2PI


@dataclass(frozen=True)
class UniformPrior(Prior):
    """Uniform prior on `[low, high]` (log density `-inf` outside).

    Example:
        >>> from scimlkit import fit
        >>> [float(fit.UniformPrior(0.0, 4.0).log_density(v)) for v in (1.0, 5.0)]  # -log 4
        [-1.3862943611198906, -inf]
    """

    low: float
    high: float
    on: On = "natural"

    def log_density(self, v: Any) -> Any:
        inside = (v >= self.low) & (v <= self.high)
        return jnp.where(inside, -jnp.log(self.high - self.low), -jnp.inf)


@dataclass(frozen=True)
class L2:
    """Ridge penalty `weight * sum((x - center)^2)` on the estimation scale.

    **Arguments:**
    - `weight`: penalty strength.
    - `parameters`: names it applies to (default: all estimated parameters).
    - `center`: value(s) on the estimation scale pulled towards (default 0).

    Example:
        >>> from scimlkit import fit
        >>> fit.L2(0.1, parameters=["k1", "k2"])
        L2(weight=0.1, parameters=('k1', 'k2'), center=0.0)
    """

    weight: float
    parameters: tuple[str, ...] | list[str] | None = None
    center: float = 0.0

    def __post_init__(self) -> None:
        if self.parameters is not None:
            object.__setattr__(self, "parameters", tuple(self.parameters))


@dataclass(frozen=True)
class L1:
    """Lasso penalty `weight * sum(|x - center|)` on the estimation scale (not for `"lm"`).

    Example:
        >>> from scimlkit import fit
        >>> fit.L1(0.5, parameters=["k"])
        L1(weight=0.5, parameters=('k',), center=0.0)
    """

    weight: float
    parameters: tuple[str, ...] | list[str] | None = None
    center: float = 0.0

    def __post_init__(self) -> None:
        if self.parameters is not None:
            object.__setattr__(self, "parameters", tuple(self.parameters))
