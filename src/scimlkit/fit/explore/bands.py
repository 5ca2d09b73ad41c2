"""Prediction uncertainty: bands of observables from posterior samples or profile results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ProblemDefinitionError
from ..problem import ODEModel
from .design import from_samples
from .ensemble import Y0, simulate_ensemble


@dataclass
class PredictionBands:
    """Quantiles of an observable over time across parameter samples.

    `quantiles` `(q,)` and `values` `(q, T)`; `lower`/`median`/`upper` are the first, middle and
    last rows.
    """

    t: np.ndarray
    quantiles: np.ndarray
    values: np.ndarray
    name: str
    n_samples: int
    n_failed: int

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
      arrays), or parameter sets along a profile (a dict of arrays, e.g. those of
      `fit.profile` within its confidence threshold).
    - `names`: which parameters to take from `samples` (default: all keys of a dict).
    - `observable`: a state name or `fn(t, y, p) -> value` (vectorised over time).
    - `n`: at most this many samples are simulated.

    **Example:**

    ```python
    bands = prediction_bands(model, idata, t=np.linspace(0, 20, 200), y0=[30.0, 4.0],
                             observable="prey", names=["alpha", "beta", "gamma", "delta"])
    bands.plot(data=(t_obs, y_obs[:, 0]))
    ```
    """
    if names is None:
        if not isinstance(samples, Mapping):
            raise ProblemDefinitionError("give names= (the parameters to take from the samples)")
        names = list(samples)
    values = from_samples(samples, names, n=n, seed=seed)
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
    q = np.asarray(sorted(quantiles), dtype=float)
    return PredictionBands(
        t=ens.t, quantiles=q, values=np.quantile(series[good], q, axis=0), name=label,
        n_samples=int(good.sum()), n_failed=int((~good).sum()),
    )
