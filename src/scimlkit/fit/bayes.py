"""Bayesian inference over a `Problem`'s likelihood with numpyro; results as ArviZ data.

`sample(problem, method="nuts")` runs the No-U-Turn sampler on the same traceable
negative log-likelihood that estimation minimizes (`problem.nll`), with gradients through
the ODE solver; `method="ensemble"` runs numpyro's gradient-free affine-invariant ensemble
sampler (AIES, emcee's stretch/differential-evolution moves) and `method="ess"` its ensemble
slice sampler. The result is an `arviz.InferenceData` whose `posterior` holds every
estimated parameter on its natural scale (and `<name>__<scale>`, the sampled coordinate).

Priors, in order of precedence:

1. `priors={name: numpyro distribution}` (on the natural scale, or on the estimation scale
   with `priors_on="scale"`);
2. the `Parameter.prior` of the problem (for PEtab problems, the parameter table's
   `objectivePriorType`): a density of the natural value (or of the scaled value for
   `on="scale"` priors; PEtab's `parameterScale...` types);
3. otherwise uniform on the estimation scale within the bounds (log-uniform for log scales).

Densities given on the natural scale are densities of the natural value: the sampler on the
estimation scale adds the change-of-variables term, so the prior really is the distribution
of the parameter. Every parameter stays within its bounds.

Example:
    >>> from scimlkit import fit
    >>> problem = fit.zoo.get("exponential_decay").problem          # doctest: +SKIP
    >>> idata = fit.sample(problem, num_samples=500, chains=2)        # doctest: +SKIP
    >>> fit.bayes.summary(idata)                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import MethodError, ProblemDefinitionError
from .priors import Prior

_METHODS = ("nuts", "ensemble", "ess")


def _scale_fns(scale: str) -> tuple[Any, Any]:
    """(natural -> scale, scale -> natural) for one parameter."""
    if scale == "log":
        return jnp.log, jnp.exp
    if scale == "log10":
        return jnp.log10, lambda z: 10.0**z
    return (lambda v: v), (lambda z: z)


def _log_abs_dnatural(z: Any, scale: str) -> Any:
    """log |d natural / d scaled| at scaled value `z`."""
    if scale == "log":
        return z
    if scale == "log10":
        return z * math.log(10.0) + math.log(math.log(10.0))
    return 0.0 * z


def build_model(
    problem: Any,
    priors: Mapping[str, Any] | None = None,
    priors_on: str = "natural",
) -> Any:
    """The numpyro model `sample` uses: priors (see module docs) and the problem's likelihood.

    Example:
        >>> model = build_model(problem)                      # doctest: +SKIP
        >>> numpyro.infer.MCMC(numpyro.infer.NUTS(model), num_warmup=100, num_samples=100).run(key)  # doctest: +SKIP
    """
    import numpyro
    import numpyro.distributions as dist

    if priors_on not in ("natural", "scale"):
        raise MethodError("priors_on must be 'natural' or 'scale'")
    names = list(problem.parameter_names)
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise ProblemDefinitionError(
            f"priors given for unknown or fixed parameters {unknown}; estimated: {names}"
        )
    lower, upper = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
    scales = list(problem.scales)
    own = {
        p.name: p.prior
        for p in getattr(problem, "_free", [])
        if getattr(p, "prior", None) is not None
    }

    def model() -> None:
        zs = []
        for i, name in enumerate(names):
            to_s, to_n = _scale_fns(scales[i])
            site = f"{name}__{scales[i]}"
            if name in priors and priors_on == "natural":
                v = numpyro.sample(name + "__natural", priors[name])
                z = to_s(v)
                numpyro.factor(
                    f"{name}__bounds", jnp.where((z >= lower[i]) & (z <= upper[i]), 0.0, -jnp.inf)
                )
                numpyro.deterministic(site, z)
            elif name in priors:
                z = numpyro.sample(site, priors[name])
                numpyro.factor(
                    f"{name}__bounds", jnp.where((z >= lower[i]) & (z <= upper[i]), 0.0, -jnp.inf)
                )
            else:
                z = numpyro.sample(site, dist.Uniform(lower[i], upper[i]))
                prior: Prior | None = own.get(name)
                if prior is not None:
                    if prior.on == "scale":
                        numpyro.factor(f"{name}__prior", prior.log_density(z))
                    else:
                        numpyro.factor(
                            f"{name}__prior",
                            prior.log_density(to_n(z)) + _log_abs_dnatural(z, scales[i]),
                        )
            numpyro.deterministic(name, to_n(z))
            zs.append(z)
        x = jnp.stack(zs)
        nll = problem.nll(x)
        numpyro.factor("log_likelihood", jnp.where(jnp.isfinite(nll), -nll, -jnp.inf))

    return model


def sample(
    problem: Any,
    method: str = "nuts",
    *,
    num_samples: int = 1000,
    num_warmup: int = 500,
    chains: int = 4,
    priors: Mapping[str, Any] | None = None,
    priors_on: str = "natural",
    seed: int = 0,
    chain_method: str = "sequential",
    init: Mapping[str, float] | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 8,
    progress: bool = False,
) -> Any:
    """Sample the posterior of `problem`'s parameters; return `arviz.InferenceData`.

    **Arguments:**
    - `problem`: a `fit.Problem` (or `fit.from_petab(...)`).
    - `method`: `"nuts"` (gradient-based), `"ensemble"` (affine-invariant ensemble sampler,
      gradient-free; `chains` is the number of walkers, at least 2 x the number of
      parameters, even) or `"ess"` (ensemble slice sampler, gradient-free).
    - `num_samples`, `num_warmup`: draws kept and discarded per chain.
    - `chains`: independent chains (NUTS) or walkers (ensemble methods).
    - `priors`: `{name: numpyro.distributions.Distribution}` overriding the problem's priors.
    - `priors_on`: whether those distributions are on the `"natural"` or estimation `"scale"`.
    - `seed`: PRNG seed; `chain_method`: `"sequential"` or `"vectorized"` for NUTS
      (ensemble methods are always vectorized).
    - `init`: natural-scale start values (default: the problem's nominal point `x0`).

    **Returns:** `arviz.InferenceData` with groups `posterior` (natural-scale parameters and
    the sampled `<name>__<scale>` coordinates), `sample_stats` (`diverging` for NUTS) and
    `observed_data`; `posterior.attrs` records the method, settings, seed and wall time.

    Example:
        >>> idata = fit.sample(problem, method="nuts", num_samples=500, chains=2)  # doctest: +SKIP
        >>> fit.bayes.summary(idata)                                              # doctest: +SKIP
    """
    import arviz as az
    import numpyro
    from numpyro.infer import AIES, ESS, MCMC, NUTS, init_to_value

    if method not in _METHODS:
        raise MethodError(f"unknown sampling method {method!r}; choose one of {list(_METHODS)}")
    if num_samples < 1 or num_warmup < 0 or chains < 1:
        raise MethodError("num_samples and chains must be >= 1, num_warmup >= 0")
    names = list(problem.parameter_names)
    model = build_model(problem, priors, priors_on)
    x_init = problem.from_natural(init) if init is not None else np.asarray(problem.x0, float)
    x_init = np.clip(x_init, problem.lower, problem.upper)
    values: dict[str, Any] = {}
    for i, name in enumerate(names):
        scale = problem.scales[i]
        if priors and name in priors and priors_on == "natural":
            values[name + "__natural"] = float(_scale_fns(scale)[1](x_init[i]))
        else:
            values[f"{name}__{scale}"] = float(x_init[i])
    if method == "nuts":
        kernel = NUTS(
            model,
            init_strategy=init_to_value(values=values),
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
        )
        if chain_method not in ("sequential", "vectorized", "parallel"):
            raise MethodError("chain_method must be 'sequential', 'vectorized' or 'parallel'")
        mcmc = MCMC(
            kernel,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=chains,
            chain_method=chain_method,
            progress_bar=progress,
        )
    else:
        if method == "ensemble" and (chains < 2 * len(names) or chains % 2):
            raise MethodError(
                f"method='ensemble' needs an even number of walkers >= 2 x {len(names)} parameters; "
                f"pass chains={2 * len(names) + (2 * len(names)) % 2}"
            )
        if chains < 2:
            raise MethodError(f"method={method!r} needs chains >= 2 walkers")
        cls = AIES if method == "ensemble" else ESS
        # walkers start in a small ball around the initial point (on the estimation scale)
        kernel = cls(model, init_strategy=init_to_value(values=values))
        mcmc = MCMC(
            kernel,
            num_warmup=num_warmup,
            num_samples=num_samples,
            num_chains=chains,
            chain_method="vectorized",
            progress_bar=progress,
        )
        chain_method = "vectorized"
    key = jax.random.PRNGKey(seed)
    init_params = None
    if method != "nuts":
        init_params = _ball(problem, values, chains, seed)
    t0 = time.perf_counter()
    with numpyro.validation_enabled(False):
        mcmc.run(
            key, init_params=init_params, extra_fields=("diverging",) if method == "nuts" else ()
        )
    wall = time.perf_counter() - t0
    idata = az.from_numpyro(mcmc, log_likelihood=False)
    idata.posterior.attrs.update(
        {
            "method": method,
            "num_samples": num_samples,
            "num_warmup": num_warmup,
            "chains": chains,
            "chain_method": chain_method,
            "seed": seed,
            "wall_time_s": wall,
            "parameters": names,
            "problem": str(getattr(problem, "name", "")),
        }
    )
    return idata


def _ball(problem: Any, values: dict[str, float], walkers: int, seed: int) -> dict[str, Any]:
    """Initial walker positions: the start point plus 1 % of each bound width, inside the bounds."""
    rng = np.random.default_rng(seed)
    out = {}
    lower, upper = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
    for i, (site, v) in enumerate(values.items()):
        if site.endswith("__natural"):
            out[site] = jnp.asarray(v * (1.0 + 0.01 * rng.standard_normal(walkers)))
            continue
        width = upper[i] - lower[i]
        z = v + 0.01 * width * rng.standard_normal(walkers)
        out[site] = jnp.asarray(np.clip(z, lower[i] + 1e-9 * width, upper[i] - 1e-9 * width))
    return out


def summary(idata: Any, var_names: list[str] | None = None) -> Any:
    """ArviZ summary (mean, sd, HDI, R-hat, ESS) of the natural-scale parameters, with
    `divergences` (NUTS) and `wall_time_s` in `.attrs`.

    Example:
        >>> table = fit.bayes.summary(idata); table.attrs["divergences"]   # doctest: +SKIP
        0
    """
    import arviz as az

    names = var_names or list(idata.posterior.attrs.get("parameters", []))
    table = az.summary(idata, var_names=names or None)
    div = 0
    if hasattr(idata, "sample_stats") and "diverging" in idata.sample_stats:
        div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    table.attrs["divergences"] = div
    table.attrs["wall_time_s"] = idata.posterior.attrs.get("wall_time_s")
    table.attrs["method"] = idata.posterior.attrs.get("method")
    return table


def plot_trace(idata: Any, path: str | Path | None = None) -> Any:
    """Trace plot of the natural-scale parameters (saved to `path` if given); returns the figure."""
    import arviz as az
    import matplotlib.pyplot as plt

    names = list(idata.posterior.attrs.get("parameters", [])) or None
    axes = az.plot_trace(idata, var_names=names, compact=False)
    fig = np.ravel(axes)[0].figure
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def plot_posterior(idata: Any, path: str | Path | None = None) -> Any:
    """Marginal posterior densities with HDIs; saved to `path` if given; returns the figure."""
    import arviz as az
    import matplotlib.pyplot as plt

    names = list(idata.posterior.attrs.get("parameters", [])) or None
    axes = az.plot_posterior(idata, var_names=names)
    fig = np.ravel(axes)[0].figure
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def posterior_predictive(
    problem: Any, idata: Any, draws: int = 50, seed: int = 0
) -> list[dict[str, Any]]:
    """Simulate the problem's observables at `draws` random posterior draws.

    Returns, per experiment (or PEtab observable), the dict `problem.simulate` gives at the
    posterior mean plus `draws` (an array of the draws' observables).
    """
    names = list(problem.parameter_names)
    post = idata.posterior
    flat = np.stack([np.asarray(post[n]).reshape(-1) for n in names], axis=1)
    rng = np.random.default_rng(seed)
    pick = flat[rng.choice(flat.shape[0], size=min(draws, flat.shape[0]), replace=False)]
    mean = dict(zip(names, flat.mean(axis=0), strict=True))
    base = problem.simulate(mean)
    key = "prediction" if "prediction" in base[0] else "observables"
    sims = [problem.simulate(dict(zip(names, row, strict=True))) for row in pick]
    for k, entry in enumerate(base):
        entry["draws"] = np.stack([np.asarray(s[k][key]) for s in sims])
    return base


def plot_posterior_predictive(
    problem: Any, idata: Any, path: str | Path | None = None, draws: int = 50, seed: int = 0
) -> Any:
    """Data with the posterior-predictive band (5-95 % of draws) and the posterior-mean fit."""
    import matplotlib.pyplot as plt

    pp = posterior_predictive(problem, idata, draws, seed)
    panels = []
    for entry in pp:
        if "prediction" in entry:  # PEtab problems: one panel per observable
            panels.append(
                (
                    entry["observable"],
                    entry["t"],
                    entry["y"][:, None],
                    entry["prediction"][:, None],
                    entry["draws"][..., None],
                )
            )
        else:
            exp_data = _experiment_data(problem, pp.index(entry))
            panels.append(
                (
                    f"experiment {pp.index(entry)}",
                    entry["t"],
                    exp_data,
                    entry["observables"],
                    entry["draws"],
                )
            )
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.6 * len(panels)), squeeze=False)
    for ax, (title, t, y, mean, dr) in zip(axes[:, 0], panels, strict=True):
        order = np.argsort(t)
        for j in range(mean.shape[1]):
            lo, hi = np.nanpercentile(dr[:, :, j], [5, 95], axis=0)
            ax.fill_between(t[order], lo[order], hi[order], alpha=0.3, step=None)
            ax.plot(t[order], mean[order, j], lw=1.2)
            if y is not None and y.shape[1] > j:
                ax.plot(t, y[:, j], "o", ms=3, color="k")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("t")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def _experiment_data(problem: Any, k: int) -> np.ndarray | None:
    exps = getattr(problem, "experiments", [])
    if k >= len(exps):
        return None
    data = getattr(exps[k], "data", None)
    if isinstance(data, Mapping):
        return np.stack([np.asarray(v, float) for v in data.values()], axis=1)
    return None if data is None else np.asarray(data, float).reshape(len(exps[k].t), -1)
