"""Estimation methods as strategy objects with good defaults.

Local methods start from a point: `LevenbergMarquardt` (SciPy's bounded trust-region
reflective Gauss-Newton on our JAX residual Jacobian; the default), `LBFGS` (L-BFGS-B),
`BFGS` (BFGS on a smooth unbounded reparametrization of the box), `TrustRegion` (SciPy's
`trust-constr` with exact Hessian-vector products). Global methods search the whole box:
`CMAES` (the `cma` package) and `DifferentialEvolution` (SciPy), each optionally
polished by a local method. `scimlkit.fit.twostage.TwoStage` is a method too.

Every method works on a *target*: an object with `lower`, `upper` (estimation scale),
`residual_form` and `compiled` (objective, value_and_gradient, residuals, jacobian,
hessian_vector) — a `Problem`, or a multiple-shooting wrapper of one.
"""

from __future__ import annotations

import dataclasses
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import optimize as sopt

from .errors import MethodError
from .result import Status

#: value handed to optimizers that cannot digest inf at a failed solve
_BIG = 1e30


@dataclass(frozen=True)
class Outcome:
    """What a method returns for one start (the engine adds timing and counts)."""

    x: np.ndarray
    objective: float
    status: Status
    message: str = ""
    iterations: int = 0


class Method(ABC):
    """Abstract base of estimation methods."""

    name: ClassVar[str]
    is_global: ClassVar[bool] = False
    needs_residuals: ClassVar[bool] = False

    def settings(self) -> dict[str, Any]:
        """The method's settings, for `FitResult.settings`."""
        out = {"method": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.settings() if isinstance(v, Method) else v
        return out

    @abstractmethod
    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        """Run from `x0` (local) or with `seed` (global) on `target`."""

    def prepare(self, target: Any, x0: np.ndarray) -> None:
        """Compile what `run` will call (so timings of starts exclude compilation)."""
        c = target.compiled
        c.objective(x0)
        if self.needs_residuals:
            c.residuals(x0)
            c.jacobian(x0)
        else:
            c.value_and_gradient(x0)

    def check(self, target: Any) -> None:
        """Raise `MethodError` if the method cannot handle this target."""
        if self.needs_residuals and target.residual_form is not None:
            raise MethodError(
                f"method {self.name!r} needs a least-squares objective but {target.residual_form}; "
                "use method='lbfgs', 'bfgs', 'trust', 'cmaes' or 'de'"
            )


def _start_value(target: Any, x0: np.ndarray) -> float:
    return target.compiled.objective(x0)


@dataclass(frozen=True)
class LevenbergMarquardt(Method):
    """Bounded Gauss-Newton / Levenberg-Marquardt-type trust region (`scipy.optimize.least_squares`).

    Uses SciPy's `trf` (trust-region reflective, handles bounds) or `dogbox`, with the exact
    residual Jacobian from JAX. A failed ODE solve during the run is a rejected step.

    **Arguments:** `max_iterations` (function evaluations), `ftol`, `xtol`, `gtol`,
    `backend` (`"trf"` or `"dogbox"`), `x_scale` (SciPy's, default `"jac"`).

    Example:
        >>> from scimlkit import fit
        >>> fit.LevenbergMarquardt(max_iterations=200).name
        'lm'
    """

    max_iterations: int = 500
    ftol: float = 1e-10
    xtol: float = 1e-10
    gtol: float = 1e-10
    backend: str = "trf"
    x_scale: Any = "jac"
    name: ClassVar[str] = "lm"
    needs_residuals: ClassVar[bool] = True

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        c = target.compiled
        r0 = c.residuals(x0)
        if not np.all(np.isfinite(r0)):
            return Outcome(x0, np.inf, Status.failed_start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sopt.least_squares(
                c.residuals, x0, jac=c.jacobian, bounds=(target.lower, target.upper),
                method=self.backend, ftol=self.ftol, xtol=self.xtol, gtol=self.gtol,
                x_scale=self.x_scale, max_nfev=self.max_iterations,
            )
        status = Status.converged if res.status > 0 else (
            Status.max_iterations if res.status == 0 else Status.failed
        )
        return Outcome(res.x, c.objective(res.x), status, res.message, int(res.nfev))


def _scipy_status(res: Any) -> Status:
    if res.success:
        return Status.converged
    msg = str(res.message).lower()
    if "iteration" in msg or "evaluations" in msg or "max" in msg:
        return Status.max_iterations
    return Status.failed


def _value_and_grad(target: Any) -> Any:
    c = target.compiled

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = c.value_and_gradient(x)
        if not np.isfinite(v) or not np.all(np.isfinite(g)):
            return _BIG, np.zeros_like(x)
        return v, g

    return f


@dataclass(frozen=True)
class LBFGS(Method):
    """L-BFGS-B with bounds (`scipy.optimize.minimize`), gradients from JAX.

    Example:
        >>> from scimlkit import fit
        >>> fit.LBFGS(max_iterations=1000).name
        'lbfgs'
    """

    max_iterations: int = 1000
    ftol: float = 1e-12
    gtol: float = 1e-8
    memory: int = 10
    name: ClassVar[str] = "lbfgs"

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        if not np.isfinite(_start_value(target, x0)):
            return Outcome(x0, np.inf, Status.failed_start)
        res = sopt.minimize(
            _value_and_grad(target), x0, jac=True, method="L-BFGS-B",
            bounds=list(zip(target.lower, target.upper, strict=True)),
            options={"maxiter": self.max_iterations, "ftol": self.ftol, "gtol": self.gtol, "maxcor": self.memory},
        )
        return Outcome(res.x, target.compiled.objective(res.x), _scipy_status(res), str(res.message), int(res.nit))


@dataclass(frozen=True)
class BFGS(Method):
    """BFGS on an unbounded reparametrization `x = lo + (hi - lo) * sigmoid(z)` of the box.

    Example:
        >>> from scimlkit import fit
        >>> fit.BFGS().name
        'bfgs'
    """

    max_iterations: int = 1000
    gtol: float = 1e-7
    name: ClassVar[str] = "bfgs"

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        if not np.isfinite(_start_value(target, x0)):
            return Outcome(x0, np.inf, Status.failed_start)
        lo, hi = target.lower, target.upper
        span = hi - lo
        fg = _value_and_grad(target)

        def to_x(z: np.ndarray) -> np.ndarray:
            return lo + span / (1.0 + np.exp(-z))

        def f(z: np.ndarray) -> tuple[float, np.ndarray]:
            s = 1.0 / (1.0 + np.exp(-z))
            v, g = fg(lo + span * s)
            return v, g * span * s * (1.0 - s)

        u = np.clip((x0 - lo) / span, 1e-9, 1 - 1e-9)
        res = sopt.minimize(f, np.log(u / (1 - u)), jac=True, method="BFGS",
                            options={"maxiter": self.max_iterations, "gtol": self.gtol})
        x = to_x(res.x)
        status = _scipy_status(res)
        if status is Status.failed and "precision loss" in str(res.message).lower():
            status = Status.converged  # the usual end of BFGS at a minimum in finite precision
        return Outcome(x, target.compiled.objective(x), status, str(res.message), int(res.nit))


@dataclass(frozen=True)
class TrustRegion(Method):
    """SciPy's `trust-constr` with bounds, JAX gradients and exact Hessian-vector products.

    Example:
        >>> from scimlkit import fit
        >>> fit.TrustRegion().name
        'trust'
    """

    max_iterations: int = 500
    gtol: float = 1e-8
    xtol: float = 1e-10
    name: ClassVar[str] = "trust"

    def prepare(self, target: Any, x0: np.ndarray) -> None:
        super().prepare(target, x0)
        target.compiled.hessian_vector(x0, np.ones_like(x0))

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        if not np.isfinite(_start_value(target, x0)):
            return Outcome(x0, np.inf, Status.failed_start)
        c = target.compiled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sopt.minimize(
                _value_and_grad(target), x0, jac=True, method="trust-constr",
                hessp=lambda x, v: c.hessian_vector(x, v),
                bounds=sopt.Bounds(target.lower, target.upper),
                options={"maxiter": self.max_iterations, "gtol": self.gtol, "xtol": self.xtol},
            )
        x = np.clip(res.x, target.lower, target.upper)
        return Outcome(x, c.objective(x), _scipy_status(res), str(res.message), int(res.nit))


def _polish(method: Method | None, target: Any, x: np.ndarray, f: float, seed: int, it: int) -> Outcome:
    if method is None:
        return Outcome(x, f, Status.converged, "global search (no local refinement)", it)
    local = method.run(target, x, seed)
    if local.objective <= f:
        return dataclasses.replace(local, iterations=it + local.iterations)
    return Outcome(x, f, Status.converged, "local refinement did not improve", it)


@dataclass(frozen=True)
class _Global(Method):
    refine: Any

    def prepare(self, target: Any, x0: np.ndarray) -> None:
        target.compiled.objective(x0)
        local = resolve_refine(self.refine, target)
        if local is not None:
            local.prepare(target, x0)


@dataclass(frozen=True)
class CMAES(_Global):
    """CMA-ES (the `cma` package) in the bounded box, then a local polish.

    **Arguments:** `sigma0` (initial step, as a fraction of the box width), `popsize`
    (default: CMA's `4 + 3 ln n`), `max_evaluations`, `tolfun`, `refine` (a local method,
    `"lm"` by default where applicable, or None).

    Example:
        >>> from scimlkit import fit
        >>> fit.CMAES(popsize=20, refine=None).name
        'cmaes'
    """

    sigma0: float = 0.3
    popsize: int | None = None
    max_evaluations: int = 5000
    tolfun: float = 1e-8
    refine: Any = "auto"
    name: ClassVar[str] = "cmaes"
    is_global: ClassVar[bool] = True

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        import cma

        lo, hi = target.lower, target.upper
        span = hi - lo
        f = target.compiled.objective
        opts = {
            "bounds": [list(lo), list(hi)], "seed": int(seed) % (2**31 - 1) + 1,
            "maxfevals": self.max_evaluations, "tolfun": self.tolfun, "verbose": -9,
            "CMA_stds": list(span), "verb_log": 0, "verb_disp": 0,
        }
        if self.popsize:
            opts["popsize"] = self.popsize
        es = cma.CMAEvolutionStrategy(list(x0), self.sigma0, opts)
        while not es.stop():
            xs = es.ask()
            es.tell(xs, [min(f(np.asarray(x)), _BIG) for x in xs])
        x = np.clip(np.asarray(es.result.xbest, dtype=float), lo, hi)
        return _polish(resolve_refine(self.refine, target), target, x, f(x), seed, int(es.result.evaluations))


@dataclass(frozen=True)
class DifferentialEvolution(_Global):
    """Differential evolution (`scipy.optimize.differential_evolution`), then a local polish.

    Example:
        >>> from scimlkit import fit
        >>> fit.DifferentialEvolution(popsize=10).name
        'de'
    """

    popsize: int = 15
    max_iterations: int = 300
    tol: float = 1e-8
    strategy: str = "best1bin"
    refine: Any = "auto"
    name: ClassVar[str] = "de"
    is_global: ClassVar[bool] = True

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        f = target.compiled.objective
        res = sopt.differential_evolution(
            lambda x: min(f(x), _BIG), list(zip(target.lower, target.upper, strict=True)),
            popsize=self.popsize, maxiter=self.max_iterations, tol=self.tol,
            strategy=self.strategy, seed=int(seed), polish=False, init="latinhypercube",
        )
        return _polish(resolve_refine(self.refine, target), target, res.x, f(res.x), seed, int(res.nfev))


_BY_NAME: dict[str, Any] = {
    "lm": LevenbergMarquardt,
    "trf": LevenbergMarquardt,
    "gauss-newton": LevenbergMarquardt,
    "dogbox": lambda: LevenbergMarquardt(backend="dogbox"),
    "lbfgs": LBFGS,
    "l-bfgs-b": LBFGS,
    "bfgs": BFGS,
    "trust": TrustRegion,
    "trust-constr": TrustRegion,
    "cmaes": CMAES,
    "cma-es": CMAES,
    "de": DifferentialEvolution,
    "differential-evolution": DifferentialEvolution,
}


def resolve_method(method: str | Method) -> Method:
    """A `Method` instance from a name (`"lm"`, `"lbfgs"`, `"bfgs"`, `"trust"`, `"cmaes"`,
    `"de"`, `"two-stage"`) or an instance."""
    if isinstance(method, Method):
        return method
    if isinstance(method, str):
        key = method.lower()
        if key in ("two-stage", "twostage"):
            from .twostage import TwoStage

            return TwoStage()
        if key in ("trust-newton", "trust-fisher", "trust-hybrid"):
            from .petab.trust import NewtonTrustRegion

            return NewtonTrustRegion(hessian=key.removeprefix("trust-").replace("newton", "exact"))
        if key in _BY_NAME:
            return _BY_NAME[key]()
    raise MethodError(
        f"unknown method {method!r}; choose one of {sorted({*_BY_NAME, 'two-stage', 'trust-newton', 'trust-fisher', 'trust-hybrid'})} "
        "or pass a method object such as fit.LevenbergMarquardt(...)"
    )


def resolve_refine(refine: Any, target: Any) -> Method | None:
    """The local method polishing a global one: `"auto"` = LM if applicable, else L-BFGS-B."""
    if refine is None or refine is False:
        return None
    if refine == "auto":
        return LevenbergMarquardt() if target.residual_form is None else LBFGS()
    m = resolve_method(refine)
    m.check(target)
    return m
