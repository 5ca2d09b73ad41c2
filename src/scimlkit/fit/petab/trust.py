"""`NewtonTrustRegion` (`method="trust-newton"`, `"trust-fisher"`, `"trust-hybrid"`): bounded trust region.

Gauss-Newton methods (`LevenbergMarquardt`) see a likelihood with estimated noise scales
only through pseudo-residuals `sqrt(2 log(sigma / floor) + 1)`, whose Gauss-Newton matrix
underestimates the curvature along the noise parameters by the factor
`2 log(sigma / floor) + 1` (about 30 for Boehm_JProteomeRes2014). The steps overshoot
there, the trust region shrinks and the iteration crawls along the valley for hundreds of
Jacobians and stops short of the optimum. This method minimizes the exact objective with
its exact gradient and a trust region (as Fides, Froehlich & Sorger 2022, does) on one of
three Hessian models:

- `hessian="exact"` (default): the exact Hessian, forward over forward through the solver
  (`target.newton(x) -> (objective, gradient, hessian)`, one compiled call for
  `PEtabProblem`; other targets use `compiled.value_and_gradient` and `compiled.hessian`).
  Measured on Boehm: 20-80 iterations per start.
- `hessian="fisher"`: the Fisher information (`target.fisher(x)`): for a Gaussian (Laplace)
  observation with prediction `h` and noise scale `sigma`, `(dh / sigma)^T (dh / sigma) +
  2 (1) (d log sigma)^T (d log sigma)`; targets without it fall back to Gauss-Newton. Each
  iteration is ~4x cheaper, but it misses the curvature of the residuals in sloppy
  directions and needed 100-450 iterations per start on Boehm.
- `hessian="hybrid"`: the Fisher information plus a structured secant correction for the
  residual curvature (`_StructuredSR1`), each step on whichever of the two models predicted
  the last actual decrease better (NL2SOL's rule). Only first-order sensitivities, so
  each iteration costs a Fisher evaluation, and it converges where Fisher steps alone crawl.
  Measured on Boehm: 21-108 iterations per start, each ~4x cheaper than an exact one;
  on Bruno_JExpBot2016 ~9x cheaper.

Bounds: variables at a bound whose gradient points outwards are held fixed for the
subproblem, and so are those at a bound that the step would push outwards (solved again
without them); a step that still leaves the box is either truncated at the first bound it
meets or projected onto the box, whichever the quadratic model prefers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scimlkit.fit.errors import MethodError
from scimlkit.fit.methods import Method, Outcome
from scimlkit.fit.result import Status


def _subproblem(g: np.ndarray, h: np.ndarray, delta: float) -> np.ndarray:
    """argmin `g.p + p.H.p / 2` subject to `|p| <= delta` (More-Sorensen by eigendecomposition)."""
    lam, q = np.linalg.eigh(h)
    a = q.T @ g
    lo = max(0.0, -lam[0])

    def norm(mu: float) -> float:
        with np.errstate(over="ignore"):  # near-singular directions: an infinite norm is the answer
            return float(np.linalg.norm(a / np.maximum(lam + mu, 1e-300)))

    if lam[0] > 0 and norm(0.0) <= delta:
        return -(q @ (a / lam))
    # |p(mu)| = delta on mu > lo: bracket and bisect on 1/|p| (nearly linear in mu)
    mu_lo = lo + 1e-12 * max(1.0, abs(lam[-1]))
    if norm(mu_lo) < delta:  # hard case: add a component along the lowest eigenvector
        p = -(q @ (a / (lam + mu_lo)))
        extra = np.sqrt(max(delta**2 - p @ p, 0.0))
        return p + extra * q[:, 0]
    mu_hi = max(mu_lo, 1.0)
    while norm(mu_hi) > delta:
        mu_hi *= 4.0
    for _ in range(100):
        mu = 0.5 * (mu_lo + mu_hi)
        if norm(mu) > delta:
            mu_lo = mu
        else:
            mu_hi = mu
        if mu_hi - mu_lo <= 1e-10 * mu_hi:
            break
    return -(q @ (a / (lam + mu_hi)))


@dataclass(frozen=True)
class NewtonTrustRegion(Method):
    """Bounded trust-region Newton on the exact objective (exact Hessian or Fisher information).

    **Arguments:** `max_iterations` (accepted + rejected steps), `fatol`, `frtol` (stop when
    an accepted step lowers the objective by less than `fatol + frtol * |f|`), `gatol` (stop
    when the gradient of the free variables is below it), `xtol` (stop when the trust
    radius falls below it), `delta0` (initial trust radius on the estimation scale),
    `hessian` (`"exact"` or `"fisher"`).

    Example:
        >>> from scimlkit.fit.petab.trust import NewtonTrustRegion
        >>> NewtonTrustRegion(max_iterations=200).name
        'trust-newton'
        >>> NewtonTrustRegion(hessian="hybrid").name
        'trust-hybrid'
    """

    max_iterations: int = 1000
    fatol: float = 1e-8
    frtol: float = 1e-10
    gatol: float = 1e-6
    xtol: float = 1e-10
    delta0: float = 1.0
    hessian: str = "exact"

    @property
    def name(self) -> str:  # type: ignore[override]
        """`"trust-newton"`, `"trust-fisher"` or `"trust-hybrid"`, after the Hessian model."""
        return "trust-newton" if self.hessian == "exact" else f"trust-{self.hessian}"

    def check(self, target: Any) -> None:
        if self.hessian not in ("exact", "fisher", "hybrid"):
            raise MethodError(f"hessian must be 'exact', 'fisher' or 'hybrid', not {self.hessian!r}")
        if getattr(target, "fisher", None) is None and target.residual_form is not None:
            raise MethodError(
                f"method {self.name!r} needs a Fisher information (PEtab problems) or a "
                f"least-squares objective, but {target.residual_form}; use method='lbfgs' or 'trust'"
            )

    def prepare(self, target: Any, x0: np.ndarray) -> None:
        _model(target, self.hessian)(x0)

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        lo, hi = np.asarray(target.lower, float), np.asarray(target.upper, float)
        model = _model(target, self.hessian)
        secant = _StructuredSR1(x0.size) if self.hessian == "hybrid" else None
        x = np.clip(np.asarray(x0, float), lo, hi)
        f, g, h = model(x)
        if not np.isfinite(f):
            return Outcome(x, np.inf, Status.failed_start)
        span = float(np.linalg.norm(hi - lo))
        delta = min(self.delta0, span)
        tiny = 1e-12 * np.maximum(hi - lo, 1.0)
        status, message, it = Status.max_iterations, "maximum number of iterations reached", 0
        while it < self.max_iterations:
            it += 1
            hm = h if secant is None else secant.model(h)
            if not (np.all(np.isfinite(g)) and np.all(np.isfinite(hm))):
                status, message = Status.failed, "non-finite gradient or Hessian model"
                break
            at_lo, at_hi = x <= lo + tiny, x >= hi - tiny
            free = ~((at_lo & (g > 0)) | (at_hi & (g < 0)))
            if np.linalg.norm(g[free]) <= self.gatol:
                status, message = Status.converged, "gradient below gatol"
                break
            p = _free_step(g, hm, delta, free, at_lo, at_hi)
            p = _into_box(x, p, g, hm, lo, hi)
            pred = -(g @ p + 0.5 * p @ hm @ p)
            step = float(np.linalg.norm(p))
            if pred <= 0 or step == 0.0:
                delta = 0.25 * delta
                if delta < self.xtol:
                    status, message = Status.converged, "trust radius below xtol"
                    break
                continue
            x_new = np.clip(x + p, lo, hi)
            # one compiled function for everything: most trial points are accepted, so
            # evaluating the model there costs less than a separate objective call (and compile)
            f_new, g_new, h_new = model(x_new)
            rho = (f - f_new) / pred if np.isfinite(f_new) else -np.inf
            if secant is not None and np.isfinite(f_new):
                secant.choose(f - f_new, g, h, p)
                secant.update(x_new - x, g_new - g, h_new)
            if rho < 0.25:
                delta = 0.25 * min(delta, step)
            elif rho > 0.75 and step > 0.9 * delta:
                delta = min(2.0 * delta, span)
            if rho > 1e-4:
                decrease = f - f_new
                x, f, g, h = x_new, f_new, g_new, h_new
                if decrease < self.fatol + self.frtol * abs(f):
                    status, message = Status.converged, "objective change below fatol + frtol * |f|"
                    break
            if delta < self.xtol:
                status, message = Status.converged, "trust radius below xtol"
                break
        return Outcome(x, float(f), status, message, it)


class _StructuredSR1:
    """Fisher information plus a secant correction for the residual curvature it lacks.

    The Fisher information (Gauss-Newton matrix) misses the second derivatives of the
    residuals; where they matter (large residuals, sloppy directions) Fisher steps converge
    only linearly. `A` is updated by the symmetric rank-one formula on the structured
    secant condition `(F(x + s) + A) s = g(x + s) - g(x)` (so it may be indefinite), from
    every trial point, accepted or not. As in NL2SOL (Dennis, Gay & Welsch 1981), each step
    is taken on whichever model, `F` or `F + A`, predicted the last actual change better.
    """

    def __init__(self, n: int) -> None:
        self.a = np.zeros((n, n))
        self.active = False

    def model(self, fisher: np.ndarray) -> np.ndarray:
        return fisher + self.a if self.active else fisher

    def choose(self, actual: float, g: np.ndarray, fisher: np.ndarray, p: np.ndarray) -> None:
        """Keep the model, `F` or `F + A`, whose predicted decrease along the step `p` came
        closer to the `actual` one (taken before `A` learns from this step)."""
        pred_f = -(g @ p + 0.5 * p @ fisher @ p)
        pred_s = pred_f - 0.5 * p @ self.a @ p
        self.active = abs(actual - pred_s) < abs(actual - pred_f)

    def update(self, s: np.ndarray, y: np.ndarray, fisher_new: np.ndarray) -> None:
        r = y - fisher_new @ s - self.a @ s
        denom = float(r @ s)
        if abs(denom) > 1e-8 * float(np.linalg.norm(r) * np.linalg.norm(s)) and np.all(
            np.isfinite(r)
        ):
            self.a += np.outer(r, r) / denom


def _free_step(
    g: np.ndarray, h: np.ndarray, delta: float, free: np.ndarray, at_lo: np.ndarray, at_hi: np.ndarray
) -> np.ndarray:
    """Trust-region step on the free variables, holding also those at a bound that it pushes out.

    A variable at a bound with its gradient pointing inwards is free, but through its
    coupling with the others the step may still push it outwards; projecting such a step
    back spoils the model's prediction and the trust region collapses (measured on
    Zheng_PNAS2012: hundreds of iterations creeping along a bound). Fixing those variables
    and solving again (at most once per variable) gives a step that stays in the box there.
    """
    free = free.copy()
    p = np.zeros_like(g)
    for _ in range(g.size):
        p[:] = 0.0
        if not free.any():
            break
        p[free] = _subproblem(g[free], h[np.ix_(free, free)], delta)
        out = free & ((at_lo & (p < 0)) | (at_hi & (p > 0)))
        if not out.any():
            break
        free &= ~out
    return p


def _into_box(
    x: np.ndarray, p: np.ndarray, g: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """`p` if `x + p` stays in the box, else the better (by the model) of truncation and projection."""
    if np.all(x + p >= lo) and np.all(x + p <= hi):
        return p
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(p > 0, (hi - x) / p, np.where(p < 0, (lo - x) / p, np.inf))
    truncated = p * float(np.clip(np.min(room), 0.0, 1.0))
    projected = np.clip(x + p, lo, hi) - x

    def m(q: np.ndarray) -> float:
        return float(g @ q + 0.5 * q @ h @ q)

    return truncated if m(truncated) <= m(projected) else projected


def _model(target: Any, hessian: str = "fisher") -> Any:
    """`x -> (objective, gradient, Hessian model)`: the target's Fisher function, else Gauss-Newton."""
    if hessian == "exact":
        newton = getattr(target, "newton", None)
        if newton is not None:
            return newton
        c = target.compiled

        def exact(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            f, g = c.value_and_gradient(x)
            if not np.isfinite(f):
                return np.inf, np.zeros_like(x), np.eye(x.size)
            return f, g, c.hessian(x)

        return exact
    fisher = getattr(target, "fisher", None)
    if fisher is not None:
        return fisher
    c = target.compiled

    def gauss_newton(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        r = c.residuals(x)
        if not np.all(np.isfinite(r)):
            return np.inf, np.zeros_like(x), np.eye(x.size)
        j = c.jacobian(x)
        return c.objective(x), j.T @ r, j.T @ j

    return gauss_newton
