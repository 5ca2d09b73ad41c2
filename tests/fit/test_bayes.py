"""Bayesian sampling: a conjugate case with a known posterior, diagnostics, plots, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numpyro")
pytest.importorskip("arviz")
from scimlkit import fit
from scimlkit.fit import bayes  # the module: fit.sample is re-exported

K = 0.5
T = np.linspace(0.2, 4.0, 12)
SIGMA = 0.2
PRIOR_MEAN, PRIOR_STD = 1.0, 0.5


def _decay(t, y, p):
    return -p["k"] * y


@pytest.fixture(scope="module")
def conjugate() -> tuple[fit.Problem, float, float]:
    """y_i = A exp(-k t_i) + N(0, sigma^2), k known, A ~ N(m0, s0^2): posterior of A is normal."""
    rng = np.random.default_rng(3)
    f = np.exp(-K * T)
    y = 2.0 * f + SIGMA * rng.standard_normal(T.size)
    problem = fit.Problem(
        fit.ODEModel(_decay, states=["y"]),
        [fit.Experiment(T, y[:, None], y0=["A"], noise=fit.Gaussian(SIGMA))],
        [
            fit.Parameter("A", bounds=(-5.0, 8.0), prior=fit.NormalPrior(PRIOR_MEAN, PRIOR_STD)),
            fit.Parameter("k", value=K, estimate=False),
        ],
    )
    precision = 1 / PRIOR_STD**2 + np.sum(f**2) / SIGMA**2
    mean = (PRIOR_MEAN / PRIOR_STD**2 + np.sum(f * y) / SIGMA**2) / precision
    return problem, float(mean), float(1 / math.sqrt(precision))


def test_nuts_matches_the_conjugate_posterior(conjugate, tmp_path: Path) -> None:
    problem, mean, sd = conjugate
    idata = fit.sample(problem, method="nuts", num_samples=600, num_warmup=300, chains=2, seed=1)
    a = np.asarray(idata.posterior["A"]).ravel()
    assert a.size == 1200
    # Monte Carlo error of the mean is ~ sd / sqrt(ESS); allow 4 of them
    assert abs(a.mean() - mean) < 4 * sd / math.sqrt(300)
    assert a.std() == pytest.approx(sd, rel=0.12)
    table = bayes.summary(idata)
    assert table.loc["A", "r_hat"] < 1.05
    assert table.attrs["divergences"] == 0
    for plot in (bayes.plot_trace, bayes.plot_posterior):
        out = tmp_path / f"{plot.__name__}.png"
        plot(idata, out)
        assert out.stat().st_size > 1000
    out = tmp_path / "pp.png"
    bayes.plot_posterior_predictive(problem, idata, out, draws=10)
    assert out.stat().st_size > 1000


def test_user_prior_overrides_the_problem_prior(conjugate) -> None:
    import numpyro.distributions as dist

    problem, _, _ = conjugate
    # a very tight user prior dominates the likelihood
    idata = fit.sample(
        problem, num_samples=300, num_warmup=200, chains=1, priors={"A": dist.Normal(3.0, 0.01)}
    )
    a = np.asarray(idata.posterior["A"]).ravel()
    assert abs(a.mean() - 3.0) < 0.02


def test_ensemble_sampler_matches_the_conjugate_posterior(conjugate) -> None:
    problem, mean, sd = conjugate
    idata = fit.sample(
        problem, method="ensemble", num_samples=400, num_warmup=300, chains=8, seed=2
    )
    a = np.asarray(idata.posterior["A"]).ravel()
    assert abs(a.mean() - mean) < 0.25 * sd + 4 * sd / math.sqrt(100)
    assert a.std() == pytest.approx(sd, rel=0.25)
    assert idata.posterior.attrs["method"] == "ensemble"


def test_bad_arguments(conjugate) -> None:
    problem, _, _ = conjugate
    with pytest.raises(fit.MethodError, match="unknown sampling method"):
        fit.sample(problem, method="gibbs")
    with pytest.raises(fit.MethodError, match="walkers"):
        fit.sample(problem, method="ensemble", chains=3)
    with pytest.raises(fit.ProblemDefinitionError, match="unknown or fixed"):
        fit.sample(problem, priors={"k": None})


@pytest.mark.slow
def test_lotka_volterra_posterior_covers_the_truth() -> None:
    entry = fit.zoo.get("lotka_volterra")
    idata = fit.sample(entry.problem, num_samples=300, num_warmup=300, chains=2, seed=0)
    for name, true in entry.true.items():
        lo, hi = np.quantile(np.asarray(idata.posterior[name]).ravel(), [0.005, 0.995])
        assert lo <= true <= hi, f"{name}: {true} outside [{lo}, {hi}]"
