"""Two-stage estimation (collocation): smooth the data, then regress derivatives on the RHS.

Stage 1 smooths every directly observed state (a smoothing spline with GCV-chosen penalty,
or a local-linear Gaussian-kernel smoother) and differentiates the smooth. Stage 2 finds
the parameters whose right-hand side best matches the derivative estimates,
`min_p sum_t |(dy_hat/dt - f(t, y_hat, p)) / scale|^2`, which needs no ODE solve (Varah
1982; Ramsay et al. 2007). Initial-state parameters are read off the smooth at `t0` and
noise scales from the smoothing residuals. The estimate then seeds the full objective
(`refine="lm"`), which removes the smoothing bias.

All states must be observed directly (observable = a state name) in every experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from scipy import interpolate
from scipy import optimize as sopt

from .errors import MethodError
from .methods import Method, Outcome, resolve_refine
from .problem import Problem, to_scale
from .result import Status


def smooth(t: np.ndarray, y: np.ndarray, grid: np.ndarray, kind: str = "spline", bandwidth: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed values and first derivatives of data `(t, y)` on `grid`.

    Example:
        >>> import numpy as np
        >>> t = np.linspace(0, 3, 40)
        >>> v, dv = smooth(t, np.sin(t), np.array([1.0]))
        >>> bool(abs(dv[0] - np.cos(1.0)) < 0.02)
        True
    """
    if kind == "spline":
        spl = interpolate.make_smoothing_spline(t, y)
        return spl(grid), spl.derivative()(grid)
    if kind == "kernel":
        h = bandwidth or 1.5 * float(np.median(np.diff(t))) if t.size > 1 else 1.0
        d = grid[:, None] - t[None, :]
        w = np.exp(-0.5 * (d / h) ** 2)
        s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
        t0, t1 = (w * y).sum(1), (w * d * y).sum(1)
        den = s0 * s2 - s1 * s1
        value = (s2 * t0 - s1 * t1) / den
        slope = -(s0 * t1 - s1 * t0) / den  # d = grid - t, so the slope in t has the opposite sign
        return value, slope
    raise MethodError(f"smoother must be 'spline' or 'kernel', not {kind!r}")


@dataclass(frozen=True)
class TwoStage(Method):
    """Two-stage (smoothing + derivative regression) estimation, then refinement.

    **Arguments:**
    - `smoother`: `"spline"` (GCV smoothing spline) or `"kernel"` (local-linear Gaussian).
    - `n_grid`: collocation points per experiment (inside the data's time range).
    - `refine`: local method on the full objective from the stage-2 estimate (`"auto"`:
      LM where applicable; None: return the stage-2 estimate).

    Example:
        >>> from scimlkit import fit
        >>> fit.TwoStage(smoother="kernel", refine=None).name
        'two-stage'
    """

    smoother: Literal["spline", "kernel"] = "spline"
    n_grid: int = 50
    refine: Any = "auto"
    name: ClassVar[str] = "two-stage"

    def check(self, target: Any) -> None:
        if not isinstance(target, Problem):
            raise MethodError("two-stage estimation works on a Problem (not with multiple shooting)")
        self._collocation(target)

    def _collocation(self, problem: Problem) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Smoothed states/derivatives per experiment, and per-state scales."""
        states = problem.model.states
        out = []
        scale = np.ones(len(states))
        for k, e in enumerate(problem.experiments):
            seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for j, c in enumerate(problem._columns[k]):
                fn = problem.observables[c.obs_index].fn or problem.observables[c.obs_index].name
                if isinstance(fn, str) and c.rows.size >= 5:
                    seen[states.index(fn)] = (e.t[c.rows], e.data[c.rows, j])
            missing = [states[i] for i in range(len(states)) if i not in seen]
            if missing:
                raise MethodError(
                    f"two-stage estimation needs every state observed directly (>= 5 points); "
                    f"experiment {e.name} lacks {missing}. Use a single- or multiple-shooting method"
                )
            lo = max(float(ts[0]) for ts, _ in seen.values())
            hi = min(float(ts[-1]) for ts, _ in seen.values())
            grid = np.linspace(lo, hi, self.n_grid)
            y = np.zeros((grid.size, len(states)))
            dy = np.zeros_like(y)
            y0 = np.zeros(len(states))
            resid_sd = {}
            for i, (ts, vs) in seen.items():
                y[:, i], dy[:, i] = smooth(ts, vs, grid, self.smoother)
                at0, _ = smooth(ts, vs, np.array([float(e.t0), *ts]), self.smoother)  # type: ignore[list-item]
                y0[i] = at0[0]
                resid_sd[i] = float(np.std(vs - at0[1:]))
                scale[i] = max(scale[i], float(np.max(np.abs(vs))))
            out.append({"grid": grid, "y": y, "dy": dy, "y0": y0, "resid_sd": resid_sd})
        return out, scale

    def prepare(self, target: Any, x0: np.ndarray) -> None:
        _, _, rf, jf = self._stage2(target)
        rf(jnp.asarray(x0))
        jf(jnp.asarray(x0))
        target.compiled.objective(x0)
        local = resolve_refine(self.refine, target)
        if local is not None:
            local.prepare(target, x0)

    def _stage2(self, problem: Problem) -> tuple[list[dict[str, Any]], np.ndarray, Any, Any]:
        """Collocation data and the jitted stage-2 residual and Jacobian (cached per problem)."""
        cache = problem.__dict__.setdefault("_twostage_cache", {})
        key = (self.smoother, self.n_grid)
        if key in cache:
            return cache[key]
        colloc, scale = self._collocation(problem)

        def resid(x: Any) -> Any:
            params = problem.params(x)
            parts = []
            for k, c in enumerate(colloc):
                p = problem._experiment_params(params, k)
                f = jax.vmap(lambda t, y, p=p: problem.model.rhs(t, y, p))(jnp.asarray(c["grid"]), jnp.asarray(c["y"]))
                parts.append(jnp.ravel((jnp.asarray(c["dy"]) - f) / scale))
            return jnp.concatenate(parts)

        cache[key] = (colloc, scale, jax.jit(resid), jax.jit(jax.jacfwd(resid)))
        return cache[key]

    def run(self, target: Any, x0: np.ndarray, seed: int) -> Outcome:
        problem: Problem = target
        colloc, _, rf, jf = self._stage2(problem)
        names = problem.parameter_names
        x_start = np.asarray(x0, dtype=float).copy()
        # initial-state parameters and noise scales come straight from the smooths
        for k, c in enumerate(colloc):
            y0spec = problem.experiments[k].y0
            entries = (
                [y0spec[s] for s in problem.model.states] if isinstance(y0spec, dict)
                else list(y0spec) if isinstance(y0spec, list | tuple) else []
            )
            for i, v in enumerate(entries):
                if isinstance(v, str) and v in names:
                    j = names.index(v)
                    par = problem._free[j]
                    val = max(c["y0"][i], par.bounds[0])  # type: ignore[index]
                    x_start[j] = np.clip(to_scale(val, par.scale), problem.lower[j], problem.upper[j])
            for col in problem._columns[k]:
                spec = col.noise.scale_spec
                fn = problem.observables[col.obs_index].fn or problem.observables[col.obs_index].name
                if isinstance(spec, str) and spec in names and isinstance(fn, str):
                    j = names.index(spec)
                    sd = c["resid_sd"].get(problem.model.states.index(fn), 0.0)
                    if sd > 0:
                        x_start[j] = np.clip(to_scale(sd, problem._free[j].scale), problem.lower[j], problem.upper[j])

        res = sopt.least_squares(lambda x: np.asarray(rf(x)), x_start, jac=lambda x: np.asarray(jf(x)),
                                 bounds=(problem.lower, problem.upper), method="trf", x_scale="jac")
        x_stage2 = res.x
        f_stage2 = problem.compiled.objective(x_stage2)
        local = resolve_refine(self.refine, problem)
        if local is None:
            return Outcome(x_stage2, f_stage2, Status.converged, "two-stage estimate (not refined)", int(res.nfev))
        o = local.run(problem, x_stage2, seed)
        if o.objective <= f_stage2:
            return Outcome(o.x, o.objective, o.status, f"two-stage, then {o.message}", int(res.nfev) + o.iterations)
        return Outcome(x_stage2, f_stage2, Status.converged, "two-stage estimate (refinement did not improve)", int(res.nfev))
