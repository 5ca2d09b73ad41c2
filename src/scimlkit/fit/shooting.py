"""Multiple shooting: segment initial states as extra unknowns, continuity as a penalty.

Each experiment's time span is cut into `segments` pieces at data times. The state at every
inner cut becomes an unknown, each piece is integrated from its own start, and the misfit
between where a piece ends and where the next begins adds residuals
`sqrt(weight) * (y_end - u_next) / scale` (as DiffEqParamEstim's
`multiple_shooting_objective`). Short pieces keep trajectories near the data, which makes
the landscape far less multimodal for oscillating or chaotic systems. Each start is then
refined on the ordinary (single-shooting) objective so that the reported optimum is exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax.numpy as jnp
import numpy as np

from .errors import MethodError
from .objective import CompiledProblem
from .problem import Problem
from .result import StartOutcome
from .simulate import solve


@dataclass(frozen=True)
class MultipleShooting:
    """Fit with multiple shooting (pass as `fit.estimate(..., objective=fit.MultipleShooting())`).

    **Arguments:**
    - `segments`: pieces per experiment (at most the number of distinct data times).
    - `weight`: continuity penalty weight (larger = stricter continuity).
    - `refine`: a local method run on the single-shooting objective from each result
      (`"lm"` by default; None keeps the shooting solution).

    Example:
        >>> from scimlkit import fit
        >>> fit.MultipleShooting(segments=5, weight=100.0)
        MultipleShooting(segments=5, weight=100.0, refine='lm')
    """

    segments: int = 5
    weight: float = 100.0
    refine: Any = "lm"

    def wrap(self, problem: Problem) -> ShootingTarget:
        """The extended estimation target."""
        if problem.residual_form is not None:
            raise MethodError(f"multiple shooting needs a least-squares objective, but {problem.residual_form}")
        if any(e.doses for e in problem.experiments):
            raise MethodError("multiple shooting does not handle doses yet; use single shooting")
        if self.segments < 1 or self.weight <= 0:
            raise MethodError("segments must be >= 1 and weight > 0")
        return ShootingTarget(problem, self)

    def finish(self, problem: Problem, target: ShootingTarget, s: StartOutcome) -> StartOutcome:
        """Map a start's outcome back to the problem and refine it on the true objective."""
        from .methods import resolve_method

        x = s.x[: target.n_params]
        s = dataclasses.replace(s, x0=s.x0[: target.n_params], x=x, objective=problem.compiled.objective(x))
        if self.refine is None or not np.isfinite(s.objective):
            return s
        before = problem.compiled.counts.copy()
        o = resolve_method(self.refine).run(problem, x, s.seed or 0)
        counts = problem.compiled.counts.minus(before)
        total = dataclasses.replace(s.counts)
        for k in total.__dict__:
            setattr(total, k, getattr(total, k) + getattr(counts, k))
        if o.objective <= s.objective:
            return dataclasses.replace(s, x=o.x, objective=o.objective, status=o.status,
                                       message=f"shooting, then {o.message}",
                                       iterations=s.iterations + o.iterations, counts=total)
        return dataclasses.replace(s, counts=total)


class ShootingTarget:
    """A problem's parameters plus each segment's initial state (natural scale, unbounded)."""

    def __init__(self, problem: Problem, spec: MultipleShooting) -> None:
        self.problem = problem
        self.spec = spec
        self.n_params = len(problem.parameter_names)
        self.n_states = len(problem.model.states)
        self.cuts: list[np.ndarray] = []  # inner cut times per experiment
        for e in problem.experiments:
            times = np.unique(e.t[e.t > e.t0])
            n = min(spec.segments, max(times.size, 1))
            idx = np.linspace(0, times.size, n + 1).astype(int)[1:-1]
            self.cuts.append(times[idx - 1] if times.size else np.array([]))
        n_u = sum(c.size for c in self.cuts) * self.n_states
        self.lower = np.concatenate([problem.lower, np.full(n_u, -np.inf)])
        self.upper = np.concatenate([problem.upper, np.full(n_u, np.inf)])
        self.parameter_names = problem.parameter_names + [
            f"{s}@{k}:{t:g}" for k, c in enumerate(self.cuts) for t in c for s in problem.model.states
        ]
        self.residual_form = None
        self.least_squares_only = True  # CompiledProblem derives objective and gradient from r, J
        self._scale = self._state_scales()

    def _state_scales(self) -> np.ndarray:
        p = self.problem
        scale = np.ones(self.n_states)
        for k, e in enumerate(p.experiments):
            for j, c in enumerate(p._columns[k]):
                fn = p.observables[c.obs_index].fn or p.observables[c.obs_index].name
                if isinstance(fn, str) and c.y.size:
                    i = p.model.states.index(fn)
                    scale[i] = max(scale[i], float(np.max(np.abs(e.data[c.rows, j]))))
        return scale

    def use_forward_mode(self, n_outputs: int = 1) -> bool:
        return self.problem.use_forward_mode(n_outputs)

    @cached_property
    def compiled(self) -> CompiledProblem:
        return CompiledProblem(self)  # type: ignore[arg-type]

    def extend(self, x: np.ndarray) -> np.ndarray:
        """Initial unknowns for a start at `x`: data at the cuts where a state is observed
        directly, else the simulation at `x` (or 1 where that fails)."""
        p = self.problem
        us = []
        for k, cuts in enumerate(self.cuts):
            if not cuts.size:
                continue
            sim = p.simulate(x, t=np.concatenate([[p.experiments[k].t0], cuts]), experiments=[k])[0]
            u = np.where(np.isfinite(sim["states"][1:]), sim["states"][1:], 1.0)
            e = p.experiments[k]
            for j, c in enumerate(p._columns[k]):
                fn = p.observables[c.obs_index].fn or p.observables[c.obs_index].name
                if isinstance(fn, str) and c.rows.size >= 2:
                    u[:, p.model.states.index(fn)] = np.interp(cuts, e.t[c.rows], e.data[c.rows, j])
            us.append(u.ravel())
        return np.concatenate([x, *us])

    def objective_fn(self, z: Any, *, adjoint: Any = None) -> Any:
        r, _ = self._residuals_aux(z, adjoint)
        return 0.5 * jnp.sum(r**2)

    def _residuals_aux(self, z: Any, adjoint: Any) -> tuple[Any, Any]:
        from .simulate import reverse_adjoint

        adjoint = adjoint or reverse_adjoint()
        p = self.problem
        z = jnp.asarray(z)
        x = z[: self.n_params]
        params = p.params(x)
        offset = self.n_params
        data_parts: list[Any] = []
        cont_parts: list[Any] = []
        ok = jnp.asarray(True)
        steps = jnp.asarray(0)
        for k, e in enumerate(p.experiments):
            pe = p._experiment_params(params, k)
            cuts = self.cuts[k]
            u = z[offset: offset + cuts.size * self.n_states].reshape(cuts.size, self.n_states)
            offset += cuts.size * self.n_states
            edges = [float(e.t0), *cuts.tolist(), float(e.t[-1])]
            starts = [jnp.asarray(p._y0[k](pe), dtype=float)] + [u[i] for i in range(cuts.size)]
            ys = jnp.zeros((e.t.size, self.n_states))
            for i in range(len(edges) - 1):
                a, b = edges[i], edges[i + 1]
                rows = np.flatnonzero(((e.t >= a) if i == 0 else (e.t > a)) & (e.t <= b))
                if b <= a:
                    ys = ys.at[rows].set(jnp.broadcast_to(starts[i], (rows.size, self.n_states)))
                    continue
                sol, ok_s, st = solve(p.model.rhs, p._solver, p._split, a, b, starts[i],
                                      np.append(e.t[rows], b), pe, p.settings, adjoint)
                ok = ok & ok_s
                steps = steps + st
                ys = ys.at[rows].set(sol[:-1])
                if i + 1 < len(starts):
                    cont_parts.append(jnp.sqrt(self.spec.weight) * (sol[-1] - starts[i + 1]) / self._scale)
            data_parts += p._data_residuals(p._column_terms(params, k, ys))
        r = jnp.concatenate(data_parts + p._parameter_residuals(x) + [jnp.ravel(c) for c in cont_parts])
        return jnp.where(ok, r, jnp.inf), steps
