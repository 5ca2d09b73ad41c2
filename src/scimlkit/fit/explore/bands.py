"""Prediction uncertainty: bands of observables from posterior samples or profile results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ProblemDefinitionError
from ..problem import ODEModel
from .design import from_samples, scalar_names
from .ensemble import Y0, simulate_ensemble


@dataclass
class PredictionBands:
    """Quantiles of an observable over time across parameter samples.

    `quantiles` `(q,)` and `values` `(q, T)`; `lower`/`median`/`upper` are the first, middle and
    last rows. For profile-based bands (`kind="profile envelope ..."`) the quantiles are
    `(0, 0.5, 1)`: the band is the envelope of the predictions of every parameter set on the
    profiles within the likelihood-ratio threshold.

    Example:
        >>> import numpy as np
        >>> b = PredictionBands(np.array([0.0, 1.0]), np.array([0.1, 0.5, 0.9]),
        ...                     np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]), "A", 100, 0)
        >>> b.lower.tolist(), b.upper.tolist()
        ([0.0, 1.0], [2.0, 3.0])
    """

    t: np.ndarray
    quantiles: np.ndarray
    values: np.ndarray
    name: str
    n_samples: int
    n_failed: int
    kind: str = "quantiles"

    @property
    def lower(self) -> np.ndarray:
        return self.values[0]

    @property
    def upper(self) -> np.ndarray:
        return self.values[-1]

    @property
    def median(self) -> np.ndarray:
        return self.values[len(self.values) // 2]

    def plot(self, data: tuple[np.ndarray, np.ndarray] | None = None, ax: Any = None) -> Any:
        """Shade the outer band, draw the median, and the data `(t, y)` on top if given."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        level = self.quantiles[-1] - self.quantiles[0]
        ax.fill_between(self.t, self.lower, self.upper, alpha=0.3, label=f"{level:.0%} band")
        ax.plot(self.t, self.median, label="median")
        if data is not None:
            ax.plot(*data, "o", color="k", ms=3, label="data")
        ax.set_xlabel("t")
        ax.set_ylabel(self.name)
        ax.legend()
        return ax


def prediction_bands(
    model: ODEModel,
    samples: Any,
    *,
    t: Sequence[float] | np.ndarray,
    y0: Y0,
    observable: str | Callable[[Any, Any, Mapping[str, Any]], Any],
    names: Sequence[str] | None = None,
    quantiles: Sequence[float] = (0.025, 0.5, 0.975),
    n: int | None = 1000,
    constants: Mapping[str, float] | None = None,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> PredictionBands:
    """Propagate parameter uncertainty to an observable.

    **Arguments:**

    - `samples`: posterior draws (ArviZ `InferenceData` from `fit.sample`, or a dict of
      arrays), or a `fit.profile` result: then the band is the envelope of the predictions
      of every re-optimized parameter set on the profiles inside the confidence threshold
      (the threshold crossings included), and the problem's fixed parameters are constants.
    - `names`: which parameters to take from `samples` (default: every scalar posterior
      variable, every key of a dict, every profiled parameter of a `ProfileResult`).
    - `observable`: a state name or `fn(t, y, p) -> value` (vectorised over time).
    - `n`: at most this many samples are simulated.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import prediction_bands
    >>> model = fit.ODEModel(lambda t, y, p: -p["k"] * y, states=["A"])
    >>> k = np.random.default_rng(0).lognormal(np.log(0.5), 0.2, 400)  # or idata = fit.sample(...)
    >>> bands = prediction_bands(model, {"k": k}, t=[0.0, 1.0, 2.0], y0=[1.0], observable="A")
    >>> bool(np.all(bands.lower <= bands.median) and np.all(bands.median <= bands.upper))
    True
    >>> res = fit.estimate(fit.zoo.get("exponential_decay").problem, "lm")
    >>> env = prediction_bands(res.problem.model, fit.profile(res), t=[0.0, 2.0], y0=[2.0], observable="A")
    >>> env.kind, env.values.shape
    ('profile envelope (95%)', (3, 2))
    >>> ax = env.plot(data=(res.problem.experiments[0].t, res.problem.experiments[0].data[:, 0]))

    ```
    """
    from ..identifiability import ProfileResult

    envelope = isinstance(samples, ProfileResult)
    if envelope:
        values, fixed = _profile_values(samples, names)
        constants = {**fixed, **(constants or {})}
    else:
        values = from_samples(samples, scalar_names(samples) if names is None else names, n=n, seed=seed)
    ens = simulate_ensemble(model, values, t, y0, constants=constants, **simulate_kwargs)
    if isinstance(observable, str):
        series = ens.state(observable)
        label = observable
    else:
        import jax
        import jax.numpy as jnp

        fn = jax.vmap(lambda tt, y, p: observable(tt, y, p), in_axes=(0, 0, None))
        series = np.stack([
            np.asarray(fn(jnp.asarray(ens.t), jnp.asarray(ens.states[i]), {**{k: float(v[i]) for k, v in values.items()}, **(constants or {})}))
            for i in range(len(ens))
        ])
        label = getattr(observable, "__name__", "observable")
    good = ens.ok & np.all(np.isfinite(series), axis=1)
    if not good.any():
        raise ProblemDefinitionError("every sampled simulation failed; no band can be drawn")
    q = np.array([0.0, 0.5, 1.0]) if envelope else np.asarray(sorted(quantiles), dtype=float)
    return PredictionBands(
        t=ens.t, quantiles=q, values=np.quantile(series[good], q, axis=0), name=label,
        n_samples=int(good.sum()), n_failed=int((~good).sum()),
        kind=f"profile envelope ({samples.alpha:.0%})" if envelope else "quantiles",
    )


def _profile_values(pr: Any, names: Sequence[str] | None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Natural-scale parameter sets along the profiles inside the confidence region
    (the crossings included), and the problem's fixed parameters."""
    if pr.result is None:
        raise ProblemDefinitionError("the ProfileResult carries no FitResult (result=None)")
    problem = pr.result.problem
    chosen = list(pr.profiles) if names is None else list(names)
    unknown = [k for k in chosen if k not in pr.profiles]
    if unknown:
        raise ProblemDefinitionError(f"no profile for {unknown}; profiled: {list(pr.profiles)}")
    xs = np.concatenate([pr.profiles[k].within(pr.threshold, pr.optimum) for k in chosen])
    natural = [problem.to_natural(x) for x in xs]
    free = problem.parameter_names
    values = {k: np.array([d[k] for d in natural]) for k in free}
    fixed = {k: float(v) for k, v in natural[0].items() if k not in free}
    return values, fixed
