"""Problem assembly: validation, scales, data handling, residual form."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from scimlkit import ScimlkitError, fit


def decay(t, y, p):
    return -p["k"] * y


def two_state(t, y, p):
    return jnp.stack([-p["k1"] * y[0], p["k1"] * y[0] - p["k2"] * y[1]])


T = np.linspace(0.5, 4.0, 8)


def _exp(**kw):
    kw.setdefault("y0", [1.0])
    return fit.Experiment(T, np.exp(-0.5 * T), **kw)


def test_errors_are_typed_and_derive_from_scimlkit_error():
    assert issubclass(fit.ProblemDefinitionError, fit.FitError)
    assert issubclass(fit.FitError, ScimlkitError)
    assert issubclass(fit.MethodError, fit.FitError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": None}, "no bounds"),
        ({"bounds": (2.0, 1.0)}, "low < high"),
        ({"bounds": (0.0, 1.0), "scale": "log10"}, "positive lower bound"),
        ({"bounds": (0.1, 1.0), "value": 5.0}, "outside bounds"),
        ({"bounds": (0.1, 1.0), "scale": "ln"}, "scale must be one of"),
    ],
)
def test_parameter_validation(kwargs, message):
    with pytest.raises(fit.ProblemDefinitionError, match=message):
        fit.Parameter("k", **kwargs)


def test_unknown_parameter_in_rhs_is_reported_with_its_name():
    with pytest.raises(fit.ProblemDefinitionError, match=r"'k'.*neither a Parameter"):
        fit.Problem(fit.ODEModel(decay, ["A"]), _exp(), [fit.Parameter("kk", (0.1, 1))])


def test_shape_and_reference_errors():
    model = fit.ODEModel(decay, ["A"])
    par = [fit.Parameter("k", (0.1, 1))]
    with pytest.raises(fit.ProblemDefinitionError, match="y0 has 2 entries"):
        fit.Problem(model, _exp(y0=[1.0, 2.0]), par)
    with pytest.raises(fit.ProblemDefinitionError, match=r"declare fit\.Parameter\('A0'"):
        fit.Problem(model, _exp(y0=["A0"]), par)
    with pytest.raises(fit.ProblemDefinitionError, match="noise scale refers to 's'"):
        fit.Problem(model, _exp(noise=fit.Gaussian("s")), par)
    with pytest.raises(fit.ProblemDefinitionError, match="shape"):
        fit.Experiment(T, np.ones(3), y0=[1.0])
    with pytest.raises(fit.ProblemDefinitionError, match="refers to state 'B'"):
        fit.Problem(model, _exp(), par, observables=[fit.Observable("B")])
    with pytest.raises(fit.ProblemDefinitionError, match="unknown solver"):
        fit.Problem(model, _exp(), par, solver="euler4")
    with pytest.raises(fit.ProblemDefinitionError, match="positive data"):
        fit.Problem(model, _exp(noise=fit.LogNormal(0.1), y0=[1.0]).__class__(T, -np.ones(8), y0=[1.0], noise=fit.LogNormal(0.1)), par)


def test_scales_and_conversions():
    pars = [fit.Parameter("a", (0.1, 10), "log10"), fit.Parameter("b", (0.1, 10), "log"),
            fit.Parameter("c", (-1, 3)), fit.Parameter("d", value=7.0, estimate=False)]

    def rhs(t, y, p):
        return -p["a"] * p["b"] * y + 0 * p["c"] * p["d"]

    pr = fit.Problem(fit.ODEModel(rhs, ["A"]), _exp(), pars)
    assert pr.parameter_names == ["a", "b", "c"]
    np.testing.assert_allclose(pr.lower, [-1, np.log(0.1), -1])
    np.testing.assert_allclose(pr.upper, [1, np.log(10), 3])
    np.testing.assert_allclose(pr.x0, [0.0, 0.0, 1.0], atol=1e-12)  # geometric middle for log scales
    nat = pr.to_natural(np.array([0.5, 1.0, 2.0]))
    assert nat == pytest.approx({"a": 10**0.5, "b": np.e, "c": 2.0, "d": 7.0})
    np.testing.assert_allclose(pr.from_natural(nat), [0.5, 1.0, 2.0])


def test_objective_matches_hand_computed_gaussian_nll():
    """Analytic solution A = exp(-k t): the objective is the Gaussian NLL of known residuals."""
    rng = np.random.default_rng(0)
    y = np.exp(-0.5 * T) + 0.01 * rng.standard_normal(T.size)
    y[2] = np.nan
    pr = fit.Problem(fit.ODEModel(decay, ["A"]), fit.Experiment(T, y, y0=[1.0], noise=fit.Gaussian(0.02)),
                     [fit.Parameter("k", (0.1, 1))])
    assert pr.n_data == 7
    k = 0.45
    ok = np.isfinite(y)
    r = (y[ok] - np.exp(-k * T[ok])) / 0.02
    expected = 0.5 * np.sum(r**2) + ok.sum() * (np.log(0.02) + 0.5 * np.log(2 * np.pi))
    assert pr.compiled.objective(pr.from_natural({"k": k})) == pytest.approx(expected, rel=1e-7)
    np.testing.assert_allclose(pr.compiled.residuals(pr.from_natural({"k": k})), r, rtol=1e-5)


@pytest.mark.parametrize("noise", [fit.Gaussian("s"), fit.LogNormal("s")])
def test_residual_form_reproduces_objective_up_to_a_constant(noise):
    y = np.exp(-0.5 * T) * (1 + 0.05 * np.sin(7 * T))
    pr = fit.Problem(
        fit.ODEModel(decay, ["A"]), fit.Experiment(T, y, y0=[1.0], noise=noise),
        [fit.Parameter("k", (0.1, 1), "log"), fit.Parameter("s", (1e-3, 1), "log10"),
         fit.Parameter("A0", (0.5, 2), prior=fit.NormalPrior(1.0, 0.1))],
        regularization=fit.L2(0.3, ["k"]),
    )
    offsets = [pr.compiled.objective_offset(x) for x in (pr.x0, pr.x0 + 0.1, pr.x0 - np.array([0.3, 0.5, 0.2]))]
    assert np.ptp(offsets) < 1e-8


def test_laplace_and_l1_have_no_least_squares_form():
    pr = fit.Problem(fit.ODEModel(decay, ["A"]), _exp(noise=fit.Laplace(0.1)), [fit.Parameter("k", (0.1, 1))])
    assert "Laplace" in pr.residual_form
    with pytest.raises(fit.MethodError, match="lbfgs"):
        fit.estimate(pr, "lm")
    # the Laplace NLL itself: |r|/b + log(2b)
    x = pr.from_natural({"k": 0.4})
    expected = np.sum(np.abs(np.exp(-0.5 * T) - np.exp(-0.4 * T)) / 0.1 + np.log(0.2))
    assert pr.compiled.objective(x) == pytest.approx(expected, rel=1e-6)


def test_priors_and_penalties_enter_the_objective():
    """log_prior and penalty are exact; the objective is nll - log_prior + penalty."""
    pr = fit.Problem(
        fit.ODEModel(decay, ["A"]), _exp(),
        [fit.Parameter("k", (0.1, 1), "log", prior=fit.NormalPrior(0.3, 0.1)),
         fit.Parameter("A0", (0.5, 2), prior=fit.LogNormalPrior(0.0, 0.5, on="natural")),
         fit.Parameter("c", (-1, 1), prior=fit.UniformPrior(-2, 2))],
        regularization=[fit.L1(2.0, ["k"], center=-1.0), fit.L2(0.5, ["c"])],
    )
    x = np.array([np.log(0.5), 1.5, 0.4])
    lp = (-0.5 * ((0.5 - 0.3) / 0.1) ** 2 - np.log(0.1) - 0.5 * np.log(2 * np.pi)
          - 0.5 * (np.log(1.5) / 0.5) ** 2 - np.log(0.5) - np.log(1.5) - 0.5 * np.log(2 * np.pi)
          - np.log(4.0))
    assert float(pr.log_prior(x)) == pytest.approx(lp, rel=1e-12)
    assert float(pr.penalty(x)) == pytest.approx(2.0 * abs(np.log(0.5) + 1.0) + 0.5 * 0.4**2, rel=1e-12)
    assert "L1" in pr.residual_form or "LogNormalPrior" in pr.residual_form


def test_condition_constants_and_parameter_mapping():
    """Two experiments share k1; each maps its own k2 through `constants`."""
    model = fit.ODEModel(two_state, ["A", "B"])
    exps = [fit.Experiment(T, np.ones((8, 1)), y0=[1.0, 0.0], observables=["B"], constants={"k2": "k2_a"}),
            fit.Experiment(T, np.ones((8, 1)), y0=[1.0, 0.0], observables=["B"], constants={"k2": 0.25})]
    pr = fit.Problem(model, exps, [fit.Parameter("k1", (0.1, 2)), fit.Parameter("k2_a", (0.1, 2))])
    sims = pr.simulate({"k1": 1.0, "k2_a": 0.5})
    for sim, k2 in zip(sims, (0.5, 0.25), strict=True):
        b = 1.0 / (k2 - 1.0) * (np.exp(-T) - np.exp(-k2 * T))  # analytic A->B->
        np.testing.assert_allclose(sim["states"][:, 1], b, rtol=1e-6)


def test_doses_add_boluses_and_observations_at_dose_time_are_pre_dose():
    t = np.array([0.5, 1.0, 1.5, 2.0])
    exp = fit.Experiment(t, np.ones(4), y0=[0.0], doses=[fit.Dose(0.0, "A", 2.0), fit.Dose(1.0, "A", "amt")])
    pr = fit.Problem(fit.ODEModel(decay, ["A"]), exp, [fit.Parameter("k", (0.1, 2)), fit.Parameter("amt", (0.1, 5))])
    a = pr.simulate({"k": 0.7, "amt": 3.0})[0]["states"][:, 0]
    expected = np.where(t <= 1.0, 2.0 * np.exp(-0.7 * t), 2.0 * np.exp(-0.7 * t) + 3.0 * np.exp(-0.7 * (t - 1.0)))
    np.testing.assert_allclose(a, expected, rtol=1e-7)


def test_problem_pickles_without_compiled_state():
    import pickle

    pr = fit.Problem(fit.ODEModel(decay, ["A"]), _exp(), [fit.Parameter("k", (0.1, 1))])
    f = pr.compiled.objective(pr.x0)
    clone = pickle.loads(pickle.dumps(pr))
    assert "compiled" not in clone.__dict__
    assert clone.compiled.objective(clone.x0) == pytest.approx(f)


def test_sum_of_squares_objective_is_the_weighted_ssr():
    """objective='sum_of_squares' is sum(((y - m) / sigma)^2), computed here from the closed form."""
    rng = np.random.default_rng(3)
    y = np.exp(-0.5 * T) + 0.02 * rng.standard_normal(T.size)
    y[4] = np.nan
    model = fit.ODEModel(decay, ["A"])
    par = [fit.Parameter("k", (0.1, 1), "log10")]
    ok = np.isfinite(y)
    for sigma in (1.0, 0.02):
        pr = fit.Problem(model, fit.Experiment(T, y, y0=[1.0], noise=fit.Gaussian(sigma)), par, objective="sum_of_squares")
        ssr = np.sum(((y[ok] - np.exp(-0.45 * T[ok])) / sigma) ** 2)
        assert pr.compiled.objective(pr.from_natural({"k": 0.45})) == pytest.approx(ssr, rel=1e-7)
        assert pr.compiled.objective_offset(pr.from_natural({"k": 0.45})) == pytest.approx(0.0, abs=1e-9)
    lognormal = fit.Problem(model, fit.Experiment(T[ok], y[ok], y0=[1.0], noise=fit.LogNormal(0.1)), par,
                            objective="sum_of_squares")
    expected = np.sum(((np.log(y[ok]) + 0.45 * T[ok]) / 0.1) ** 2)
    assert lognormal.compiled.objective(lognormal.from_natural({"k": 0.45})) == pytest.approx(expected, rel=1e-7)


def test_sum_of_squares_refuses_estimated_noise_and_laplace():
    model = fit.ODEModel(decay, ["A"])
    with pytest.raises(fit.ProblemDefinitionError, match="cannot estimate the noise scale 's'"):
        fit.Problem(model, _exp(noise=fit.Gaussian("s")), [fit.Parameter("k", (0.1, 1)), fit.Parameter("s", (0.01, 1))],
                    objective="sum_of_squares")
    with pytest.raises(fit.ProblemDefinitionError, match="Laplace"):
        fit.Problem(model, _exp(noise=fit.Laplace(0.1)), [fit.Parameter("k", (0.1, 1))], objective="sum_of_squares")
    with pytest.raises(fit.ProblemDefinitionError, match="objective must be"):
        fit.Problem(model, _exp(), [fit.Parameter("k", (0.1, 1))], objective="l2")
