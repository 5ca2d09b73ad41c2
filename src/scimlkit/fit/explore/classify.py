"""Outcome classifiers and regression surrogates: from parameters to properties of solutions.

`classify_outcomes` samples parameter space, simulates an ensemble, labels every run with a
categorical property (oscillates? epidemic? blows up?), trains a classifier (scikit-learn's
SVM, or an Equinox MLP) on the parameters — on their estimation scale, so log-scaled
parameters are learned in log space — and reports held-out accuracy and a confusion matrix.
`fit_surrogate` does the same for continuous properties with a regressor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ProblemDefinitionError
from ..problem import ODEModel, Parameter, to_scale
from .ensemble import Y0, Ensemble, simulate_ensemble
from .properties import Property, evaluate_property


def _features(values: Mapping[str, Any], parameters: Sequence[Parameter]) -> np.ndarray:
    cols = []
    for p in parameters:
        if p.name not in values:
            raise ProblemDefinitionError(f"no values for parameter {p.name!r}")
        cols.append(to_scale(np.asarray(values[p.name], dtype=float).reshape(-1), p.scale))
    return np.stack(cols, axis=-1)


class _EquinoxMLP:
    """A small Equinox MLP trained with optax (Adam); `predict_proba`/`predict` like scikit-learn."""

    def __init__(self, hidden: Sequence[int] = (64, 64), steps: int = 2000, learning_rate: float = 3e-3,
                 seed: int = 0, task: str = "classification") -> None:
        self.hidden, self.steps, self.learning_rate, self.seed, self.task = tuple(hidden), steps, learning_rate, seed, task

    def fit(self, X: np.ndarray, y: np.ndarray) -> _EquinoxMLP:
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        import optax

        self.mean_, self.scale_ = X.mean(0), X.std(0) + 1e-12
        Xs = jnp.asarray((X - self.mean_) / self.scale_)
        if self.task == "classification":
            self.classes_, codes = np.unique(y, return_inverse=True)
            out, target = len(self.classes_), jnp.asarray(codes)
        else:
            self.y_mean_, self.y_scale_ = float(np.mean(y)), float(np.std(y) + 1e-12)
            out, target = 1, jnp.asarray((y - self.y_mean_) / self.y_scale_)
        key = jax.random.PRNGKey(self.seed)
        width = self.hidden[0] if self.hidden else 32
        model = eqx.nn.MLP(X.shape[1], out, width, len(self.hidden), activation=jax.nn.gelu, key=key)
        optimizer = optax.adam(self.learning_rate)
        state = optimizer.init(eqx.filter(model, eqx.is_array))

        def loss(m):
            logits = jax.vmap(m)(Xs)
            if self.task == "classification":
                return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()
            return jnp.mean((logits[:, 0] - target) ** 2)

        @eqx.filter_jit
        def step(m, s):
            value, grads = eqx.filter_value_and_grad(loss)(m)
            updates, s = optimizer.update(grads, s, eqx.filter(m, eqx.is_array))
            return eqx.apply_updates(m, updates), s, value

        for _ in range(self.steps):
            model, state, _ = step(model, state)
        self.model_ = model
        return self

    def _raw(self, X: np.ndarray) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.vmap(self.model_)(jnp.asarray((X - self.mean_) / self.scale_)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import jax

        return np.asarray(jax.nn.softmax(self._raw(X), axis=-1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return self.classes_[self.predict_proba(X).argmax(-1)]
        return self._raw(X)[:, 0] * self.y_scale_ + self.y_mean_


def _estimator(kind: str, task: str, seed: int, dim: int = 1) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "mlp":
        return _EquinoxMLP(seed=seed, task=task)
    if task == "classification" and kind == "svm":
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(C=100.0, gamma="scale", random_state=seed))
    if task == "regression" and kind == "svm":
        from sklearn.svm import SVR

        return make_pipeline(StandardScaler(), SVR(C=10.0))
    if task == "regression" and kind == "gp":
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel() * RBF(np.ones(dim), length_scale_bounds=(1e-3, 1e6)) + WhiteKernel(1e-6, noise_level_bounds=(1e-12, 1e-1))
        return make_pipeline(StandardScaler(), GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed))
    choices = "'svm' or 'mlp'" if task == "classification" else "'gp', 'svm' or 'mlp'"
    raise ProblemDefinitionError(f"unknown {task} model {kind!r}; choose {choices}")


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < test_fraction < 1:
        raise ProblemDefinitionError("test_fraction must lie strictly between 0 and 1")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(test_fraction * n))
    return order[n_test:], order[:n_test]


@dataclass
class OutcomeClassifier:
    """A trained map from parameters to a categorical property of the solution.

    **Attributes:** `accuracy` (held-out), `confusion` (rows: true class, columns: predicted,
    ordered as `classes`), `classes`, `parameters`, `property`, `ensemble` (the simulations it
    was trained and tested on), `train_index`, `test_index`. Built by `classify_outcomes`
    (see its example).
    """

    estimator: Any
    parameters: list[Parameter]
    property: Property
    classes: np.ndarray
    accuracy: float
    confusion: np.ndarray
    ensemble: Ensemble
    labels: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def predict(self, values: Mapping[str, Any]) -> np.ndarray:
        """Predicted class for new parameter sets `{name: array}` (natural scale)."""
        return np.asarray(self.estimator.predict(_features(values, self.parameters)))

    def summary(self) -> str:
        """A text report: accuracy, class balance, confusion matrix."""
        lines = [
            f"Outcome classifier for {self.property.name}: {self.settings.get('classifier')} on "
            f"{len(self.train_index)} training / {len(self.test_index)} held-out simulations",
            f"held-out accuracy: {self.accuracy:.4f}",
            "confusion matrix (rows true, columns predicted): " + ", ".join(map(str, self.classes)),
        ]
        lines += ["  " + " ".join(f"{v:6d}" for v in row) for row in self.confusion]
        return "\n".join(lines)

    def plot_regions(self, x: str, y: str, fixed: Mapping[str, float] | None = None, *, resolution: int = 200, ax: Any = None) -> Any:
        """Draw the predicted classes on a 2-D slice (`x`, `y`) of parameter space.

        Other parameters are held at `fixed` (default: their nominal values); the sampled
        points are drawn on top, coloured by their simulated class.
        """
        import matplotlib.pyplot as plt

        by_name = {p.name: p for p in self.parameters}
        for name in (x, y):
            if name not in by_name:
                raise ProblemDefinitionError(f"{name!r} is not one of the classifier's parameters {list(by_name)}")
        grids = []
        for name in (x, y):
            p = by_name[name]
            lo, hi = p.bounds  # type: ignore[misc]
            grids.append(np.geomspace(lo, hi, resolution) if p.scale != "lin" else np.linspace(lo, hi, resolution))
        gx, gy = np.meshgrid(*grids)
        values = {p.name: np.full(gx.size, (fixed or {}).get(p.name, p.nominal)) for p in self.parameters}
        values[x], values[y] = gx.ravel(), gy.ravel()
        predicted = self.predict(values).reshape(gx.shape)
        codes = np.searchsorted(self.classes, predicted)
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        ax.contourf(gx, gy, codes, levels=np.arange(len(self.classes) + 1) - 0.5, cmap="Pastel1", alpha=0.8)
        sampled = np.searchsorted(self.classes, self.labels)
        ax.scatter(self.ensemble.params[x], self.ensemble.params[y], c=sampled, cmap="Set1", s=6,
                   vmin=0, vmax=max(len(self.classes) - 1, 1), edgecolors="none")
        for axis, name in ((ax.set_xscale, x), (ax.set_yscale, y)):
            if by_name[name].scale != "lin":
                axis("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{self.property.name}: accuracy {self.accuracy:.3f}")
        return ax


def _simulate_and_label(model, parameters, prop, n, t, y0, design, seed, simulate_kwargs):
    ensemble = simulate_ensemble(model, list(parameters), t, y0, n=n, design=design, seed=seed, **simulate_kwargs)
    prop = prop if isinstance(prop, Property) else Property(prop, name=getattr(prop, "__name__", "property"))
    return ensemble, prop, evaluate_property(prop, ensemble)


def classify_outcomes(
    model: ODEModel,
    parameters: Sequence[Parameter],
    property: Property | Callable[..., Any],
    *,
    t: Sequence[float] | np.ndarray,
    y0: Y0,
    n: int = 2000,
    classifier: str = "svm",
    design: str = "sobol",
    test_fraction: float = 0.25,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> OutcomeClassifier:
    """Learn which regions of parameter space lead to which outcome.

    **Arguments:**

    - `model`, `parameters`: a `fit.ODEModel` and the `fit.Parameter`s to vary (bounds and
      scale define the sampling box; fixed ones are constants).
    - `property`: a categorical property (`oscillates("x")`, `crosses(...)`, your own).
    - `t`, `y0`: save times and initial state of the simulations.
    - `n`: simulations; `design`: how they are placed (see `sample_parameters`).
    - `classifier`: `"svm"` (scikit-learn RBF SVM on standardised parameters) or `"mlp"`
      (an Equinox MLP trained with optax).
    - `test_fraction`: held out for the accuracy and the confusion matrix.
    - `simulate_kwargs`: passed to `simulate_ensemble` (solver, tolerances, `engine`, ...).

    Failed integrations are dropped from training (their count is in `settings`).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import classify_outcomes, crosses
    >>> growth = fit.ODEModel(lambda t, y, p: p["k"] * y, states=["y"])
    >>> ps = [fit.Parameter("k", bounds=(-1, 1)), fit.Parameter("noise", bounds=(0, 1))]
    >>> clf = classify_outcomes(growth, ps, crosses("y", 2.0), t=np.linspace(0, 5, 51), y0=[1.0], n=256)
    >>> bool(clf.accuracy > 0.9), clf.confusion.shape  # y(5) = exp(5 k) > 2 iff k > ln(2) / 5
    (True, (2, 2))
    >>> clf.predict({"k": [-0.5, 0.5], "noise": [0.5, 0.5]}).tolist()
    [False, True]
    >>> ax = clf.plot_regions("k", "noise")

    ```
    """
    free = [p for p in parameters if p.estimate]
    ensemble, prop, labels = _simulate_and_label(model, parameters, property, n, t, y0, design, seed, simulate_kwargs)
    keep = ensemble.ok & ~_isnan(labels)
    X = _features(ensemble.params, free)[keep]
    y = labels[keep]
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProblemDefinitionError(
            f"every simulation gave the same outcome ({classes.tolist()}) for {prop.name}: widen the "
            "parameter bounds, simulate longer, or check the property"
        )
    train, test = _split(len(y), test_fraction, seed)
    estimator = _estimator(classifier, "classification", seed, X.shape[1]).fit(X[train], y[train])
    predicted = np.asarray(estimator.predict(X[test]))
    confusion = np.array([[np.sum((y[test] == a) & (predicted == b)) for b in classes] for a in classes])
    kept = np.flatnonzero(keep)
    return OutcomeClassifier(
        estimator=estimator, parameters=free, property=prop, classes=classes,
        accuracy=float(np.mean(predicted == y[test])), confusion=confusion, ensemble=ensemble,
        labels=labels, train_index=kept[train], test_index=kept[test],
        settings={"classifier": classifier, "n": n, "design": design, "seed": seed, "failed": int((~ensemble.ok).sum())},
    )


def _isnan(values: np.ndarray) -> np.ndarray:
    return np.isnan(values) if np.issubdtype(values.dtype, np.floating) else np.zeros(len(values), bool)


@dataclass
class Surrogate:
    """A regression surrogate of a continuous property; `r2` on held-out simulations.
    Built by `fit_surrogate` (see its example)."""

    estimator: Any
    parameters: list[Parameter]
    property: Property
    r2: float
    ensemble: Ensemble
    values: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def predict(self, values: Mapping[str, Any]) -> np.ndarray:
        """Predicted property for new parameter sets `{name: array}` (natural scale)."""
        return np.asarray(self.estimator.predict(_features(values, self.parameters)), dtype=float)


def fit_surrogate(
    model: ODEModel,
    parameters: Sequence[Parameter],
    property: Property | Callable[..., Any],
    *,
    t: Sequence[float] | np.ndarray,
    y0: Y0,
    n: int = 1000,
    regressor: str = "gp",
    design: str = "sobol",
    test_fraction: float = 0.25,
    seed: int = 0,
    **simulate_kwargs: Any,
) -> Surrogate:
    """Learn a continuous property (steady-state value, peak time, period, ...) from parameters.

    `regressor`: `"gp"` (Gaussian process), `"svm"` (SVR) or `"mlp"` (Equinox MLP).
    Runs whose property is NaN (failed, or undefined such as the period of a non-oscillation)
    are left out.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import final_value, fit_surrogate
    >>> decay = fit.ODEModel(lambda t, y, p: -p["k"] * y, states=["A"])
    >>> sur = fit_surrogate(decay, [fit.Parameter("k", bounds=(0.1, 1.0))], final_value("A"),
    ...                     t=[0.0, 1.0], y0=[1.0], n=64)
    >>> bool(sur.r2 > 0.999), np.round(sur.predict({"k": [0.5]}), 3).tolist()  # exp(-0.5)
    (True, [0.607])

    ```
    """
    free = [p for p in parameters if p.estimate]
    ensemble, prop, values = _simulate_and_label(model, parameters, property, n, t, y0, design, seed, simulate_kwargs)
    values = values.astype(float)
    keep = np.isfinite(values)
    if keep.sum() < 10:
        raise ProblemDefinitionError(f"only {int(keep.sum())} finite values of {prop.name}: nothing to learn from")
    X, y = _features(ensemble.params, free)[keep], values[keep]
    train, test = _split(len(y), test_fraction, seed)
    estimator = _estimator(regressor, "regression", seed, X.shape[1]).fit(X[train], y[train])
    predicted = np.asarray(estimator.predict(X[test]), dtype=float)
    r2 = 1.0 - np.sum((y[test] - predicted) ** 2) / max(np.sum((y[test] - y[test].mean()) ** 2), 1e-300)
    return Surrogate(estimator, free, prop, float(r2), ensemble, values,
                     {"regressor": regressor, "n": n, "design": design, "seed": seed})
