"""Parameter designs: where in parameter space to simulate.

Every design returns a dict `{name: array (n,)}` of natural-scale values for the estimated
`Parameter`s (those with `estimate=False` are constants and are not sampled). Sampling is
uniform on each parameter's *estimation scale*, so a `scale="log10"` parameter is sampled
log-uniformly between its bounds.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc

from ..errors import ProblemDefinitionError
from ..problem import Parameter, from_scale, to_scale

DESIGNS = ("sobol", "lhs", "uniform", "grid")


def _free(parameters: Sequence[Parameter]) -> list[Parameter]:
    free = [p for p in parameters if p.estimate]
    if not free:
        raise ProblemDefinitionError("a design needs at least one Parameter with estimate=True and bounds")
    return free


def unit_to_natural(unit: np.ndarray, parameters: Sequence[Parameter]) -> dict[str, np.ndarray]:
    """Map points of the unit cube `(n, d)` to natural-scale values of the `d` free parameters.

    Each coordinate is uniform on the parameter's estimation scale (log-uniform for `"log10"`).

    **Example:**

    ```python
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import unit_to_natural
    >>> ps = [fit.Parameter("k", bounds=(0.01, 100), scale="log10"), fit.Parameter("a", bounds=(0, 2))]
    >>> {k: v.round(6).tolist() for k, v in unit_to_natural([[0.5, 0.25]], ps).items()}
    {'k': [1.0], 'a': [0.5]}

    ```
    """
    free = _free(parameters)
    unit = np.atleast_2d(np.asarray(unit, dtype=float))
    if unit.shape[1] != len(free):
        raise ProblemDefinitionError(f"expected {len(free)} columns (one per free parameter), got {unit.shape[1]}")
    out = {}
    for j, p in enumerate(free):
        lo, hi = (to_scale(b, p.scale) for b in p.bounds)  # type: ignore[union-attr]
        out[p.name] = np.asarray(from_scale(lo + unit[:, j] * (hi - lo), p.scale), dtype=float)
    return out


def natural_to_unit(values: Mapping[str, Any], parameters: Sequence[Parameter]) -> np.ndarray:
    """Inverse of `unit_to_natural`: `(n, d)` coordinates in the unit cube.

    **Example:**

    ```python
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import natural_to_unit
    >>> ps = [fit.Parameter("k", bounds=(0.01, 100), scale="log10")]
    >>> natural_to_unit({"k": [0.1, 1.0]}, ps).round(6).tolist()
    [[0.25], [0.5]]

    ```
    """
    free = _free(parameters)
    cols = []
    for p in free:
        lo, hi = (to_scale(b, p.scale) for b in p.bounds)  # type: ignore[union-attr]
        cols.append((to_scale(np.asarray(values[p.name], dtype=float), p.scale) - lo) / (hi - lo))
    return np.stack(cols, axis=-1)


def sample_parameters(
    parameters: Sequence[Parameter], n: int, design: str = "sobol", seed: int | None = 0
) -> dict[str, np.ndarray]:
    """Draw `n` parameter sets within the bounds.

    **Arguments:**

    - `parameters`: `fit.Parameter`s; the estimated ones are sampled.
    - `n`: number of points (for `"grid"`, points per axis: `n ** d` in all).
    - `design`: `"sobol"` (scrambled Sobol sequence), `"lhs"` (Latin hypercube), `"uniform"`
      (independent uniform draws) or `"grid"` (a full factorial grid, bounds included).
    - `seed`: for reproducible designs.

    **Example:**

    ```python
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import sample_parameters
    >>> ps = [fit.Parameter("k", bounds=(0.1, 10), scale="log10"), fit.Parameter("a", bounds=(0, 1))]
    >>> d = sample_parameters(ps, 8, design="lhs")
    >>> sorted(d), d["k"].shape, bool((d["k"] >= 0.1).all() and (d["k"] <= 10).all())
    (['a', 'k'], (8,), True)

    ```
    """
    free = _free(parameters)
    dim = len(free)
    if n < 1:
        raise ProblemDefinitionError("n must be at least 1")
    if design == "sobol":
        with warnings.catch_warnings():  # balance is best at powers of 2; any n is still valid
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            unit = qmc.Sobol(dim, scramble=True, seed=seed).random(n)
    elif design == "lhs":
        unit = qmc.LatinHypercube(dim, seed=seed).random(n)
    elif design == "uniform":
        unit = np.random.default_rng(seed).random((n, dim))
    elif design == "grid":
        axes = np.linspace(0.0, 1.0, n)
        unit = np.stack([g.ravel() for g in np.meshgrid(*([axes] * dim), indexing="ij")], axis=-1)
    else:
        raise ProblemDefinitionError(f"unknown design {design!r}; choose one of {DESIGNS}")
    return unit_to_natural(unit, free)


def scalar_names(samples: Any) -> list[str]:
    """Names of the scalar parameters in posterior samples (variables with only chain and
    draw dimensions of an ArviZ `InferenceData`, or the keys of a dict).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore.design import scalar_names
    >>> scalar_names({"k": np.ones((2, 5)), "sigma": np.ones(10)})
    ['k', 'sigma']

    ```
    """
    posterior = getattr(samples, "posterior", None)
    if posterior is None:
        if not isinstance(samples, Mapping):
            raise ProblemDefinitionError("samples must be an ArviZ InferenceData or a dict of arrays")
        return list(samples)
    return [str(k) for k, v in posterior.data_vars.items() if set(v.dims) <= {"chain", "draw"}]


def from_samples(samples: Any, names: Sequence[str], n: int | None = None, seed: int | None = 0) -> dict[str, np.ndarray]:
    """Parameter sets from posterior samples: an ArviZ `InferenceData`, or a dict of arrays.

    Chains and draws are flattened; `n` draws are taken without replacement if given.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.fit.explore import from_samples
    >>> from_samples({"k": np.ones((2, 5))}, ["k"], n=3)["k"].shape
    (3,)

    ```
    """
    posterior = getattr(samples, "posterior", samples)
    out = {}
    for name in names:
        try:
            values = posterior[name]
        except KeyError as exc:
            raise ProblemDefinitionError(f"the samples have no parameter {name!r}") from exc
        out[name] = np.asarray(getattr(values, "values", values), dtype=float).reshape(-1)
    total = len(next(iter(out.values())))
    if n is not None and n < total:
        idx = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
        out = {k: v[idx] for k, v in out.items()}
    return out
