"""Ensembles, solution properties, outcome classifiers, sensitivity and prediction bands,
checked on systems whose answers are known in closed form."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from scimlkit import fit
from scimlkit.fit.explore import (
    Property,
    amplitude,
    blows_up,
    classify_outcomes,
    crosses,
    crossing_time,
    final_value,
    fit_surrogate,
    morris,
    oscillates,
    peak_time,
    peak_value,
    period,
    prediction_bands,
    sample_parameters,
    sensitivity,
    simulate_ensemble,
    sobol_indices,
    steady_state,
)


def hopf(t, y, p):
    x, z = y
    r2 = x * x + z * z
    return jnp.stack([p["mu"] * x - p["omega"] * z - x * r2, p["omega"] * x + p["mu"] * z - z * r2])


def logistic(t, y, p):
    return p["r"] * y * (1 - y / p["K"])


def sir(t, y, p):
    s, i, _ = y
    return jnp.stack([-p["beta"] * s * i, p["beta"] * s * i - p["gamma"] * i, p["gamma"] * i])


def additive_and_product(t, y, p):
    return jnp.stack([p["a"] + 2 * p["b"], p["a"] * p["b"], 0.0 * y[2]])


def decay(t, y, p):
    return -p["k"] * y


def quadratic_blowup(t, y, p):
    return p["c"] * y**2


HOPF_PARAMS = [fit.Parameter("mu", bounds=(-1.0, 1.0)), fit.Parameter("omega", bounds=(0.5, 2.0))]
HOPF_T = np.linspace(0.0, 60.0, 601)


@pytest.fixture(scope="module")
def hopf_classifier():
    return classify_outcomes(
        fit.ODEModel(hopf, ["x", "z"]), HOPF_PARAMS, oscillates("x"), t=HOPF_T, y0=[0.05, 0.0], n=1200, classifier="svm"
    )


def test_designs_respect_bounds_and_scales():
    ps = [fit.Parameter("k", bounds=(1e-3, 1e3), scale="log10"), fit.Parameter("a", bounds=(-1, 1))]
    for design in ("sobol", "lhs", "uniform"):
        d = sample_parameters(ps, 512, design=design, seed=3)
        assert d["k"].min() >= 1e-3 and d["k"].max() <= 1e3 and np.abs(d["a"]).max() <= 1
        # log-uniform: about half the points below the geometric middle (1.0)
        assert 0.4 < np.mean(d["k"] < 1.0) < 0.6
    grid = sample_parameters(ps, 3, design="grid")
    assert sorted(set(np.round(grid["k"], 9))) == [1e-3, 1.0, 1e3] and len(grid["a"]) == 9


def test_ensemble_matches_closed_form_and_scipy():
    from scipy.integrate import solve_ivp

    ks = np.array([0.1, 0.5, 2.0])
    t = np.linspace(0, 3, 7)
    ens = simulate_ensemble(fit.ODEModel(decay, ["A"]), {"k": ks}, t, y0=[2.0], rtol=1e-10, atol=1e-12, chunk_size=2)
    np.testing.assert_allclose(ens.state("A"), 2.0 * np.exp(-ks[:, None] * t), rtol=1e-8)
    ref = solve_ivp(lambda tt, y: [0.5 * y[0] * (1 - y[0] / 3.0)], (0, 3), [0.2], method="DOP853", t_eval=t, rtol=1e-10, atol=1e-12)
    log = simulate_ensemble(fit.ODEModel(logistic, ["N"]), {"r": [0.5], "K": [3.0]}, t, y0=[0.2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log.state("N")[0], ref.y[0], rtol=1e-7)


def test_failed_integrations_are_marked_not_fatal():
    cs = np.linspace(0.1, 2.0, 20)
    ens = simulate_ensemble(fit.ODEModel(quadratic_blowup, ["y"]), {"c": cs}, np.linspace(0, 1.5, 16), y0=[1.0], max_steps=2000)
    # y(t) = 1 / (1 - c t): finite on [0, 1.5] iff c < 1/1.5
    np.testing.assert_array_equal(ens.ok, cs < 1 / 1.5)
    assert np.isnan(ens.states[~ens.ok]).all()
    np.testing.assert_array_equal(ens.evaluate(blows_up(1e6)), cs >= 1 / 1.5)
    assert np.isnan(ens.evaluate(final_value("y"))[~ens.ok]).all()


def test_hopf_oscillation_property_matches_the_bifurcation():
    mus = np.array([-0.5, -0.1, 0.1, 0.5, 0.9])
    ens = simulate_ensemble(fit.ODEModel(hopf, ["x", "z"]), {"mu": mus, "omega": np.full(5, 1.0)}, HOPF_T, y0=[0.05, 0.0])
    np.testing.assert_array_equal(ens.evaluate(oscillates("x")), mus > 0)
    periods = ens.evaluate(period("x"))
    np.testing.assert_allclose(periods[mus > 0], 2 * np.pi, rtol=2e-3)  # omega = 1 on the limit cycle
    amplitude = ens.evaluate(Property(lambda t, y: np.abs(y[-200:, 0]).max()))
    np.testing.assert_allclose(amplitude[mus > 0.2], np.sqrt(mus[mus > 0.2]), rtol=1e-2)  # radius sqrt(mu)


def test_hopf_classifier_accuracy_and_boundary(hopf_classifier):
    clf = hopf_classifier
    assert clf.accuracy > 0.98, clf.summary()
    truth = clf.ensemble.params["mu"] > 0
    assert np.mean(clf.labels == truth) > 0.98
    mus = np.linspace(-0.5, 0.5, 1001)
    predicted = clf.predict({"mu": mus, "omega": np.full_like(mus, 1.2)})
    switch = mus[np.flatnonzero(predicted != predicted[0])[0]]
    assert abs(switch) < 0.05, f"decision boundary at mu={switch}, expected 0"
    assert clf.confusion.sum() == len(clf.test_index)
    assert "held-out accuracy" in clf.summary()
    ax = clf.plot_regions("mu", "omega")
    assert ax.get_xlabel() == "mu"


@pytest.mark.slow
def test_hopf_mlp_classifier():
    clf = classify_outcomes(
        fit.ODEModel(hopf, ["x", "z"]), HOPF_PARAMS, oscillates("x"), t=HOPF_T, y0=[0.05, 0.0], n=600, classifier="mlp"
    )
    assert clf.accuracy > 0.95


def test_logistic_steady_state_is_the_carrying_capacity():
    params = [fit.Parameter("r", bounds=(0.5, 2.0)), fit.Parameter("K", bounds=(1.0, 10.0))]
    ens = simulate_ensemble(fit.ODEModel(logistic, ["N"]), params, np.linspace(0, 60, 121), y0=[0.1], n=64, rtol=1e-9, atol=1e-11)
    assert ens.evaluate(steady_state("N")).all()
    np.testing.assert_allclose(ens.evaluate(final_value("N")), ens.params["K"], rtol=1e-6)
    # half the carrying capacity is crossed at t = ln((K - N0) / N0) / r
    expected = np.log((ens.params["K"] - 0.1) / 0.1) / ens.params["r"]
    crossing = ens.evaluate(crossing_time("N", 0.0))  # never crosses 0
    assert np.isnan(crossing).all()
    fine = simulate_ensemble(fit.ODEModel(logistic, ["N"]), {"r": ens.params["r"][:4], "K": ens.params["K"][:4]},
                             np.linspace(0, 20, 4001), y0=[0.1])
    half = [fine.evaluate(crossing_time("N", k / 2))[i] for i, k in enumerate(ens.params["K"][:4])]
    np.testing.assert_allclose(half, expected[:4], atol=0.01)


def test_logistic_surrogate_predicts_the_steady_state():
    params = [fit.Parameter("r", bounds=(0.5, 2.0)), fit.Parameter("K", bounds=(1.0, 10.0))]
    sur = fit_surrogate(fit.ODEModel(logistic, ["N"]), params, final_value("N"), t=np.linspace(0, 60, 61), y0=[0.1], n=200)
    assert sur.r2 > 0.999
    np.testing.assert_allclose(sur.predict({"r": [1.0, 1.5], "K": [5.0, 2.5]}), [5.0, 2.5], rtol=1e-2)


def test_sir_epidemic_iff_r0_above_one():
    s0, i0 = 1 - 1e-4, 1e-4
    params = [fit.Parameter("beta", bounds=(0.05, 1.0), scale="log"), fit.Parameter("gamma", bounds=(0.05, 1.0), scale="log")]
    rises = Property(lambda t, Y, names: peak_time("I").fn(t, Y, names) > t[0], name="epidemic", kind="categorical", batched=True)
    clf = classify_outcomes(fit.ODEModel(sir, ["S", "I", "R"]), params, rises, t=np.linspace(0, 200, 401), y0=[s0, i0, 0.0], n=800)
    r0 = clf.ensemble.params["beta"] / clf.ensemble.params["gamma"]
    assert np.mean(clf.labels == (r0 * s0 > 1)) > 0.99
    assert clf.accuracy > 0.98, clf.summary()
    big = simulate_ensemble(fit.ODEModel(sir, ["S", "I", "R"]), {"beta": [0.5], "gamma": [0.1]}, np.linspace(0, 200, 401), y0=[s0, i0, 0.0])
    # final-size relation: ln(S_inf / S0) = -R0 (1 - S_inf)  (R0 = 5)
    s_inf = big.state("S")[0, -1]
    assert np.log(s_inf / s0) == pytest.approx(-5 * (1 - s_inf), rel=1e-4)
    assert big.evaluate(crosses("I", 0.1))[0] and big.evaluate(peak_value("I"))[0] > 0.4


def test_sobol_indices_of_linear_odes_match_closed_form():
    params = [fit.Parameter("a", bounds=(0.0, 1.0)), fit.Parameter("b", bounds=(0.0, 1.0))]
    model = fit.ODEModel(additive_and_product, ["sum", "product", "zero"])
    t, y0 = [0.0, 1.0], [0.0, 0.0, 0.0]
    additive = sensitivity(model, params, final_value("sum"), t=t, y0=y0, n=2048, chunk_size=4096)
    np.testing.assert_allclose(additive.first, [0.2, 0.8], atol=0.02)  # a + 2b: 1/5, 4/5
    np.testing.assert_allclose(additive.total, [0.2, 0.8], atol=0.02)
    product = sensitivity(model, params, final_value("product"), t=t, y0=y0, n=2048, chunk_size=4096)
    np.testing.assert_allclose(product.first, [3 / 7, 3 / 7], atol=0.03)  # a b: S1 = 3/7, ST = 4/7
    np.testing.assert_allclose(product.total, [4 / 7, 4 / 7], atol=0.03)
    for i in range(2):
        assert product.first_ci[i, 0] <= 3 / 7 <= product.first_ci[i, 1]
        assert product.total_ci[i, 0] <= 4 / 7 <= product.total_ci[i, 1]
    assert "S1" in product.summary()
    product.plot()


def test_morris_ranks_and_flags_interaction():
    ps = [fit.Parameter(k, bounds=(0.0, 1.0)) for k in ("a", "b", "c", "d")]
    result = morris(lambda p: 4 * p["a"] + p["b"] + 3 * p["c"] * p["d"], ps, trajectories=40, seed=1)
    assert result.ranking()[0] == "a"
    np.testing.assert_allclose(result.mu_star[0], 4.0)  # linear: every effect is exactly 4
    assert result.sigma[0] == pytest.approx(0.0, abs=1e-9) and result.sigma[2] > 0.1  # c interacts with d


def test_sobol_rejects_non_finite_outputs():
    ps = [fit.Parameter("a", bounds=(0.0, 1.0))]
    with pytest.raises(fit.ProblemDefinitionError, match="not finite"):
        sobol_indices(lambda p: np.where(p["a"] > 0.5, np.nan, 1.0), ps, n=64)


def test_prediction_bands_match_the_analytic_quantiles():
    rng = np.random.default_rng(0)
    k = rng.lognormal(np.log(0.5), 0.3, size=(2, 2000))  # two chains
    t = np.linspace(0, 4, 9)
    bands = prediction_bands(fit.ODEModel(decay, ["A"]), {"k": k}, t=t, y0=[1.0], observable="A",
                             quantiles=(0.05, 0.5, 0.95), n=None, rtol=1e-10, atol=1e-12)
    analytic = np.exp(-k.reshape(-1)[:, None] * t)
    np.testing.assert_allclose(bands.values, np.quantile(analytic, [0.05, 0.5, 0.95], axis=0), rtol=1e-6)
    assert bands.n_samples == 4000 and bands.n_failed == 0
    bands.plot(data=(t, np.exp(-0.5 * t)))


def chain(t, y, p):
    return jnp.stack([-p["k1"] * y[0], p["k1"] * y[0] - p["k2"] * y[1]])


def test_builtin_amplitude_and_steady_state_on_hopf():
    """Limit cycle of radius sqrt(mu) for mu > 0; the origin is a stable focus for mu < 0."""
    mus = np.array([-0.9, -0.5, 0.3, 0.8])
    ens = simulate_ensemble(fit.ODEModel(hopf, ["x", "z"]), {"mu": mus, "omega": np.ones(4)}, HOPF_T, y0=[0.05, 0.0],
                            rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ens.evaluate(amplitude("x"))[mus > 0], np.sqrt(mus[mus > 0]), rtol=2e-3)
    np.testing.assert_array_equal(ens.evaluate(steady_state("x")), mus < 0)
    np.testing.assert_array_equal(ens.evaluate(steady_state()), mus < 0)
    assert np.all(np.isnan(ens.evaluate(period("x"))[mus < 0]))


def test_peak_time_and_value_match_closed_forms():
    """A -> B -> : B peaks at t* = ln(k2/k1)/(k2-k1) with B(t*) = (k1/k2)^(k2/(k2-k1));
    SIR: I peaks at I0 + S0 - 1/R0 - ln(R0 S0)/R0."""
    k1, k2 = np.array([0.5, 1.0, 2.0]), np.array([1.5, 0.3, 2.5])
    t = np.linspace(0.0, 10.0, 10001)
    ens = simulate_ensemble(fit.ODEModel(chain, ["A", "B"]), {"k1": k1, "k2": k2}, t, y0=[1.0, 0.0],
                            rtol=1e-10, atol=1e-12)
    t_star = np.log(k2 / k1) / (k2 - k1)
    np.testing.assert_allclose(ens.evaluate(peak_time("B")), t_star, atol=1e-3)  # save grid step 1e-3
    np.testing.assert_allclose(ens.evaluate(peak_value("B")), (k1 / k2) ** (k2 / (k2 - k1)), rtol=1e-6)
    s0, i0 = 0.99, 0.01
    beta, gamma = np.array([0.3, 0.5, 0.8]), np.full(3, 0.1)
    sir_ens = simulate_ensemble(fit.ODEModel(sir, ["S", "I", "R"]), {"beta": beta, "gamma": gamma},
                                np.linspace(0, 100, 20001), y0=[s0, i0, 0.0], rtol=1e-10, atol=1e-12)
    r0 = beta / gamma
    np.testing.assert_allclose(sir_ens.evaluate(peak_value("I")), i0 + s0 - 1 / r0 - np.log(r0 * s0) / r0, rtol=1e-6)


def linear_decay(t, y, p):
    return -p["k"] * y


def test_sobol_indices_of_exponential_decay_match_closed_form():
    """y' = -k y, y(0) = y0: y(1) = y0 exp(-k), a product of independent factors, so
    V_y0 = Var(y0) E[g]^2 and V_k = E[y0]^2 Var(g) with g = exp(-k), k ~ U(0, 2), y0 ~ U(1, 3)."""
    params = [fit.Parameter("k", bounds=(0.0, 2.0)), fit.Parameter("y0", bounds=(1.0, 3.0))]
    e_g, e_g2 = (1 - np.exp(-2.0)) / 2, (1 - np.exp(-4.0)) / 4
    e_y, var_y = 2.0, 4.0 / 12
    var = (var_y + e_y**2) * e_g2 - e_y**2 * e_g**2
    s_k, s_y = e_y**2 * (e_g2 - e_g**2) / var, var_y * e_g**2 / var
    result = sensitivity(fit.ODEModel(linear_decay, ["A"]), params, final_value("A"), t=[0.0, 1.0], y0={"A": "y0"},
                         n=4096, chunk_size=8192, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.first, [s_k, s_y], atol=0.02)
    np.testing.assert_allclose(result.total, [1 - s_y, 1 - s_k], atol=0.02)
    assert result.total[0] - result.first[0] > 0.01  # the product interacts: ST > S1
    for est, ci in ((result.first, result.first_ci), (result.total, result.total_ci)):
        assert np.all(ci[:, 0] <= est) and np.all(est <= ci[:, 1])


def test_morris_intervals_and_bar_plot():
    """4a + b + 3 c d on levels {0, 1/3, 2/3, 1}: the effects of a and b are exactly 4 and 1;
    that of c is 3 d with E[d] = 1/2 over the grid, so mu*(c) -> 1.5."""
    ps = [fit.Parameter(k, bounds=(0.0, 1.0)) for k in ("a", "b", "c", "d")]
    result = morris(lambda p: 4 * p["a"] + p["b"] + 3 * p["c"] * p["d"], ps, trajectories=200, seed=2)
    np.testing.assert_allclose(result.mu_star_ci[:2], [[4.0, 4.0], [1.0, 1.0]])
    lo, hi = result.mu_star_ci[2]
    assert lo < 1.5 < hi and hi - lo < 0.5
    assert "mu* CI" in result.summary()
    ax = result.plot()
    assert len(ax.patches) == 4 and ax.get_ylabel().startswith("mu*")
    result.plot(kind="scatter")


def test_sensitivity_morris_on_an_ode_property():
    """y' = a + 2b from 0: y(1) = a + 2b, so the unit-cube effects are exactly 1 and 2."""
    params = [fit.Parameter("a", bounds=(0.0, 1.0)), fit.Parameter("b", bounds=(0.0, 1.0))]
    model = fit.ODEModel(additive_and_product, ["sum", "product", "zero"])
    result = sensitivity(model, params, final_value("sum"), t=[0.0, 1.0], y0=[0.0, 0.0, 0.0], method="morris",
                         trajectories=10)
    np.testing.assert_allclose(result.mu_star, [1.0, 2.0], rtol=1e-6)
    assert result.ranking() == ["b", "a"] and result.evaluations == 30


def test_ensemble_engine_and_chunks_match_serial():
    from concurrent.futures import ThreadPoolExecutor

    params = [fit.Parameter("k1", bounds=(0.1, 2.0), scale="log10"), fit.Parameter("k2", bounds=(0.1, 2.0))]
    model = fit.ODEModel(chain, ["A", "B"])
    t = np.linspace(0, 5, 11)
    serial = simulate_ensemble(model, params, t, [1.0, 0.0], n=50, design="lhs", chunk_size=64)
    with ThreadPoolExecutor(max_workers=2) as pool:  # anything with .submit, like a dask Client
        pooled = simulate_ensemble(model, params, t, [1.0, 0.0], n=50, design="lhs", chunk_size=7, engine=pool)
    np.testing.assert_allclose(pooled.states, serial.states, rtol=1e-12)
    k1 = serial.params["k1"][:, None]
    np.testing.assert_allclose(serial.state("A"), np.exp(-k1 * t), rtol=1e-5, atol=1e-7)  # default atol 1e-8


def test_ensemble_from_inference_data():
    import arviz as az

    k = np.random.default_rng(1).uniform(0.2, 1.0, size=(2, 30))
    idata = az.from_dict(posterior={"k": k, "k__log10": np.log10(k)})
    t = np.array([0.0, 1.0, 2.0])
    ens = simulate_ensemble(fit.ODEModel(decay, ["A"]), idata, t, y0=[1.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ens.state("A"), np.exp(-k.reshape(-1)[:, None] * t), rtol=1e-8)
    bands = prediction_bands(fit.ODEModel(decay, ["A"]), idata, t=t, y0=[1.0], observable="A", n=None)
    assert bands.n_samples == 60


def test_profile_prediction_band_is_the_analytic_interval_band():
    """A = 2 exp(-k t): the profile-based band is 2 exp(-k t) over the likelihood-ratio
    interval of k, computed here from the closed-form likelihood (no ODE solver)."""
    from scipy import optimize, stats

    pr = fit.zoo.get("exponential_decay").problem
    e = pr.experiments[0]

    def nll(k):
        return 0.5 * np.sum(((e.data[:, 0] - 2.0 * np.exp(-k * e.t)) / 0.01) ** 2)

    k_hat = optimize.minimize_scalar(nll, bounds=(0.3, 0.7), method="bounded", options={"xatol": 1e-12}).x
    thr = stats.chi2.ppf(0.95, 1) / 2
    lo = optimize.brentq(lambda k: nll(k) - nll(k_hat) - thr, 0.3, k_hat)
    hi = optimize.brentq(lambda k: nll(k) - nll(k_hat) - thr, k_hat, 0.7)
    res = fit.estimate(pr, "lm", starts=2)
    prof = fit.profile(res)
    t = np.linspace(0, 5, 11)
    band = prediction_bands(pr.model, prof, t=t, y0=[2.0], observable="A", rtol=1e-10, atol=1e-12)
    assert band.kind.startswith("profile envelope")
    np.testing.assert_allclose(band.upper, 2 * np.exp(-lo * t), rtol=1e-3)
    np.testing.assert_allclose(band.lower, 2 * np.exp(-hi * t), rtol=1e-3)
