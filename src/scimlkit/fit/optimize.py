"""`estimate`: local, multi-start and global estimation of a `Problem`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from scipy.stats import qmc

from .engine import is_threads, map_chunks
from .errors import EstimationFailedError, MethodError
from .methods import Method, resolve_method
from .objective import Counts
from .problem import Problem
from .result import FitResult, StartOutcome, Status


def sample_starts(
    lower: np.ndarray, upper: np.ndarray, n: int, sampling: str = "lhs", seed: int | None = 0
) -> np.ndarray:
    """`n` start points in the box (estimation scale): Latin hypercube or uniform.

    Example:
        >>> import numpy as np
        >>> from scimlkit.fit.optimize import sample_starts
        >>> sample_starts(np.zeros(2), np.ones(2), 4, "lhs", seed=1).shape
        (4, 2)
    """
    if n < 1:
        raise MethodError(f"starts must be >= 1, got {n}")
    if sampling == "lhs":
        u = qmc.LatinHypercube(d=lower.size, seed=np.random.default_rng(seed)).random(n)
    elif sampling == "uniform":
        u = np.random.default_rng(seed).random((n, lower.size))
    else:
        raise MethodError(f"sampling must be 'lhs' or 'uniform', not {sampling!r}")
    return lower + u * (upper - lower)


def _run_starts(payload: tuple[Any, Method], items: list[tuple[int, np.ndarray, int]]) -> list[StartOutcome]:
    """Run a chunk of starts (module-level so parallel engines can pickle it)."""
    target, method = payload
    c = target.compiled
    out = []
    for index, x0, seed in items:
        before = c.counts.copy()
        t = time.perf_counter()
        try:
            o = method.run(target, np.asarray(x0, dtype=float), seed)
            s = StartOutcome(index, x0, np.asarray(o.x, float), float(o.objective), o.status,
                             o.message, o.iterations, seed=seed)
        except Exception as exc:  # a start's crash is a result, not the fit's end
            s = StartOutcome(index, x0, np.asarray(x0, float), np.inf, Status.error,
                             f"{type(exc).__name__}: {exc}", seed=seed)
        s.time_s = time.perf_counter() - t
        s.counts = c.counts.minus(before)
        out.append(s)
    return out


def estimate(
    problem: Problem,
    method: str | Method = "lm",
    *,
    starts: int | np.ndarray = 1,
    x0: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
    sampling: Literal["lhs", "uniform"] = "lhs",
    seed: int | None = 0,
    objective: Any = None,
    engine: Any = "serial",
) -> FitResult:
    """Estimate the parameters of `problem`.

    **Arguments:**
    - `problem`: the `Problem`.
    - `method`: `"lm"` (default; bounded Gauss-Newton/LM via SciPy `trf` with JAX Jacobians),
      `"dogbox"`, `"lbfgs"`, `"bfgs"`, `"trust"`, `"cmaes"`, `"de"`, `"two-stage"`, or a
      method object (`fit.LevenbergMarquardt(...)`, `fit.CMAES(...)`, `fit.TwoStage(...)`).
    - `starts`: number of starts, or an array `(n, n_parameters)` of start points on the
      estimation scale. Local methods start from points sampled in the bounds
      (`sampling="lhs"` Latin hypercube or `"uniform"`); global methods run that many
      independent searches with seeds `seed, seed+1, ...`.
    - `x0`: a start point (natural-scale dict or estimation-scale vector); used as the
      first start.
    - `seed`: seed of the start sampling (recorded in the result).
    - `objective`: `fit.MultipleShooting(...)` to fit with multiple shooting (default:
      single shooting on the problem's own objective).
    - `engine`: `"serial"` (default: one compilation, reused by every start), `"threads"` or
      a `ThreadPoolExecutor` (one compilation shared by threads that run starts side by side:
      the fastest on one machine when the solver dominates), `"processes"` / a worker count
      (spawned processes, one compilation each), another `concurrent.futures.Executor` or a
      `dask.distributed.Client`, or the `ray` module.

    **Returns:** a `FitResult`; starts sorted best first. Failed starts are recorded, not
    raised; `EstimationFailedError` only when no start produced a finite objective.

    Example:
        >>> from scimlkit import fit
        >>> problem = fit.zoo.get("exponential_decay").problem
        >>> result = fit.estimate(problem, "lm", starts=3, seed=0)
        >>> round(result.params["k"], 2)
        0.5
    """
    t_total = time.perf_counter()
    m = resolve_method(method)
    target = problem if objective is None else objective.wrap(problem)
    m.check(target)
    if isinstance(starts, int | np.integer):
        points = sample_starts(problem.lower, problem.upper, int(starts), sampling, seed)
    else:  # explicit start points on the estimation scale
        points = np.atleast_2d(np.asarray(starts, dtype=float))
        if points.shape[1] != problem.lower.size:
            raise MethodError(f"start points need {problem.lower.size} columns, got shape {points.shape}")
        points = np.clip(points, problem.lower, problem.upper)
    n_starts = len(points)
    if x0 is not None:
        first = problem.from_natural(x0) if isinstance(x0, Mapping) else np.asarray(x0, float)
        if first.shape != problem.lower.shape:
            raise MethodError(f"x0 has shape {first.shape}; expected {problem.lower.shape}")
        first = np.clip(first, problem.lower, problem.upper)
        points = np.vstack([first[None], points])[: max(n_starts, 1)]
    if objective is not None:
        points = np.array([target.extend(p) for p in points])
    base_seed = 0 if seed is None else int(seed)
    items = [(i, p, base_seed + i) for i, p in enumerate(points)]

    compile_s = 0.0
    if engine is None or engine == "serial" or is_threads(engine):
        t = time.perf_counter()
        c = target.compiled
        m.prepare(target, points[0])
        c.counts = Counts()
        if objective is not None:  # the refinement runs on the problem itself
            x = points[0][: len(problem.lower)]
            problem.compiled.objective(x)
            problem.compiled.residuals(x)
            problem.compiled.jacobian(x)
            problem.compiled.counts = Counts()
        compile_s = time.perf_counter() - t
    outcomes = map_chunks(engine, _run_starts, (target, m), items)
    if objective is not None:
        outcomes = [objective.finish(problem, target, s) for s in outcomes]
    outcomes.sort(key=lambda s: (not np.isfinite(s.objective), s.objective))
    counts = Counts()
    for s in outcomes:
        counts = Counts(**{k: getattr(counts, k) + getattr(s.counts, k) for k in counts.__dict__})
    best = outcomes[0]
    if not np.isfinite(best.objective):
        raise EstimationFailedError(
            f"all {len(outcomes)} starts failed: {best.status.value} {best.message}".strip()
            + " Check the model at the start points (problem.simulate), widen max_steps, or "
            "try a stiff solver (solver='kvaerno5')."
        )
    settings = {**m.settings(), "starts": len(items), "sampling": sampling,
                "engine": engine if isinstance(engine, str | int) else type(engine).__name__,
                "objective": type(objective).__name__ if objective is not None else "single shooting",
                "solver": problem.solver_name, "rtol": problem.settings.rtol,
                "atol": problem.settings.atol, "max_steps": problem.settings.max_steps}
    return FitResult(problem, best.x, best.objective, outcomes, m.name, settings, seed, counts,
                     compile_s, time.perf_counter() - t_total)
