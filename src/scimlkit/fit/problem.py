"""Problem definition: model, parameters, observables, experiments, noise.

How a `Problem` is assembled
----------------------------

1. **Model.** `ODEModel(rhs, states=[...])` where `rhs(t, y, p) -> dy/dt` is written with
   `jax.numpy`; `y` is a 1-D array ordered like `states`, `p` a dict of scalars by name
   (estimated parameters, fixed parameters and the experiment's constants).
2. **Parameters.** One `Parameter(name, bounds=(lo, hi), scale="lin"|"log"|"log10",
   value=..., estimate=True, prior=None)` per quantity the model, the initial states, the
   observables or the noise models refer to. Estimation works on the *scaled* values
   (`log10(k)` for `scale="log10"`); bounds are given on the natural scale. A parameter with
   `estimate=False` is a fixed constant (`value` required).
3. **Observables.** `Observable(name, fn, noise=...)` with `fn(t, y, p) -> scalar` or a state
   name. When omitted, every state is observed directly (Gaussian noise, sigma 1).
4. **Noise.** `Gaussian(sigma=...)`, `Laplace(scale=...)` or `LogNormal(sigma=...)`, the scale a
   number, a parameter name (estimated) or a callable (see `scimlkit.fit.noise`).
5. **Experiments.** `Experiment(t, data, y0=..., constants={...})`: time points, a data
   array `(len(t), n_observables)` (or a dict by observable name; NaN = missing), an
   initial state (numbers, parameter names, or a callable `y0(p)`), condition constants
   (numbers, or parameter names to map one parameter onto another), optional bolus
   `doses`, and optional per-experiment noise or per-point `sigma`.
6. **Problem.** `Problem(model, experiments, parameters, observables=None,
   regularization=None, solver="auto", rtol=..., atol=..., max_steps=...)` validates
   everything once (names, shapes, a trial evaluation of the RHS) and raises
   `ProblemDefinitionError` naming what is wrong.

Evaluating a problem
--------------------

Let `x` be a vector of the estimated parameters on their estimation scale, ordered as
`problem.parameter_names` (`problem.lower`/`problem.upper` are its bounds, `problem.x0` the
nominal point, `problem.to_natural(x)` / `problem.from_natural(d)` convert).

- JAX-traceable (use under `jit`/`grad`/numpyro): `problem.nll(x)` (data negative
  log-likelihood), `problem.log_prior(x)`, `problem.penalty(x)` (regularization),
  `problem.objective_fn(x) = nll - log_prior + penalty`, `problem.residuals(x)` (Gauss-Newton
  form: `objective = 0.5 * sum(residuals**2) + const`).
- Compiled once, NumPy in and out, counted: `problem.compiled` (`objective`, `gradient`,
  `residuals`, `jacobian`); what `scimlkit.fit.estimate` uses. A failed solve gives `inf`.
- `problem.simulate(params, t=None)`: states and observables of each experiment (NumPy).

Example:
    >>> import jax.numpy as jnp, numpy as np
    >>> from scimlkit import fit
    >>> def decay(t, y, p):
    ...     return -p["k"] * y
    >>> t = np.array([0.5, 1.0, 2.0])
    >>> exp = fit.Experiment(t, np.exp(-0.7 * t)[:, None], y0=[1.0], noise=fit.Gaussian(0.05))
    >>> problem = fit.Problem(fit.ODEModel(decay, states=["A"]), [exp],
    ...                       [fit.Parameter("k", bounds=(0.01, 10), scale="log10")])
    >>> round(float(problem.compiled.objective(problem.from_natural({"k": 0.7}))), 2)  # 3 * log(0.05 sqrt(2 pi))
    -6.23
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ProblemDefinitionError
from .noise import Gaussian, NoiseModel
from .priors import L1, L2, Prior, UniformPrior
from .simulate import (
    NONSTIFF_DEFAULT,
    STIFF_DEFAULT,
    STIFFNESS_THRESHOLD,
    SolverSettings,
    resolve_solver,
    reverse_adjoint,
    solve,
    stiffness_ratio,
)

if TYPE_CHECKING:
    from .objective import CompiledProblem

Scale = Literal["lin", "log", "log10"]
_SCALES = ("lin", "log", "log10")


# ----------------------------------------------------------------------------- building blocks
@dataclass(frozen=True)
class ODEModel:
    """An ODE `dy/dt = rhs(t, y, p)` with named states.

    **Arguments:**
    - `rhs`: `rhs(t, y, p) -> array` like `y`, written with `jax.numpy`. `p` maps names
      to scalars. For parallel engines (`engine="processes"`) define it at module level so
      it can be pickled.
    - `states`: state names, in the order of `y`.
    - `name`: a label for summaries and plots.
    - `stiff`: a hint for `solver="auto"` (True: Kvaerno5, False: Tsit5; None: estimate).

    Example:
        >>> import jax.numpy as jnp
        >>> from scimlkit import fit
        >>> def lv(t, y, p):
        ...     x, z = y
        ...     return jnp.stack([p["alpha"] * x - p["beta"] * x * z, -p["gamma"] * z + p["delta"] * x * z])
        >>> fit.ODEModel(lv, states=["prey", "predator"]).states
        ('prey', 'predator')
    """

    rhs: Callable[[Any, Any, Mapping[str, Any]], Any]
    states: Sequence[str]
    name: str = "model"
    stiff: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", tuple(self.states))
        if not callable(self.rhs):
            raise ProblemDefinitionError("ODEModel.rhs must be a callable rhs(t, y, p)")
        if not self.states or len(set(self.states)) != len(self.states):
            raise ProblemDefinitionError(f"state names must be unique and non-empty, got {self.states}")


@dataclass(frozen=True)
class Parameter:
    """A model, initial-state, observable or noise parameter.

    **Arguments:**
    - `name`: the key under which the model functions find it in `p`.
    - `bounds`: `(low, high)` on the natural scale (required when estimated).
    - `scale`: estimation scale, `"lin"`, `"log"` or `"log10"` (log scales need `low > 0`).
    - `value`: nominal value (natural scale); default the (geometric) middle of the bounds.
      Required when `estimate=False`.
    - `estimate`: False makes it a fixed constant.
    - `prior`: a `scimlkit.fit` prior (`NormalPrior`, ...) for MAP estimation and sampling.

    Example:
        >>> from scimlkit import fit
        >>> fit.Parameter("k", bounds=(1e-3, 1e3), scale="log10").nominal
        1.0
    """

    name: str
    bounds: tuple[float, float] | None = None
    scale: Scale = "lin"
    value: float | None = None
    estimate: bool = True
    prior: Prior | None = None

    def __post_init__(self) -> None:
        if self.scale not in _SCALES:
            raise ProblemDefinitionError(
                f"parameter {self.name!r}: scale must be one of {_SCALES}, not {self.scale!r}"
            )
        if not self.estimate:
            if self.value is None:
                raise ProblemDefinitionError(f"fixed parameter {self.name!r} needs a value")
            return
        if self.bounds is None or len(self.bounds) != 2:
            raise ProblemDefinitionError(
                f"parameter {self.name!r} is estimated but has no bounds=(low, high)"
            )
        lo, hi = (float(b) for b in self.bounds)
        object.__setattr__(self, "bounds", (lo, hi))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ProblemDefinitionError(
                f"parameter {self.name!r}: bounds must be finite with low < high, got {self.bounds}"
            )
        if self.scale != "lin" and lo <= 0:
            raise ProblemDefinitionError(
                f"parameter {self.name!r}: scale {self.scale!r} needs a positive lower bound, "
                f"got {lo}; use scale='lin' or a bound like 1e-6"
            )
        if self.value is not None and not (lo <= self.value <= hi):
            raise ProblemDefinitionError(
                f"parameter {self.name!r}: value {self.value} is outside bounds {self.bounds}"
            )

    @property
    def nominal(self) -> float:
        """The nominal natural-scale value (given, or the middle of the bounds on its scale)."""
        if self.value is not None:
            return float(self.value)
        lo, hi = self.bounds  # type: ignore[misc]
        return float(from_scale((to_scale(lo, self.scale) + to_scale(hi, self.scale)) / 2, self.scale))


@dataclass(frozen=True)
class Observable:
    """A measured quantity: `fn(t, y, p) -> scalar`, or the name of a state.

    **Arguments:**
    - `name`: the observable's name (a column of the experiments' data).
    - `fn`: a state name (default: `name` itself) or `fn(t, y, p)`.
    - `noise`: its noise model (default `Gaussian(sigma=1.0)`).

    Example:
        >>> from scimlkit import fit
        >>> fit.Observable("total", lambda t, y, p: p["scale"] * (y[0] + y[1]), noise=fit.Gaussian("sigma"))
        ... # doctest: +ELLIPSIS
        Observable(name='total', fn=<function <lambda> at ...>, noise=Gaussian(sigma='sigma'))
    """

    name: str
    fn: str | Callable[[Any, Any, Mapping[str, Any]], Any] | None = None
    noise: NoiseModel = field(default_factory=Gaussian)


@dataclass(frozen=True)
class Dose:
    """A bolus: at `time`, add `amount` (a number or a parameter name) to `state`.

    Example:
        >>> from scimlkit import fit
        >>> fit.Dose(time=12.0, state="gut", amount=100.0)
        Dose(time=12.0, state='gut', amount=100.0)
    """

    time: float
    state: str
    amount: float | str


@dataclass
class Experiment:
    """One experimental condition: time points, data, initial state and constants.

    **Arguments:**
    - `t`: measurement times (1-D, non-decreasing).
    - `data`: array `(len(t), n_obs)` (or `(len(t),)` for one observable) ordered like
      `observables`, or a dict `{observable: values}`; NaN marks a missing value.
    - `y0`: initial state at `t0`: a sequence of numbers or parameter names, a dict
      `{state: number | parameter name}`, or a callable `y0(p) -> array`.
    - `observables`: names of the observables measured (default: all of the problem's,
      or the dict's keys).
    - `constants`: condition constants `{name: number | parameter name}` passed in `p`
      (they override parameters of the same name in this experiment).
    - `noise`: a noise model (or `{observable: model}`) overriding the observables' own.
    - `sigma`: per-measurement noise scales, same shape as `data` (override everything).
    - `t0`: start time (default `min(0, t[0])`).
    - `doses`: bolus doses (`Dose`) given during the experiment.
    - `name`: a label.

    Example:
        >>> import numpy as np
        >>> from scimlkit import fit
        >>> e = fit.Experiment([1.0, 2.0], {"prey": [10.0, np.nan]}, y0={"prey": 5.0, "predator": "z0"})
        >>> e.data.shape
        (2, 1)
    """

    t: Any
    data: Any
    y0: Any
    observables: Sequence[str] | None = None
    constants: Mapping[str, float | str] = field(default_factory=dict)
    noise: NoiseModel | Mapping[str, NoiseModel] | None = None
    sigma: Any = None
    t0: float | None = None
    doses: Sequence[Dose] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        self.t = np.asarray(self.t, dtype=float)
        if self.t.ndim != 1 or self.t.size == 0:
            raise ProblemDefinitionError("Experiment.t must be a non-empty 1-D array of times")
        if np.any(np.diff(self.t) < 0) or not np.all(np.isfinite(self.t)):
            raise ProblemDefinitionError("Experiment.t must be finite and non-decreasing")
        if isinstance(self.data, Mapping):
            if self.observables is None:
                self.observables = list(self.data)
            cols = [np.asarray(self.data[o], dtype=float) for o in self.observables]
            self.data = np.stack(cols, axis=1)
        else:
            self.data = np.asarray(self.data, dtype=float)
            if self.data.ndim == 1:
                self.data = self.data[:, None]
        if self.data.ndim != 2 or self.data.shape[0] != self.t.size:
            raise ProblemDefinitionError(
                f"Experiment data must have shape (len(t)={self.t.size}, n_observables), "
                f"got {self.data.shape}"
            )
        if self.sigma is not None:
            self.sigma = np.broadcast_to(np.asarray(self.sigma, dtype=float), self.data.shape)
        if self.t0 is None:
            self.t0 = float(min(0.0, self.t[0]))
        if self.t0 > self.t[0]:
            raise ProblemDefinitionError(f"Experiment t0={self.t0} is after the first time {self.t[0]}")
        self.doses = tuple(self.doses)
        self.constants = dict(self.constants)


# ----------------------------------------------------------------------------- scales
def to_scale(v: Any, scale: str) -> Any:
    """Natural value -> estimation scale (NumPy or JAX)."""
    xp = jnp if isinstance(v, jax.Array) else np
    return {"lin": lambda a: a, "log": xp.log, "log10": xp.log10}[scale](v)


def from_scale(v: Any, scale: str) -> Any:
    """Estimation scale -> natural value (NumPy or JAX)."""
    xp = jnp if isinstance(v, jax.Array) else np
    return {"lin": lambda a: a, "log": xp.exp, "log10": lambda a: xp.power(10.0, a)}[scale](v)


# ----------------------------------------------------------------------------- the problem
@dataclass
class _Column:
    """One observable of one experiment, prepared for evaluation."""

    obs_index: int
    noise: NoiseModel
    rows: np.ndarray  # rows of finite data
    y: np.ndarray  # finite data values
    sigma: np.ndarray | None  # per-point override
    sigma_floor: float  # for the Gauss-Newton form of an estimated scale


@dataclass
class _Segment:
    t_start: float
    t_end: float
    rows: np.ndarray  # indices into the experiment's t saved in this segment
    doses: tuple[Dose, ...]  # applied at t_start


@dataclass(frozen=True)
class _InitialState:
    """`y0(p)` from numbers and parameter names (a class, so problems pickle)."""

    entries: tuple[float | str, ...]

    def __call__(self, p: Mapping[str, Any]) -> Any:
        return jnp.stack([jnp.asarray(p[v] if isinstance(v, str) else v, dtype=float) for v in self.entries])


class Problem:
    """An estimation problem; see the module docstring for how to assemble one.

    **Arguments:**
    - `model`: the `ODEModel`.
    - `experiments`: one `Experiment` or a list.
    - `parameters`: the `Parameter`s (estimated and fixed).
    - `observables`: the `Observable`s (default: each state observed directly).
    - `regularization`: `L1`/`L2` penalties (one or a list) on the estimation scale.
    - `solver`, `rtol`, `atol`, `max_steps`: integration settings (`SolverSettings`).
    - `gradient`: `"auto"`, `"forward"` or `"reverse"`: how derivatives are taken through the
      solver. `"auto"` uses forward mode (`diffrax.ForwardMode`) for up to 12 parameters and
      reverse mode (`RecursiveCheckpointAdjoint`) above.
    - `objective`: `"nll"` (default: negative log-likelihood, normalization constants
      included) or `"sum_of_squares"` (`sum(((y - m) / sigma)**2)`, DiffEqParamEstim's
      `L2Loss`; every noise scale must be known). Both have the same minimizer; profiles and
      Fisher intervals account for the factor 2 between them (`objective_scale`).
    - `name`: a label.
    """

    def __init__(
        self,
        model: ODEModel,
        experiments: Experiment | Sequence[Experiment],
        parameters: Sequence[Parameter],
        observables: Sequence[Observable] | None = None,
        regularization: L1 | L2 | Sequence[L1 | L2] | None = None,
        *,
        solver: Any = "auto",
        rtol: float = 1e-8,
        atol: float = 1e-10,
        max_steps: int = 20_000,
        gradient: Literal["auto", "forward", "reverse"] = "auto",
        objective: Literal["nll", "sum_of_squares"] = "nll",
        name: str | None = None,
    ) -> None:
        if not isinstance(model, ODEModel):
            raise ProblemDefinitionError("model must be a scimlkit.fit.ODEModel")
        self.model = model
        self.name = name or model.name
        self.experiments: list[Experiment] = (
            [experiments] if isinstance(experiments, Experiment) else list(experiments)
        )
        if not self.experiments:
            raise ProblemDefinitionError("a Problem needs at least one Experiment")
        self.parameters: list[Parameter] = list(parameters)
        names = [p.name for p in self.parameters]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ProblemDefinitionError(f"duplicate parameter names: {sorted(dup)}")
        self.observables: list[Observable] = (
            list(observables)
            if observables is not None
            else [Observable(s, s, Gaussian(1.0)) for s in model.states]
        )
        if regularization is None:
            regularization = []
        elif isinstance(regularization, L1 | L2):
            regularization = [regularization]
        self.regularization: list[L1 | L2] = list(regularization)
        self.settings = SolverSettings(solver, rtol, atol, max_steps)
        if gradient not in ("auto", "forward", "reverse"):
            raise ProblemDefinitionError("gradient must be 'auto', 'forward' or 'reverse'")
        self.gradient_mode = gradient
        if objective not in ("nll", "sum_of_squares"):
            raise ProblemDefinitionError(f"objective must be 'nll' or 'sum_of_squares', not {objective!r}")
        self.objective_kind = objective
        self.objective_scale = 2.0 if objective == "sum_of_squares" else 1.0

        self._free = [p for p in self.parameters if p.estimate]
        if not self._free:
            raise ProblemDefinitionError("no parameter is estimated (all have estimate=False)")
        self._fixed = {p.name: float(p.value) for p in self.parameters if not p.estimate}  # type: ignore[arg-type]
        self._validate_references()
        self._columns = [self._prepare_columns(e) for e in self.experiments]
        self._segments = [self._prepare_segments(e) for e in self.experiments]
        self._y0 = [self._prepare_y0(e) for e in self.experiments]
        self._trial_evaluation()
        self.solver_name, (self._solver, self._split) = self._choose_solver()
        if objective == "sum_of_squares":
            self._check_sum_of_squares()

    #: what `objective_fn` is: `"nll"` (negative log-likelihood) or `"sum_of_squares"`
    objective_kind: str = "nll"
    #: `objective_fn = objective_scale * (nll - log_prior + penalty) + const`; profiles and
    #: Fisher information divide it out (1 for `"nll"`, 2 for `"sum_of_squares"`)
    objective_scale: float = 1.0

    def _check_sum_of_squares(self) -> None:
        if self.residual_form is not None:
            raise ProblemDefinitionError(
                f"objective='sum_of_squares' needs squared residuals, but {self.residual_form}"
            )
        for cols in self._columns:
            for c in cols:
                if c.sigma is None and isinstance(c.noise.scale_spec, str):
                    raise ProblemDefinitionError(
                        f"objective='sum_of_squares' cannot estimate the noise scale {c.noise.scale_spec!r} "
                        "(a larger scale always lowers the sum); give a number or use objective='nll'"
                    )

    # ------------------------------------------------------------------ public description
    @property
    def parameter_names(self) -> list[str]:
        """Names of the estimated parameters, in the order of `x`."""
        return [p.name for p in self._free]

    @property
    def scales(self) -> list[str]:
        """Estimation scale of each estimated parameter."""
        return [p.scale for p in self._free]

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of `x` (estimation scale)."""
        return np.array([to_scale(p.bounds[0], p.scale) for p in self._free], dtype=float)  # type: ignore[index]

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds of `x` (estimation scale)."""
        return np.array([to_scale(p.bounds[1], p.scale) for p in self._free], dtype=float)  # type: ignore[index]

    @property
    def x0(self) -> np.ndarray:
        """The nominal point on the estimation scale."""
        return np.array([to_scale(p.nominal, p.scale) for p in self._free], dtype=float)

    @property
    def n_data(self) -> int:
        """Number of (non-missing) measurements."""
        return sum(c.y.size for cols in self._columns for c in cols)

    def to_natural(self, x: Any) -> dict[str, float]:
        """All parameters (estimated and fixed) on the natural scale, as Python floats."""
        x = np.asarray(x, dtype=float)
        out = {p.name: float(from_scale(x[i], p.scale)) for i, p in enumerate(self._free)}
        out.update(self._fixed)
        return out

    def from_natural(self, values: Mapping[str, float]) -> np.ndarray:
        """`x` (estimation scale) from natural values of the estimated parameters."""
        missing = [p.name for p in self._free if p.name not in values]
        if missing:
            raise ProblemDefinitionError(f"values are missing for parameters {missing}")
        return np.array([to_scale(float(values[p.name]), p.scale) for p in self._free])

    def describe(self) -> str:
        """A short text description of the problem."""
        lines = [
            f"Problem {self.name!r}: {len(self.model.states)} states, "
            f"{len(self._free)} estimated parameters, {len(self.experiments)} experiment(s), "
            f"{self.n_data} data points, solver {self.solver_name}"
        ]
        for p in self._free:
            lines.append(f"  {p.name:<16} [{p.bounds[0]:.4g}, {p.bounds[1]:.4g}] {p.scale}")  # type: ignore[index]
        return "\n".join(lines)

    # ------------------------------------------------------------------ JAX-traceable pieces
    def params(self, x: Any) -> dict[str, Any]:
        """All parameters on the natural scale as JAX scalars (traceable)."""
        x = jnp.asarray(x)
        out: dict[str, Any] = {
            p.name: from_scale(x[i], p.scale) for i, p in enumerate(self._free)
        }
        out.update({k: jnp.asarray(v) for k, v in self._fixed.items()})
        return out

    def _experiment_params(self, params: Mapping[str, Any], k: int) -> dict[str, Any]:
        p = dict(params)
        for name, v in self.experiments[k].constants.items():
            p[name] = params[v] if isinstance(v, str) else jnp.asarray(float(v))
        return p

    def _solve_experiment(self, params: Mapping[str, Any], k: int, adjoint: Any, ts: np.ndarray | None = None, segments: list[_Segment] | None = None) -> tuple[Any, Any, Any]:
        """States at the experiment's times `(n_t, n_states)`, success flag, step count."""
        e = self.experiments[k]
        p = self._experiment_params(params, k)
        ts = e.t if ts is None else ts
        segments = self._segments[k] if segments is None else segments
        y = jnp.asarray(self._y0[k](p), dtype=float)
        ys = jnp.zeros((ts.size, len(self.model.states)))
        ok = jnp.asarray(True)
        steps = jnp.asarray(0)
        for seg in segments:
            for d in seg.doses:
                amount = p[d.amount] if isinstance(d.amount, str) else d.amount
                y = y.at[self.model.states.index(d.state)].add(amount)
            if seg.t_end <= seg.t_start:  # every observation is at t0
                ys = ys.at[seg.rows].set(jnp.broadcast_to(y, (seg.rows.size, y.size)))
                continue
            save = np.append(ts[seg.rows], seg.t_end)  # the end state seeds the next segment
            sol_ys, ok_s, st = solve(
                self.model.rhs, self._solver, self._split, seg.t_start, seg.t_end, y, save, p,
                self.settings, adjoint,
            )
            ok = ok & ok_s
            steps = steps + st
            ys = ys.at[seg.rows].set(sol_ys[:-1])
            y = sol_ys[-1]
        return ys, ok, steps

    def _predictions(self, p: Mapping[str, Any], ts: Any, ys: Any, obs: Sequence[int]) -> Any:
        fns = [self._observable_fn(i) for i in obs]

        def one(t: Any, y: Any) -> Any:
            return jnp.stack([jnp.asarray(f(t, y, p), dtype=float) for f in fns])

        return jax.vmap(one)(jnp.asarray(ts), ys)

    def _observable_fn(self, i: int) -> Callable:
        fn = self.observables[i].fn
        fn = self.observables[i].name if fn is None else fn
        if isinstance(fn, str):
            j = self.model.states.index(fn)
            return lambda t, y, p: y[j]
        return fn

    def _sigma(self, col: _Column, p: Mapping[str, Any], ts: Any, ys: Any, pred: Any) -> Any:
        if col.sigma is not None:
            return jnp.asarray(col.sigma)
        spec = col.noise.scale_spec
        if isinstance(spec, str):
            return jnp.broadcast_to(p[spec], col.y.shape)
        if callable(spec):
            f = jax.vmap(lambda t, y, m: spec(t, y, p, m))
            return f(jnp.asarray(ts)[col.rows], ys[col.rows], pred)
        return jnp.full(col.y.shape, float(spec))

    def _column_terms(self, params: Mapping[str, Any], k: int, ys: Any) -> list[tuple[_Column, Any, Any]]:
        """Per measured column of experiment `k`: (column, prediction, sigma) at its data."""
        e = self.experiments[k]
        p = self._experiment_params(params, k)
        cols = self._columns[k]
        preds = self._predictions(p, e.t, ys, [c.obs_index for c in cols])
        out = []
        for j, c in enumerate(cols):
            m = preds[c.rows, j]
            out.append((c, m, self._sigma(c, p, e.t, ys, m)))
        return out

    def _terms(self, x: Any, adjoint: Any) -> tuple[list[tuple[_Column, Any, Any]], Any, Any]:
        """Per column (prediction, sigma) at the finite data, plus success flag and steps."""
        params = self.params(x)
        out = []
        ok = jnp.asarray(True)
        steps = jnp.asarray(0)
        for k in range(len(self.experiments)):
            ys, ok_k, st = self._solve_experiment(params, k, adjoint)
            ok = ok & ok_k
            steps = steps + st
            out.extend(self._column_terms(params, k, ys))
        return out, ok, steps

    def nll(self, x: Any, *, adjoint: Any = None) -> Any:
        """Negative log-likelihood of the data (traceable; `inf` when a solve fails)."""
        terms, ok, _ = self._terms(x, adjoint or reverse_adjoint())
        total = sum(jnp.sum(c.noise.nll(jnp.asarray(c.y), m, s)) for c, m, s in terms)
        return jnp.where(ok, total, jnp.inf)

    def log_prior(self, x: Any) -> Any:
        """Sum of the priors' log densities (0 without priors; traceable)."""
        x = jnp.asarray(x)
        total = jnp.asarray(0.0)
        for i, p in enumerate(self._free):
            if p.prior is not None:
                v = x[i] if p.prior.on == "scale" else from_scale(x[i], p.scale)
                total = total + p.prior.log_density(v)
        return total

    def penalty(self, x: Any) -> Any:
        """Regularization penalty on the estimation scale (traceable)."""
        x = jnp.asarray(x)
        total = jnp.asarray(0.0)
        for reg, idx in self._reg_indices():
            d = x[idx] - reg.center
            total = total + reg.weight * (jnp.sum(d**2) if isinstance(reg, L2) else jnp.sum(jnp.abs(d)))
        return total

    def objective_fn(self, x: Any, *, adjoint: Any = None) -> Any:
        """What estimation minimizes (traceable): `nll(x) - log_prior(x) + penalty(x)`, or for
        `objective="sum_of_squares"` the weighted sum of squared residuals
        `sum(((y - m) / sigma)**2)` (log space for `LogNormal`; plain squares with
        sigma 1) plus `2 * (penalty(x) - log_prior(x))`: twice the negative log-posterior
        without its constant, so both have the same minimizer."""
        if self.objective_kind == "sum_of_squares":
            terms, ok, _ = self._terms(x, adjoint or reverse_adjoint())
            ssr = sum(jnp.sum(c.noise.residual(jnp.asarray(c.y), m, s) ** 2) for c, m, s in terms)
            return jnp.where(ok, ssr, jnp.inf) + 2.0 * (self.penalty(x) - self.log_prior(x))
        return self.nll(x, adjoint=adjoint) - self.log_prior(x) + self.penalty(x)

    @property
    def residual_form(self) -> str | None:
        """None when the objective is a sum of squares (Gauss-Newton methods apply), else why not."""
        for cols in self._columns:
            for c in cols:
                if not c.noise.residual_form:
                    return f"noise model {type(c.noise).__name__} has no least-squares form"
        for p in self._free:
            if p.prior is not None and not isinstance(p.prior, UniformPrior) and p.prior.residual(0.0) is None:
                return f"the prior {type(p.prior).__name__} of {p.name!r} has no least-squares form"
        if any(isinstance(r, L1) for r in self.regularization):
            return "L1 regularization has no least-squares form"
        return None

    def residuals(self, x: Any, *, adjoint: Any = None) -> Any:
        """Residuals `r(x)` with `objective(x) = 0.5 * sum(r**2) + const` (traceable).

        Data residuals are standardized (`(y - m) / sigma`, log-space for `LogNormal`); an
        estimated noise scale adds `sqrt(2 log(sigma / floor) + 1)` per point (floor: the
        scale parameter's lower bound); Normal priors and L2 penalties add their own terms.
        A failed solve makes every residual `inf`.
        """
        reason = self.residual_form
        if reason:
            from .errors import MethodError

            raise MethodError(f"{reason}; use a gradient method such as method='lbfgs'")
        return self._residuals_aux(x, adjoint or reverse_adjoint())[0]

    def _residuals_aux(self, x: Any, adjoint: Any) -> tuple[Any, Any]:
        terms, ok, steps = self._terms(x, adjoint)
        r = jnp.concatenate(self._data_residuals(terms) + self._parameter_residuals(x))
        if self.objective_scale != 1.0:  # objective = 0.5 * sum(r**2) + const still holds
            r = math.sqrt(self.objective_scale) * r
        return jnp.where(ok, r, jnp.inf), steps

    @staticmethod
    def _data_residuals(terms: list[tuple[_Column, Any, Any]]) -> list[Any]:
        parts = []
        for c, m, s in terms:
            parts.append(c.noise.residual(jnp.asarray(c.y), m, s))
            if c.sigma is None and not isinstance(c.noise.scale_spec, int | float):
                parts.append(jnp.sqrt(jnp.maximum(2.0 * jnp.log(s / c.sigma_floor) + 1.0, 0.0)))
        return [jnp.ravel(q) for q in parts]

    def _parameter_residuals(self, x: Any) -> list[Any]:
        """Gauss-Newton terms of Normal priors and L2 penalties."""
        x = jnp.asarray(x)
        parts = []
        for i, p in enumerate(self._free):
            if p.prior is not None and not isinstance(p.prior, UniformPrior):
                v = x[i] if p.prior.on == "scale" else from_scale(x[i], p.scale)
                parts.append(jnp.atleast_1d(p.prior.residual(v)))
        for reg, idx in self._reg_indices():
            parts.append(math.sqrt(2.0 * reg.weight) * (x[idx] - reg.center))
        return [jnp.ravel(q) for q in parts]

    # ------------------------------------------------------------------ compiled, NumPy-facing
    @cached_property
    def compiled(self) -> CompiledProblem:
        """Jitted objective, gradient, residuals and Jacobian (compiled once, on first use)."""
        from .objective import CompiledProblem

        return CompiledProblem(self)

    def use_forward_mode(self, n_outputs: int = 1) -> bool:
        """Whether derivatives go forward (`jvp`) rather than reverse (`vjp`) through solves."""
        if self.gradient_mode != "auto":
            return self.gradient_mode == "forward"
        n = len(self._free)
        return n <= 12 or n <= n_outputs // 4

    def simulate(self, params: Mapping[str, float] | Any, t: Any = None, experiments: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Simulate experiments at `params` (natural-scale dict, or `x`).

        **Arguments:**
        - `params`: dict of estimated parameter values (natural scale) or the vector `x`.
        - `t`: times to report (default: each experiment's data times).
        - `experiments`: indices to simulate (default: all).

        **Returns:** per experiment a dict with `t`, `states` `(n_t, n_states)`,
        `observables` `(n_t, n_obs)` (all of the problem's observables), `ok`.
        """
        x = self.from_natural(params) if isinstance(params, Mapping) else np.asarray(params, float)
        out = []
        for k in experiments if experiments is not None else range(len(self.experiments)):
            ts = np.asarray(self.experiments[k].t if t is None else t, dtype=float)
            ys, obs, ok = self._simulator(k, ts)(jnp.asarray(x))
            out.append({"t": ts, "states": np.asarray(ys), "observables": np.asarray(obs), "ok": bool(ok)})
        return out

    def _simulator(self, k: int, ts: np.ndarray) -> Callable:
        """A jitted `x -> (states, observables, ok)` for experiment `k` at times `ts` (cached)."""
        cache = self.__dict__.setdefault("_sim_cache", {})
        key = (k, ts.tobytes())
        if key not in cache:
            segs = self._prepare_segments(self.experiments[k], ts)

            def run(xx: Any) -> tuple[Any, Any, Any]:
                params_ = self.params(xx)
                ys, ok, _ = self._solve_experiment(params_, k, reverse_adjoint(), ts, segs)
                p = self._experiment_params(params_, k)
                obs = self._predictions(p, ts, ys, list(range(len(self.observables))))
                return ys, obs, ok

            if len(cache) > 32:
                cache.clear()
            cache[key] = jax.jit(run)
        return cache[key]

    # ------------------------------------------------------------------ preparation
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # jitted functions do not pickle; they are rebuilt on first use
        for key in [k for k in state if k == "compiled" or k.endswith("_cache")]:
            del state[key]
        return state

    def _reg_indices(self) -> list[tuple[L1 | L2, np.ndarray]]:
        names = self.parameter_names
        out = []
        for reg in self.regularization:
            sel = reg.parameters if reg.parameters is not None else names
            bad = [n for n in sel if n not in names]
            if bad:
                raise ProblemDefinitionError(f"regularization names unknown or fixed parameters {bad}")
            out.append((reg, np.array([names.index(n) for n in sel], dtype=int)))
        return out

    def _validate_references(self) -> None:
        names = {p.name for p in self.parameters}
        obs_names = [o.name for o in self.observables]
        if len(set(obs_names)) != len(obs_names):
            raise ProblemDefinitionError(f"duplicate observable names in {obs_names}")
        for o in self.observables:
            fn = o.name if o.fn is None else o.fn
            if isinstance(fn, str) and fn not in self.model.states:
                raise ProblemDefinitionError(
                    f"observable {o.name!r} refers to state {fn!r}, which is not one of "
                    f"{list(self.model.states)}; pass fn=callable for a formula"
                )
            self._check_scale_ref(o.noise, names, f"observable {o.name!r}")
        for k, e in enumerate(self.experiments):
            label = e.name or f"#{k}"
            e.name = e.name or f"experiment {k}"
            obs = list(e.observables) if e.observables is not None else obs_names
            unknown = [o for o in obs if o not in obs_names]
            if unknown:
                raise ProblemDefinitionError(
                    f"experiment {label}: unknown observables {unknown}; the problem has {obs_names}"
                )
            if len(obs) != e.data.shape[1]:
                raise ProblemDefinitionError(
                    f"experiment {label}: data has {e.data.shape[1]} columns but {len(obs)} "
                    f"observables {obs} are measured; pass observables=[...] naming the columns"
                )
            e.observables = obs
            for cname, v in e.constants.items():
                if isinstance(v, str) and v not in names:
                    raise ProblemDefinitionError(
                        f"experiment {label}: constant {cname!r} maps to unknown parameter {v!r}"
                    )
            for d in e.doses:
                if d.state not in self.model.states:
                    raise ProblemDefinitionError(f"experiment {label}: dose into unknown state {d.state!r}")
                if isinstance(d.amount, str) and d.amount not in names:
                    raise ProblemDefinitionError(f"experiment {label}: dose amount {d.amount!r} is not a parameter")
            if isinstance(e.noise, NoiseModel):
                self._check_scale_ref(e.noise, names, f"experiment {label}")
            elif isinstance(e.noise, Mapping):
                for o, nm in e.noise.items():
                    if o not in obs:
                        raise ProblemDefinitionError(f"experiment {label}: noise for unmeasured observable {o!r}")
                    self._check_scale_ref(nm, names, f"experiment {label}")

    @staticmethod
    def _check_scale_ref(noise: NoiseModel, names: set[str], where: str) -> None:
        if not isinstance(noise, NoiseModel):
            raise ProblemDefinitionError(f"{where}: noise must be fit.Gaussian/Laplace/LogNormal, not {noise!r}")
        spec = noise.scale_spec
        if isinstance(spec, str) and spec not in names:
            raise ProblemDefinitionError(
                f"{where}: noise scale refers to {spec!r}; declare fit.Parameter({spec!r}, ...)"
            )
        if isinstance(spec, int | float) and not spec > 0:
            raise ProblemDefinitionError(f"{where}: noise scale must be positive, got {spec}")

    def _prepare_columns(self, e: Experiment) -> list[_Column]:
        obs_names = [o.name for o in self.observables]
        cols = []
        for j, oname in enumerate(e.observables):  # type: ignore[union-attr]
            i = obs_names.index(oname)
            noise = self.observables[i].noise
            if isinstance(e.noise, NoiseModel):
                noise = e.noise
            elif isinstance(e.noise, Mapping) and oname in e.noise:
                noise = e.noise[oname]
            rows = np.flatnonzero(np.isfinite(e.data[:, j]))
            sigma = None if e.sigma is None else np.asarray(e.sigma[rows, j], dtype=float)
            if sigma is not None and not np.all(sigma > 0):
                raise ProblemDefinitionError(f"experiment {e.name}: sigma must be positive where data exist")
            y = e.data[rows, j]
            if type(noise).__name__ == "LogNormal" and np.any(y <= 0):
                raise ProblemDefinitionError(
                    f"experiment {e.name}, observable {oname!r}: LogNormal noise needs positive data"
                )
            spec = noise.scale_spec
            floor = 1e-12
            if isinstance(spec, str):
                par = next(p for p in self.parameters if p.name == spec)
                floor = float(par.bounds[0]) if par.estimate and par.bounds[0] > 0 else 1e-12  # type: ignore[index]
            cols.append(_Column(i, noise, rows, y, sigma, floor))
        return cols

    def _prepare_segments(self, e: Experiment, ts: np.ndarray | None = None) -> list[_Segment]:
        """Split `[t0, t_end]` at dose times; an observation at a dose time sees the pre-dose state."""
        ts = e.t if ts is None else ts
        t0 = float(e.t0)  # type: ignore[arg-type]
        t_end = float(max(ts[-1], t0))
        inner = sorted({float(d.time) for d in e.doses if t0 < d.time < t_end})
        bounds = [t0, *inner, t_end]
        segs = []
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            rows = np.flatnonzero(((ts >= a) if i == 0 else (ts > a)) & (ts <= b))
            doses = tuple(d for d in e.doses if (d.time <= t0 if i == 0 else float(d.time) == a))
            segs.append(_Segment(a, b, rows, doses))
        return segs

    def _prepare_y0(self, e: Experiment) -> Callable[[Mapping[str, Any]], Any]:
        y0 = e.y0
        states = self.model.states
        names = {p.name for p in self.parameters} | set(e.constants)
        if callable(y0):
            return y0
        if isinstance(y0, Mapping):
            missing = [s for s in states if s not in y0]
            if missing:
                raise ProblemDefinitionError(f"experiment {e.name}: y0 lacks states {missing}")
            y0 = [y0[s] for s in states]
        y0 = list(np.asarray(y0, dtype=object).ravel()) if not isinstance(y0, list | tuple) else list(y0)
        if len(y0) != len(states):
            raise ProblemDefinitionError(
                f"experiment {e.name}: y0 has {len(y0)} entries but the model has {len(states)} states"
            )
        for v in y0:
            if isinstance(v, str) and v not in names:
                raise ProblemDefinitionError(
                    f"experiment {e.name}: initial value refers to {v!r}; declare fit.Parameter({v!r}, ...)"
                )
        return _InitialState(tuple(v if isinstance(v, str) else float(v) for v in y0))

    def _trial_evaluation(self) -> None:
        """Call the RHS and observables once at the nominal point: names and shapes."""
        params = self.params(jnp.asarray(self.x0))
        for k, e in enumerate(self.experiments):
            p = self._experiment_params(params, k)
            where = f"experiment {e.name}"
            try:
                y0 = jnp.asarray(self._y0[k](p), dtype=float)
                dy = jnp.asarray(self.model.rhs(float(e.t0), y0, p))  # type: ignore[arg-type]
                for c in self._columns[k]:
                    self._observable_fn(c.obs_index)(float(e.t[0]), y0, p)
            except KeyError as exc:
                raise ProblemDefinitionError(
                    f"{where}: the model asks for {exc.args[0]!r}, which is neither a Parameter "
                    "nor a constant of this experiment; declare fit.Parameter"
                    f"({exc.args[0]!r}, ...) or pass constants={{{exc.args[0]!r}: value}}"
                ) from None
            if y0.shape != (len(self.model.states),):
                raise ProblemDefinitionError(
                    f"{where}: y0 has shape {y0.shape}; expected ({len(self.model.states)},)"
                )
            if dy.shape != y0.shape:
                raise ProblemDefinitionError(
                    f"the right-hand side returned shape {dy.shape} for {len(y0)} states; "
                    "return jnp.stack([...]) with one entry per state"
                )

    def _choose_solver(self) -> tuple[str, tuple[Any, bool]]:
        spec = self.settings.solver
        if spec != "auto":
            solver, split = resolve_solver(spec)
            return (spec if isinstance(spec, str) else type(spec).__name__), (solver, split)
        stiff = self.model.stiff
        if stiff is None:
            params = self.params(jnp.asarray(self.x0))
            ratios = []
            for k, e in enumerate(self.experiments):
                p = self._experiment_params(params, k)
                ratios.append(stiffness_ratio(self.model.rhs, float(e.t0), self._y0[k](p), p, float(e.t[-1] - e.t0) or 1.0))  # type: ignore[operator]
            stiff = max(ratios) > STIFFNESS_THRESHOLD
        name = STIFF_DEFAULT if stiff else NONSTIFF_DEFAULT
        return name, resolve_solver(name)

    def __repr__(self) -> str:
        return (
            f"Problem({self.name!r}, parameters={self.parameter_names}, "
            f"experiments={len(self.experiments)}, n_data={self.n_data}, solver={self.solver_name!r})"
        )
