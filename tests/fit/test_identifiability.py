"""Profile likelihoods and Fisher-information intervals against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from scimlkit import fit


@pytest.fixture(scope="module")
def decay_fit(zoo):
    return fit.estimate(zoo("exponential_decay").problem, "lm", starts=2)


def _analytic_nll(problem, k):
    """Gaussian NLL of A = 2 exp(-k t), computed without any ODE solver."""
    e = problem.experiments[0]
    r = (e.data[:, 0] - 2.0 * np.exp(-k * e.t)) / 0.01
    return 0.5 * np.sum(r**2) + e.t.size * (np.log(0.01) + 0.5 * np.log(2 * np.pi))


def test_profile_interval_matches_analytic_likelihood_ratio_interval(decay_fit):
    pr = decay_fit.problem
    k_hat = optimize.minimize_scalar(lambda k: _analytic_nll(pr, k), bounds=(0.3, 0.7), method="bounded",
                                     options={"xatol": 1e-12}).x
    f_hat = _analytic_nll(pr, k_hat)
    thr = stats.chi2.ppf(0.95, 1) / 2
    lo = optimize.brentq(lambda k: _analytic_nll(pr, k) - f_hat - thr, 0.3, k_hat)
    hi = optimize.brentq(lambda k: _analytic_nll(pr, k) - f_hat - thr, k_hat, 0.7)
    assert decay_fit.params["k"] == pytest.approx(k_hat, rel=1e-5)
    prof = fit.profile(decay_fit)
    p_lo, p_hi = prof.intervals["k"]
    assert p_lo == pytest.approx(lo, rel=2e-4)
    assert p_hi == pytest.approx(hi, rel=2e-4)
    assert prof.profiles["k"].identifiable
    assert "k" in prof.summary()


def test_fisher_intervals_match_analytic_curvature(decay_fit):
    """For one parameter on log10 scale: sd = 1 / sqrt(d2 NLL / d x^2) by finite differences."""
    pr = decay_fit.problem
    x = decay_fit.x[0]
    h = 1e-4
    f = [_analytic_nll(pr, 10 ** (x + d)) for d in (-h, 0.0, h)]
    curvature = (f[0] - 2 * f[1] + f[2]) / h**2
    for kind in ("gauss-newton", "hessian"):
        u = fit.fisher(decay_fit, kind=kind)
        assert u.sd[0] == pytest.approx(1 / np.sqrt(curvature), rel=2e-3)
        lo, hi = u.intervals["k"]
        assert lo == pytest.approx(10 ** (x - 1.959964 * u.sd[0]), rel=1e-9)
        assert lo < decay_fit.params["k"] < hi


def product(t, y, p):
    return -p["k1"] * p["k2"] * y


def test_non_identifiable_product_is_flagged_by_profiles_and_fisher():
    t = np.linspace(0.5, 4, 8)
    pr = fit.Problem(fit.ODEModel(product, ["A"], stiff=False),
                     fit.Experiment(t, np.exp(-0.5 * t) + 0.001 * np.cos(9 * t), y0=[1.0], noise=fit.Gaussian(0.01)),
                     [fit.Parameter("k1", (0.1, 10), "log10"), fit.Parameter("k2", (0.1, 10), "log10")])
    res = fit.estimate(pr, "lm", starts=2)
    assert res.params["k1"] * res.params["k2"] == pytest.approx(0.5, rel=0.01)
    u = fit.fisher(res)
    assert np.all(np.isinf(u.sd))
    prof = fit.profile(res, ["k1"], max_steps=30, step=0.1)
    p1 = prof.profiles["k1"]
    assert not p1.identifiable and p1.interval[0] == -np.inf
    # along the valley the objective stays flat while k2 = 0.5 / k1 can compensate
    # (k1 < 5); beyond, k2 sits at its lower bound 0.1 and the profile rises
    assert np.ptp(p1.objective[p1.values < 4.0]) < 0.05
    assert p1.interval[1] == pytest.approx(5.0, rel=0.1)


def test_profiles_and_fisher_agree_on_a_well_determined_problem(zoo):
    res = fit.estimate(zoo("michaelis_menten").problem, "lm", starts=2)
    prof = fit.profile(res)
    u = fit.fisher(res)
    for name in ("vmax", "km"):
        p_lo, p_hi = prof.intervals[name]
        w_lo, w_hi = u.intervals[name]
        assert p_lo < res.params[name] < p_hi
        assert p_lo == pytest.approx(w_lo, rel=0.05) and p_hi == pytest.approx(w_hi, rel=0.05)
    assert -1.0 <= u.correlation[0, 1] <= 1.0 and u.correlation[0, 1] > 0.5  # vmax and km trade off


def test_plots_write_png_files(zoo, tmp_path, decay_fit):
    res = fit.estimate(zoo("michaelis_menten").problem, "lm", starts=3)
    figures = {"fit": res.plot(), "waterfall": res.plot_waterfall(),
               "profiles": fit.profile(decay_fit).plot(), "correlation": fit.fisher(res).plot()}
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    axes = figures["fit"].axes
    assert len(axes) == 2  # two experiments, one observable each
    assert {a.get_title() for a in axes} == {"S0=2: P", "S0=8: P"}


def test_profile_rejects_unknown_names(decay_fit):
    with pytest.raises(fit.MethodError, match="cannot profile"):
        fit.profile(decay_fit, ["nope"])


@pytest.mark.parametrize("method", ["lm", "lbfgs"])
def test_sum_of_squares_gives_the_same_estimate_and_intervals(decay_fit, method):
    """SSR = 2 (NLL - const): same optimum, and profiles/Fisher undo the factor 2, so the
    intervals equal the closed-form likelihood-ratio ones of the NLL fit."""
    base = decay_fit.problem
    pr = fit.Problem(base.model, base.experiments, base.parameters, base.observables, objective="sum_of_squares")
    res = fit.estimate(pr, method, starts=2)
    e = pr.experiments[0]

    def ssr(k):
        return np.sum(((e.data[:, 0] - 2.0 * np.exp(-k * e.t)) / 0.01) ** 2)

    k_ssr = optimize.minimize_scalar(ssr, bounds=(0.3, 0.7), method="bounded", options={"xatol": 1e-12}).x
    assert res.params["k"] == pytest.approx(k_ssr, rel=1e-5)
    assert res.objective == pytest.approx(ssr(k_ssr), rel=1e-6)
    if method == "lm":
        np.testing.assert_allclose(fit.profile(res).intervals["k"], fit.profile(decay_fit).intervals["k"], rtol=2e-4)
        np.testing.assert_allclose(fit.fisher(res).sd, fit.fisher(decay_fit).sd, rtol=1e-4)
