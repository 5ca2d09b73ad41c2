"""Simulation against SciPy references, solver choice, failures as data."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from scimlkit import fit
from scimlkit.fit.zoo import reference_simulate

ZOO = fit.zoo.names()


def _predictions_from_residuals(problem, x):
    """Model predictions at the data, recovered from the compiled residuals."""
    r = problem.compiled.residuals(x)
    out, pos = [], 0
    for cols in problem._columns:
        for c in cols:
            n = c.y.size
            s = float(c.noise.scale_spec) if not isinstance(c.noise.scale_spec, str) else problem.to_natural(x)[c.noise.scale_spec]
            rr = r[pos: pos + n]
            pos += n + (n if isinstance(c.noise.scale_spec, str) else 0)
            out.append(c.y * np.exp(-rr * s) if isinstance(c.noise, fit.LogNormal) else c.y - rr * s)
    return out


def _reference_predictions(problem, params):
    out = []
    names = [o.name for o in problem.observables]
    for k, e in enumerate(problem.experiments):
        ys = reference_simulate(problem, params, k)
        p = dict(params)
        p.update({n: (params[v] if isinstance(v, str) else float(v)) for n, v in e.constants.items()})
        for c in problem._columns[k]:
            fn = problem._observable_fn(names.index(problem.observables[c.obs_index].name))
            out.append(np.array([float(fn(e.t[i], ys[i], p)) for i in c.rows]))
    return out


@pytest.mark.parametrize("name", ZOO)
def test_zoo_simulation_matches_scipy_dop853(zoo, name):
    """Predictions at the data times agree with solve_ivp(DOP853, rtol=1e-10, atol=1e-12)."""
    entry = zoo(name)
    pr = entry.problem
    params = {**pr.to_natural(pr.x0), **entry.true}
    ours = _predictions_from_residuals(pr, pr.from_natural(params))
    ref = _reference_predictions(pr, params)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9 * max(1.0, np.abs(b).max()))


def test_auto_solver_choice(zoo):
    assert zoo("robertson").problem.solver_name == "kvaerno5"  # stiff=True hint
    assert zoo("lotka_volterra").problem.solver_name == "tsit5"

    def fast_slow(t, y, p):  # eigenvalues -1e4 and -1: stiff over t in [0, 10]
        return jnp.stack([-p["k"] * y[0], -1e4 * (y[1] - jnp.cos(t))])

    exp = fit.Experiment(np.linspace(1, 10, 5), np.ones(5), y0=[1.0, 0.0], observables=["a"])
    pr = fit.Problem(fit.ODEModel(fast_slow, ["a", "b"]), exp, [fit.Parameter("k", (0.1, 2))],
                     observables=[fit.Observable("a")])
    assert pr.solver_name == "kvaerno5"


def blowup(t, y, p):
    return p["k"] * y**2


def test_failed_integration_is_inf_and_estimation_moves_on():
    """y' = k y^2 from y=1 blows up at t = 1/k: for k > 1/3 the solve to t=3 fails."""
    t = np.array([0.5, 1.0, 2.0, 3.0])
    y = 1.0 / (1.0 - 0.1 * t)
    pr = fit.Problem(fit.ODEModel(blowup, ["y"], stiff=False), fit.Experiment(t, y, y0=[1.0], noise=fit.Gaussian(0.01)),
                     [fit.Parameter("k", (0.01, 2.0), "log10")], max_steps=2000)
    c = pr.compiled
    assert c.objective(pr.from_natural({"k": 1.0})) == np.inf
    assert np.all(np.isinf(c.residuals(pr.from_natural({"k": 1.0}))))
    assert np.isfinite(c.objective(pr.from_natural({"k": 0.1})))
    res = fit.estimate(pr, "lm", starts=6, seed=3, x0={"k": 1.0})  # the first start fails
    failed = [s for s in res.starts if not np.isfinite(s.objective)]
    assert failed, "some random starts in [0.01, 2] must fail to integrate"
    assert all(s.status is fit.Status.failed_start for s in failed)
    assert any(s.index == 0 for s in failed) and res.starts[-1].objective == np.inf
    assert res.params["k"] == pytest.approx(0.1, rel=1e-3)
    with pytest.raises(fit.EstimationFailedError, match="all 1 starts failed"):
        fit.estimate(pr, "lm", x0={"k": 1.5}, starts=1)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "solver"), [("robertson", "kvaerno3"),
                                              ("lotka_volterra", "dopri8"), ("lotka_volterra", "dopri5")])
def test_user_chosen_solvers_match_scipy(zoo, name, solver):
    entry = zoo(name)
    base = entry.problem
    pr = fit.Problem(base.model, base.experiments, base.parameters, base.observables, solver=solver,
                     rtol=base.settings.rtol, atol=base.settings.atol)
    assert pr.solver_name == solver
    params = {**pr.to_natural(pr.x0), **entry.true}
    sim = pr.simulate(params)[0]["states"]
    ref = reference_simulate(pr, params)
    np.testing.assert_allclose(sim, ref, rtol=1e-4, atol=1e-9)


def test_robertson_matches_dop853_on_a_short_horizon(zoo):
    """The zoo's reference for Robertson over 1e4 time units is Radau (an explicit method
    would need millions of steps); up to t = 1 DOP853 at rtol 1e-10 is affordable."""
    from scipy.integrate import solve_ivp

    entry = zoo("robertson")
    pr = entry.problem
    t = np.logspace(-3, 0, 7)
    sim = pr.simulate(entry.true, t=t)[0]["states"]
    ref = solve_ivp(lambda tt, y: fit.zoo.robertson_rhs(tt, y, entry.true), (0.0, 1.0), [1.0, 0.0, 0.0],
                    method="DOP853", t_eval=t, rtol=1e-10, atol=1e-14)
    assert ref.success
    np.testing.assert_allclose(sim, ref.y.T, rtol=1e-5, atol=1e-13)
