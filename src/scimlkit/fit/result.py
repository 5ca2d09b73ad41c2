"""Estimation results: per-start outcomes and the `FitResult` of `estimate`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .objective import Counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .problem import Problem


class Status(enum.Enum):
    """How a start ended. Each member's value is its message (failures are data)."""

    converged = "converged: a tolerance was met"
    max_iterations = "stopped at the iteration/evaluation limit; raise `max_iterations` to continue"
    failed_start = (
        "the ODE solve failed at the start point (objective inf); the start was skipped. "
        "Narrow the bounds or raise `max_steps`/use a stiff solver"
    )
    failed = "the optimizer stopped without converging"
    error = "the optimizer raised an exception (see the message)"


@dataclass
class StartOutcome:
    """What one start did: where it began and ended, how, and at what cost."""

    index: int
    x0: np.ndarray
    x: np.ndarray
    objective: float
    status: Status
    message: str = ""
    iterations: int = 0
    counts: Counts = field(default_factory=Counts)
    time_s: float = 0.0
    seed: int | None = None

    @property
    def success(self) -> bool:
        """Finite objective and a convergence criterion met."""
        return self.status is Status.converged and bool(np.isfinite(self.objective))


@dataclass
class FitResult:
    """The outcome of `scimlkit.fit.estimate`.

    **Attributes:**
    - `problem`: the `Problem` fitted.
    - `x`: best point on the estimation scale; `params`: all parameters, natural scale.
    - `objective`: the best objective (negative log-posterior; `nll` if no priors).
    - `starts`: every start's `StartOutcome`, best first.
    - `method`, `settings`: the method name and its settings (with the engine and sampling).
    - `seed`: the seed of the start sampling.
    - `counts`: summed evaluation counts; `compile_s`, `total_s`: timings.

    Example:
        >>> from scimlkit import fit
        >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm", starts=2, seed=3)
        >>> res.method, len(res.starts), res.seed, res.starts[0].status.name
        ('lm', 2, 3, 'converged')
        >>> round(res.params["k"], 2), res.counts.jacobian > 0, "clusters" in res.summary()
        (0.5, True, True)
        >>> fig = res.plot(); fig = res.plot_waterfall()
    """

    problem: Problem
    x: np.ndarray
    objective: float
    starts: list[StartOutcome]
    method: str
    settings: dict[str, Any]
    seed: int | None
    counts: Counts
    compile_s: float
    total_s: float

    @property
    def params(self) -> dict[str, float]:
        """All parameters on the natural scale (estimated and fixed)."""
        return self.problem.to_natural(self.x)

    @property
    def success(self) -> bool:
        """Whether the best start converged."""
        return self.starts[0].success

    def converged_starts(self, tol: float = 1e-3) -> int:
        """How many starts reached the best objective within `tol` (absolute)."""
        return sum(1 for s in self.starts if s.objective <= self.objective + tol)

    def clusters(self, tol: float = 1e-3) -> list[tuple[float, int]]:
        """Convergence clusters of the waterfall: `(objective, number of starts)`, best first."""
        out: list[tuple[float, int]] = []
        for s in self.starts:
            if not np.isfinite(s.objective):
                continue
            if out and abs(s.objective - out[-1][0]) <= tol * max(1.0, abs(out[-1][0])):
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((s.objective, 1))
        return out

    def summary(self) -> str:
        """A text report: parameters, objective, starts, clusters, costs."""
        p = self.problem
        n_fail = sum(1 for s in self.starts if not np.isfinite(s.objective))
        lines = [
            f"FitResult: {p.name} | method {self.method} | {len(self.starts)} start(s), "
            f"seed {self.seed}",
            f"  objective {self.objective:.6g} | best start: {self.starts[0].status.name}",
            f"  starts at best (+-1e-3): {self.converged_starts()}/{len(self.starts)}"
            + (f", failed: {n_fail}" if n_fail else ""),
            "  clusters: "
            + ", ".join(f"{v:.6g} x{n}" for v, n in self.clusters()[:6]),
            f"  time: {self.total_s:.2f} s total, {self.compile_s:.2f} s compile | "
            f"evaluations: {self.counts.residuals} residuals, {self.counts.jacobian} Jacobians, "
            f"{self.counts.objective} objectives, {self.counts.gradient} gradients, "
            f"{self.counts.hessian} Hessians, {self.counts.steps} ODE steps",
            "  parameters (natural scale):",
        ]
        free = set(p.parameter_names)
        lo, hi = p.lower, p.upper
        for i, name in enumerate(p.parameter_names):
            at_bound = " (at bound)" if min(self.x[i] - lo[i], hi[i] - self.x[i]) < 1e-6 * (hi[i] - lo[i]) else ""
            lines.append(f"    {name:<16} {self.params[name]:.6g}{at_bound}")
        for name, v in self.params.items():
            if name not in free:
                lines.append(f"    {name:<16} {v:.6g} (fixed)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"FitResult(objective={self.objective:.6g}, params={self.params}, method={self.method!r})"

    def plot(self, t: Any = None, n_points: int = 200) -> Figure:
        """Fit versus data: one panel per experiment and observable."""
        from .plot import plot_fit

        return plot_fit(self, t=t, n_points=n_points)

    def plot_waterfall(self) -> Figure:
        """Sorted objective of every start (plateaus are convergence clusters)."""
        from .plot import plot_waterfall

        return plot_waterfall(self)
