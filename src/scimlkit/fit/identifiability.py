"""Uncertainty and identifiability: profile likelihoods and Fisher-information intervals.

- `profile(result)`: for each parameter, fix it at a sequence of values on its estimation
  scale, re-optimize all others (warm-started from the previous point) and record the
  objective. The likelihood-ratio confidence interval is where the profile rises
  `chi2.ppf(alpha, 1) / 2` above the optimum (the objective is a negative log-likelihood;
  `chi2.ppf(alpha, 1)` for `objective="sum_of_squares"`, which is twice that).
  A side that never rises that far within the bounds is *practically non-identifiable*:
  its interval end is reported as `inf`/`-inf`.
- `fisher(result)`: the observed Fisher information (Gauss-Newton `J^T J` where the objective
  is least squares, else the exact Hessian by JAX), its inverse as covariance, Wald
  intervals `x +- z * sd` on the estimation scale mapped to natural values, and the
  correlation matrix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize as sopt
from scipy import stats

from .engine import map_chunks
from .errors import MethodError
from .problem import Problem, from_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .result import FitResult


@dataclass
class Profile:
    """One parameter's profile: values (estimation and natural scale) and objectives.

    `x` holds the profiled parameter on its estimation scale, `values` on its natural scale,
    `objective` the re-optimized objective there, and `points` the whole re-optimized
    parameter vector at each point (estimation scale, rows in the order of `x`).

    Example:
        >>> from scimlkit import fit
        >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm")
        >>> prof = fit.profile(res).profiles["k"]
        >>> prof.identifiable, prof.points.shape[1]
        (True, 1)
    """

    name: str
    x: np.ndarray
    values: np.ndarray
    objective: np.ndarray
    interval: tuple[float, float]
    evaluations: int = 0
    time_s: float = 0.0
    points: np.ndarray | None = field(default=None, repr=False)

    def within(self, threshold: float, optimum: float) -> np.ndarray:
        """Full parameter vectors (estimation scale) of the profile inside the confidence
        region (`objective - optimum <= threshold`), plus the points where the profile
        crosses the threshold, interpolated linearly between its neighbours."""
        if self.points is None:
            raise MethodError("this profile has no re-optimized parameter vectors (points)")
        rise = self.objective - optimum
        inside = rise <= threshold
        out = [self.points[inside]]
        for a in range(len(rise) - 1):
            b = a + 1
            if inside[a] != inside[b] and np.isfinite(rise[a]) and np.isfinite(rise[b]):
                w = (threshold - rise[a]) / (rise[b] - rise[a])
                out.append((self.points[a] + w * (self.points[b] - self.points[a]))[None])
        return np.concatenate(out)

    @property
    def identifiable(self) -> bool:
        """Whether the profile crosses the threshold on both sides."""
        return bool(np.isfinite(self.interval[0]) and np.isfinite(self.interval[1]))


@dataclass
class ProfileResult:
    """Profiles of several parameters, with their likelihood-ratio confidence intervals.

    Example:
        >>> from scimlkit import fit
        >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm")
        >>> pr = fit.profile(res)
        >>> sorted(pr.intervals), round(pr.threshold, 4)  # chi2.ppf(0.95, 1) / 2
        (['k'], 1.9207)
    """

    profiles: dict[str, Profile]
    alpha: float
    threshold: float
    optimum: float
    result: Any = field(repr=False, default=None)

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """Confidence intervals, natural scale (`-inf`/`inf` where not identifiable)."""
        return {k: p.interval for k, p in self.profiles.items()}

    def summary(self) -> str:
        """Intervals per parameter, with the estimate."""
        lines = [f"Profile likelihood intervals ({self.alpha:.0%}, threshold {self.threshold:.3g}):"]
        for k, p in self.profiles.items():
            est = self.result.params[k] if self.result is not None else float("nan")
            flag = "" if p.identifiable else "  (not identifiable on one side)"
            lines.append(f"  {k:<16} {est:.5g}  [{p.interval[0]:.5g}, {p.interval[1]:.5g}]{flag}")
        return "\n".join(lines)

    def plot(self) -> Figure:
        """One panel per parameter: objective rise versus value, threshold and interval."""
        from .plot import plot_profiles

        return plot_profiles(self)


def _sub_optimizer(problem: Problem, i: int, use_lm: bool) -> Any:
    """`optimize(value, z0) -> (x_full, f, nfev)` with parameter `i` fixed at `value`."""
    c = problem.compiled
    keep = np.array([j for j in range(len(problem.lower)) if j != i], dtype=int)
    lo, hi = problem.lower[keep], problem.upper[keep]

    def full(z: np.ndarray, v: float) -> np.ndarray:
        x = np.empty(len(problem.lower))
        x[keep] = z
        x[i] = v
        return x

    def optimize(v: float, z0: np.ndarray) -> tuple[np.ndarray, float, int]:
        if keep.size == 0:
            x = full(z0, v)
            return x, c.objective(x), 1
        z0 = np.clip(z0, lo, hi)
        if use_lm:
            r0 = c.residuals(full(z0, v))
            if not np.all(np.isfinite(r0)):
                return full(z0, v), np.inf, 1
            res = sopt.least_squares(
                lambda z: c.residuals(full(z, v)), z0, jac=lambda z: c.jacobian(full(z, v))[:, keep],
                bounds=(lo, hi), method="trf", x_scale="jac", ftol=1e-10, xtol=1e-10, gtol=1e-10,
                max_nfev=200,
            )
            nfev = int(res.nfev)
        else:
            def fg(z: np.ndarray) -> tuple[float, np.ndarray]:
                f, g = c.value_and_gradient(full(z, v))
                return (f, g[keep]) if np.isfinite(f) else (1e30, np.zeros(keep.size))

            res = sopt.minimize(fg, z0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi, strict=True)))
            nfev = int(res.nfev)
        x = full(res.x, v)
        return x, c.objective(x), nfev

    return optimize, keep


def _profile_one(problem: Problem, x_opt: np.ndarray, f_opt: float, i: int, threshold: float,
                 max_steps: int, step: float) -> Profile:
    t = time.perf_counter()
    use_lm = problem.residual_form is None
    optimize, keep = _sub_optimizer(problem, i, use_lm)
    lo, hi = problem.lower[i], problem.upper[i]
    span = hi - lo
    xs, fs, full_points = [x_opt[i]], [f_opt], [np.asarray(x_opt, dtype=float)]
    interval = [-np.inf, np.inf]
    n_eval = 0
    for direction in (-1.0, 1.0):
        h = step * span
        x_prev, f_prev, z = x_opt[i], f_opt, x_opt[keep]
        for _ in range(max_steps):
            v = float(np.clip(x_prev + direction * h, lo, hi))
            if v == x_prev:
                break  # at the bound
            x_full, f, nfev = optimize(v, z)
            n_eval += nfev
            if not np.isfinite(f):
                h /= 2.0
                if h < 1e-6 * span:
                    break
                continue
            rise, prev_rise = f - f_opt, f_prev - f_opt
            if rise - prev_rise > 0.6 * threshold and abs(v - x_prev) > 1e-4 * span:
                h = abs(v - x_prev) / 2.5  # too coarse a step: retry with a smaller one
                continue
            xs.append(v)
            fs.append(f)
            full_points.append(np.asarray(x_full, dtype=float))
            if rise >= threshold:  # crossed: interpolate linearly on the estimation scale
                w = (threshold - prev_rise) / max(rise - prev_rise, 1e-300)
                cross = x_prev + w * (v - x_prev)
                interval[0 if direction < 0 else 1] = float(from_scale(cross, problem.scales[i]))
                break
            z = x_full[keep]
            df = max(f - f_prev, 1e-6)
            h = float(np.clip(h * np.sqrt(0.2 * threshold / df), 0.5 * h, 2.0 * h))
            h = min(h, 0.2 * span)
            x_prev, f_prev = v, f
    order = np.argsort(xs)
    xs_a, fs_a = np.asarray(xs)[order], np.asarray(fs)[order]
    name = problem.parameter_names[i]
    values = np.asarray(from_scale(xs_a, problem.scales[i]))
    return Profile(name, xs_a, values, fs_a, (interval[0], interval[1]), n_eval, time.perf_counter() - t,
                   np.asarray(full_points)[order])


def _profile_chunk(payload: tuple, items: list[int]) -> list[Profile]:
    problem, x_opt, f_opt, threshold, max_steps, step = payload
    return [_profile_one(problem, x_opt, f_opt, i, threshold, max_steps, step) for i in items]


def profile(
    result: FitResult,
    parameters: list[str] | None = None,
    *,
    alpha: float = 0.95,
    max_steps: int = 50,
    step: float = 0.02,
    engine: Any = "serial",
) -> ProfileResult:
    """Profile likelihoods and likelihood-ratio confidence intervals.

    **Arguments:**
    - `result`: a `FitResult` (its optimum is the profiles' starting point).
    - `parameters`: names to profile (default: all estimated).
    - `alpha`: confidence level; the threshold is `chi2.ppf(alpha, 1) / 2`.
    - `max_steps`: steps per side at most; `step`: first step as a fraction of the bounds'
      width on the estimation scale (adapted to the profile's curvature).
    - `engine`: as in `estimate` (profiles of different parameters run in parallel).

    Example:
        >>> from scimlkit import fit
        >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm")
        >>> lo, hi = fit.profile(res).intervals["k"]
        >>> bool(lo < res.params["k"] < hi)
        True
    """
    problem = result.problem
    names = problem.parameter_names
    chosen = names if parameters is None else list(parameters)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise MethodError(f"cannot profile {unknown}: not estimated parameters ({names})")
    # the objective is objective_scale * (negative log-posterior) + const
    threshold = float(stats.chi2.ppf(alpha, 1) / 2.0) * float(getattr(problem, "objective_scale", 1.0))
    payload = (problem, np.asarray(result.x), float(result.objective), threshold, max_steps, step)
    profs = map_chunks(engine, _profile_chunk, payload, [names.index(n) for n in chosen])
    return ProfileResult({p.name: p for p in profs}, alpha, threshold, float(result.objective), result)


@dataclass
class Uncertainty:
    """Fisher-information (Wald) uncertainty at an optimum.

    `cov`, `sd` are on the estimation scale; `intervals` are natural-scale values of
    `x +- z * sd`; `correlation` is the correlation matrix.

    Example:
        >>> from scimlkit import fit
        >>> u = fit.fisher(fit.estimate(fit.zoo.get("michaelis_menten").problem, "lm"))
        >>> u.names, u.correlation.shape, u.kind
        (['vmax', 'km'], (2, 2), 'gauss-newton')
    """

    names: list[str]
    x: np.ndarray
    fisher: np.ndarray
    cov: np.ndarray
    sd: np.ndarray
    correlation: np.ndarray
    intervals: dict[str, tuple[float, float]]
    alpha: float
    kind: str

    def summary(self) -> str:
        """Estimates, standard errors (estimation scale) and Wald intervals."""
        lines = [f"Fisher-information intervals ({self.alpha:.0%}, {self.kind}):"]
        for i, n in enumerate(self.names):
            lo, hi = self.intervals[n]
            lines.append(f"  {n:<16} sd {self.sd[i]:.3g} (scaled)  [{lo:.5g}, {hi:.5g}]")
        return "\n".join(lines)

    def plot(self) -> Figure:
        """The parameter correlation matrix as a heat map."""
        from .plot import plot_correlation

        return plot_correlation(self)


def fisher(result: FitResult, *, alpha: float = 0.95, kind: str = "auto") -> Uncertainty:
    """Observed Fisher information at the optimum, with Wald intervals and correlations.

    **Arguments:**
    - `result`: a `FitResult`.
    - `alpha`: confidence level of the intervals.
    - `kind`: `"gauss-newton"` (`J^T J` of the residuals), `"hessian"` (exact, by JAX) or
      `"auto"` (Gauss-Newton for least-squares objectives with known noise scales, else the
      exact Hessian: `J^T J` misjudges the curvature of an estimated noise scale).

    Example:
        >>> from scimlkit import fit
        >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm")
        >>> lo, hi = fit.fisher(res).intervals["k"]
        >>> bool(lo < res.params["k"] < hi)
        True
    """
    problem = result.problem
    c = problem.compiled
    x = np.asarray(result.x, dtype=float)
    if kind == "auto":
        estimated_noise = any(
            c.sigma is None and not isinstance(c.noise.scale_spec, int | float)
            for cols in getattr(problem, "_columns", []) for c in cols
        )
        least_squares = problem.residual_form is None and hasattr(problem, "_columns")
        kind = "gauss-newton" if least_squares and not estimated_noise else "hessian"
    if kind == "gauss-newton":
        jac = c.jacobian(x)
        info = jac.T @ jac
    elif kind == "hessian":
        info = c.hessian(x)
        info = 0.5 * (info + info.T)
    else:
        raise MethodError(f"kind must be 'auto', 'gauss-newton' or 'hessian', not {kind!r}")
    info = info / float(getattr(problem, "objective_scale", 1.0))  # e.g. sum of squares = 2 nll
    cov = np.linalg.pinv(info, hermitian=True)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    eig = np.linalg.eigvalsh(info)
    if eig.min() <= 1e-12 * max(eig.max(), 1e-300):  # a singular direction
        null = np.abs(np.linalg.eigh(info)[1][:, np.argmin(eig)]) > 1e-3
        sd = np.where(null, np.inf, sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    np.fill_diagonal(corr, 1.0)
    z = float(stats.norm.ppf(0.5 + alpha / 2.0))
    names = problem.parameter_names
    intervals = {}
    for i, n in enumerate(names):
        lo_x, hi_x = x[i] - z * sd[i], x[i] + z * sd[i]
        sc = problem.scales[i]
        lo = float(from_scale(lo_x, sc)) if np.isfinite(lo_x) else (0.0 if sc != "lin" else -np.inf)
        hi = float(from_scale(hi_x, sc)) if np.isfinite(hi_x) else np.inf
        intervals[n] = (lo, hi)
    return Uncertainty(names, x, info, cov, sd, corr, intervals, alpha, kind)
