"""Global sensitivity analysis: Sobol indices (first order and total) and Morris screening.

Sobol indices use Saltelli's sampling scheme on a scrambled Sobol sequence: two independent
matrices A and B of `n` points and, for each parameter i, A with column i taken from B. The
first-order index uses Saltelli et al. (2010)'s estimator
`S_i = mean(f(B) * (f(AB_i) - f(A))) / Var(f)` and the total index Jansen's
`ST_i = mean((f(A) - f(AB_i))**2) / (2 Var(f))`; confidence intervals come from a bootstrap
over the `n` rows. Morris screening computes elementary effects along `r` one-at-a-time
trajectories on a `levels`-level grid: `mu_star` (mean absolute effect) ranks importance,
`sigma` flags non-linearity or interactions.

Both work on any function of parameter sets (`evaluate({name: (m,)}) -> (m,)`), and on a
model + property through `sensitivity`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from ..errors import ProblemDefinitionError
from ..problem import ODEModel, Parameter
from .design import unit_to_natural
from .ensemble import Y0, simulate_ensemble
from .properties import Property, evaluate_property

Evaluate = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass
class SobolIndices:
    """First-order (`first`) and total (`total`) Sobol indices with bootstrap confidence intervals.

    Example:
        >>> from scimlkit import fit
        >>> from scimlkit.fit.explore import sobol_indices
        >>> s = sobol_indices(lambda p: p["a"] * p["b"], [fit.Parameter(k, bounds=(0, 1)) for k in "ab"], n=1024)
        >>> s.first_ci.shape, "ST" in s.summary()
        ((2, 2), True)
    """

    names: list[str]
    first: np.ndarray
    total: np.ndarray
    first_ci: np.ndarray  # (d, 2)
    total_ci: np.ndarray  # (d, 2)
    n: int
    evaluations: int
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"S1": float(s), "ST": float(t)} for k, s, t in zip(self.names, self.first, self.total, strict=True)}

    def summary(self) -> str:
        lines = [f"Sobol indices ({self.evaluations} evaluations, {self.settings.get('confidence', 0.95):.0%} bootstrap CI)",
                 f"{'parameter':>14} {'S1':>8} {'S1 CI':>19} {'ST':>8} {'ST CI':>19}"]
        for i, k in enumerate(self.names):
            lines.append(
                f"{k:>14} {self.first[i]:8.3f} [{self.first_ci[i, 0]:7.3f},{self.first_ci[i, 1]:7.3f}]"
                f" {self.total[i]:8.3f} [{self.total_ci[i, 0]:7.3f},{self.total_ci[i, 1]:7.3f}]"
            )
        return "\n".join(lines)

    def plot(self, ax: Any = None) -> Any:
        """Bar plot of S1 and ST with their confidence intervals."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(1.2 * len(self.names) + 2, 3.5))
        x = np.arange(len(self.names))
        for offset, values, ci, label in ((-0.2, self.first, self.first_ci, "first order"), (0.2, self.total, self.total_ci, "total")):
            err = np.abs(np.stack([values - ci[:, 0], ci[:, 1] - values]))
            ax.bar(x + offset, values, 0.4, yerr=err, capsize=3, label=label)
        ax.set_xticks(x, self.names)
        ax.set_ylabel("Sobol index")
        ax.legend()
        return ax


def _free(parameters: Sequence[Parameter]) -> list[Parameter]:
    return [p for p in parameters if p.estimate]


def _saltelli(y_a: np.ndarray, y_b: np.ndarray, y_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    var = np.var(np.concatenate([y_a, y_b]), ddof=1)
    if not np.isfinite(var) or var <= 0:
        raise ProblemDefinitionError("the output does not vary over the sampled box: Sobol indices are undefined")
    first = np.mean(y_b[:, None] * (y_ab - y_a[:, None]), axis=0) / var
    total = 0.5 * np.mean((y_a[:, None] - y_ab) ** 2, axis=0) / var
    return first, total


def sobol_indices(
    evaluate: Evaluate,
    parameters: Sequence[Parameter],
    *,
    n: int = 1024,
    bootstrap: int = 300,
    confidence: float = 0.95,
    seed: int = 0,
) -> SobolIndices:
    """Sobol first-order and total indices of `evaluate` over the parameters' box.

    **Arguments:**

    - `evaluate`: maps `{name: array (m,)}` (natural scale) to outputs `(m,)`; called once on
      all `n * (d + 2)` points. Non-finite outputs raise (drop failed runs beforehand, or use
      `sensitivity` which does).
    - `parameters`: the varied `fit.Parameter`s (uniform on their estimation scale).
    - `n`: base sample size (a power of 2 keeps the Sobol sequence balanced).
    - `bootstrap`, `confidence`: bootstrap resamples and level of the intervals.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import sobol_indices
    >>> ps = [fit.Parameter("a", bounds=(0, 1)), fit.Parameter("b", bounds=(0, 1))]
    >>> s = sobol_indices(lambda p: p["a"] + 2 * p["b"], ps, n=4096)
    >>> np.round(s.first, 2).tolist()  # exact: 1/5 and 4/5
    [0.2, 0.8]

    ```
    """
    free = _free(parameters)
    d = len(free)
    if d < 1:
        raise ProblemDefinitionError("sobol_indices needs at least one estimated parameter")
    unit = qmc.Sobol(2 * d, scramble=True, seed=seed).random(n)
    a, b = unit[:, :d], unit[:, d:]
    ab = np.repeat(a[None], d, axis=0)
    for i in range(d):
        ab[i, :, i] = b[:, i]
    points = np.concatenate([a, b, ab.reshape(d * n, d)])
    values = unit_to_natural(points, free)
    y = np.asarray(evaluate(values), dtype=float).reshape(-1)
    if y.shape != (len(points),):
        raise ProblemDefinitionError(f"evaluate returned shape {y.shape}, expected ({len(points)},)")
    if not np.all(np.isfinite(y)):
        raise ProblemDefinitionError(
            f"{int((~np.isfinite(y)).sum())} outputs are not finite; Sobol estimators need every point "
            "(narrow the bounds, or fix failing simulations)"
        )
    y_a, y_b, y_ab = y[:n], y[n : 2 * n], y[2 * n :].reshape(d, n).T
    first, total = _saltelli(y_a, y_b, y_ab)
    rng = np.random.default_rng(seed)
    boot_first, boot_total = [], []
    for _ in range(bootstrap):
        rows = rng.integers(0, n, n)
        f, t = _saltelli(y_a[rows], y_b[rows], y_ab[rows])
        boot_first.append(f)
        boot_total.append(t)
    alpha = (1 - confidence) / 2
    q = [alpha, 1 - alpha]
    return SobolIndices(
        names=[p.name for p in free], first=first, total=total,
        first_ci=np.quantile(np.array(boot_first), q, axis=0).T if bootstrap else np.tile(first[:, None], 2),
        total_ci=np.quantile(np.array(boot_total), q, axis=0).T if bootstrap else np.tile(total[:, None], 2),
        n=n, evaluations=len(points), settings={"bootstrap": bootstrap, "confidence": confidence, "seed": seed},
    )


@dataclass
class MorrisResult:
    """Morris elementary effects: `mu_star` (importance), `mu` (signed), `sigma` (non-linearity),
    and `mu_star_ci` `(d, 2)`, a bootstrap confidence interval of `mu_star` over the trajectories
    (as SALib's `mu_star_conf`, but as an interval).

    Example:
        >>> from scimlkit import fit
        >>> from scimlkit.fit.explore import morris
        >>> m = morris(lambda p: 3 * p["a"], [fit.Parameter(k, bounds=(0, 1)) for k in "ab"])
        >>> m.mu_star.tolist(), m.mu_star_ci.tolist()  # a linear effect is the same on every path
        ([3.0, 0.0], [[3.0, 3.0], [0.0, 0.0]])
    """

    names: list[str]
    mu: np.ndarray
    mu_star: np.ndarray
    sigma: np.ndarray
    evaluations: int
    mu_star_ci: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> list[str]:
        """Parameter names by decreasing `mu_star`."""
        return [self.names[i] for i in np.argsort(-self.mu_star)]

    def summary(self) -> str:
        """A table of mu*, its interval, mu and sigma per parameter."""
        ci = self.mu_star_ci if self.mu_star_ci is not None else np.stack([self.mu_star, self.mu_star], -1)
        lines = [f"Morris screening ({self.evaluations} evaluations, {self.settings.get('confidence', 0.95):.0%} bootstrap CI)",
                 f"{'parameter':>14} {'mu*':>9} {'mu* CI':>21} {'mu':>9} {'sigma':>9}"]
        for i, k in enumerate(self.names):
            lines.append(f"{k:>14} {self.mu_star[i]:9.4g} [{ci[i, 0]:9.4g},{ci[i, 1]:9.4g}] "
                         f"{self.mu[i]:9.4g} {self.sigma[i]:9.4g}")
        return "\n".join(lines)

    def plot(self, ax: Any = None, kind: str = "bar") -> Any:
        """`kind="bar"`: mu* per parameter with its confidence interval; `"scatter"`: the
        classic (mu*, sigma) plane, one labelled point per parameter."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(1.0 * len(self.names) + 2, 3.5) if kind == "bar" else (4.5, 3.5))
        if kind == "bar":
            x = np.arange(len(self.names))
            err = None
            if self.mu_star_ci is not None:
                err = np.abs(np.stack([self.mu_star - self.mu_star_ci[:, 0], self.mu_star_ci[:, 1] - self.mu_star]))
            ax.bar(x, self.mu_star, 0.6, yerr=err, capsize=3)
            ax.set_xticks(x, self.names)
            ax.set_ylabel("mu* (Morris)")
            return ax
        if kind != "scatter":
            raise ProblemDefinitionError(f"kind must be 'bar' or 'scatter', not {kind!r}")
        ax.scatter(self.mu_star, self.sigma)
        for k, x, y in zip(self.names, self.mu_star, self.sigma, strict=True):
            ax.annotate(k, (x, y), textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("mu*")
        ax.set_ylabel("sigma")
        return ax


def morris(
    evaluate: Evaluate,
    parameters: Sequence[Parameter],
    *,
    trajectories: int = 20,
    levels: int = 4,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MorrisResult:
    """Morris screening with `trajectories` random one-at-a-time paths on a `levels`-level grid.

    Effects are measured in the unit cube of the parameters' estimation scales (so they are
    comparable across parameters). `mu_star_ci` is a percentile bootstrap interval of
    `mu_star` over the trajectories (`bootstrap` resamples, level `confidence`).

    **Example:**

    ```python
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import morris
    >>> ps = [fit.Parameter(k, bounds=(0, 1)) for k in "abc"]
    >>> morris(lambda p: 5 * p["a"] + p["b"], ps).ranking()
    ['a', 'b', 'c']

    ```
    """
    free = _free(parameters)
    d = len(free)
    rng = np.random.default_rng(seed)
    delta = levels / (2 * (levels - 1))
    grid = np.arange(levels // 2) / (levels - 1)  # starts from which +delta stays inside [0, 1]
    paths = []
    for _ in range(trajectories):
        x = rng.choice(grid, size=d)
        order = rng.permutation(d)
        path = [x.copy()]
        for i in order:
            x = x.copy()
            x[i] += delta
            path.append(x)
        paths.append((np.array(path), order))
    points = np.concatenate([p for p, _ in paths])
    y = np.asarray(evaluate(unit_to_natural(points, free)), dtype=float).reshape(trajectories, d + 1)
    effects = np.zeros((trajectories, d))
    for r, (_, order) in enumerate(paths):
        effects[r, order] = np.diff(y[r]) / delta
    mu_star = np.abs(effects).mean(0)
    if bootstrap:
        rows = rng.integers(0, trajectories, (bootstrap, trajectories))
        boot = np.abs(effects)[rows].mean(axis=1)  # (bootstrap, d)
        alpha = (1 - confidence) / 2
        ci = np.quantile(boot, [alpha, 1 - alpha], axis=0).T
    else:
        ci = np.stack([mu_star, mu_star], axis=-1)
    return MorrisResult(
        names=[p.name for p in free], mu=effects.mean(0), mu_star=mu_star,
        sigma=effects.std(0, ddof=1) if trajectories > 1 else np.zeros(d), evaluations=len(points),
        mu_star_ci=ci, settings={"trajectories": trajectories, "levels": levels, "bootstrap": bootstrap,
                                 "confidence": confidence, "seed": seed},
    )


def sensitivity(
    model: ODEModel,
    parameters: Sequence[Parameter],
    property: Property | Callable[..., Any],
    *,
    t: Sequence[float] | np.ndarray,
    y0: Y0,
    method: str = "sobol",
    n: int = 512,
    seed: int = 0,
    **kwargs: Any,
) -> SobolIndices | MorrisResult:
    """Global sensitivity of a scalar property of `model`'s solution to its parameters.

    `method="sobol"` (with `n`, `bootstrap`, `confidence`) or `"morris"` (with
    `trajectories`, `levels`); other keyword arguments go to `simulate_ensemble`.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import final_value, sensitivity
    >>> model = fit.ODEModel(lambda t, y, p: -p["k"] * y, states=["A"])
    >>> ps = [fit.Parameter("k", bounds=(0.1, 1.0)), fit.Parameter("unused", bounds=(0.0, 1.0))]
    >>> s = sensitivity(model, ps, final_value("A"), t=[0.0, 1.0], y0=[1.0], n=256)
    >>> np.round(s.total, 1).tolist()  # A(1) = exp(-k) depends on k alone
    [1.0, 0.0]
    >>> m = sensitivity(model, ps, final_value("A"), t=[0.0, 1.0], y0=[1.0], method="morris")
    >>> m.ranking()
    ['k', 'unused']

    ```
    """
    method_keys = {"sobol": ("bootstrap", "confidence"), "morris": ("trajectories", "levels", "bootstrap", "confidence")}
    if method not in method_keys:
        raise ProblemDefinitionError(f"method must be 'sobol' or 'morris', not {method!r}")
    method_kwargs = {k: kwargs.pop(k) for k in method_keys[method] if k in kwargs}
    prop = property if isinstance(property, Property) else Property(property)
    constants = {p.name: float(p.value) for p in parameters if not p.estimate}  # type: ignore[arg-type]

    constants.update(kwargs.pop("constants", None) or {})

    def evaluate(values: Mapping[str, np.ndarray]) -> np.ndarray:
        ens = simulate_ensemble(model, dict(values), t, y0, constants=constants, **kwargs)
        return evaluate_property(prop, ens).astype(float)

    if method == "sobol":
        return sobol_indices(evaluate, parameters, n=n, seed=seed, **method_kwargs)
    return morris(evaluate, parameters, seed=seed, **method_kwargs)
