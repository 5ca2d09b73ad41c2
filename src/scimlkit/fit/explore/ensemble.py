"""Ensembles: one model simulated over many parameter sets, batched with `jax.vmap`.

Simulations run in chunks of `chunk_size` parameter sets: each chunk is one vmapped,
jit-compiled diffrax solve (compiled once, reused for every chunk), which bounds memory
and keeps the lockstep cost of batched adaptive solvers in check. A failed integration
is marked in `Ensemble.ok`, never fatal. Large ensembles can be spread over local
processes or a Ray/Dask cluster with `engine=` (as in `fit.estimate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import map_chunks
from ..errors import ProblemDefinitionError
from ..problem import ODEModel, Parameter
from ..simulate import (
    NONSTIFF_DEFAULT,
    STIFF_DEFAULT,
    SolverSettings,
    resolve_solver,
    reverse_adjoint,
    solve,
)
from .design import from_samples, sample_parameters, scalar_names

Y0 = Sequence[float] | np.ndarray | Callable[[Mapping[str, Any]], Any] | Mapping[str, Any]


@dataclass
class Ensemble:
    """The result of `simulate_ensemble`.

    **Attributes:**

    - `t`: save times `(T,)`.
    - `states`: `(n, T, S)` trajectories (NaN rows where the solve failed).
    - `ok`: `(n,)` True where the integration succeeded.
    - `params`: natural-scale parameter values `{name: (n,)}` (the varied ones).
    - `state_names`: names of the `S` states.
    - `seconds`: wall time of the simulations (compile included).

    Example:
        >>> import numpy as np
        >>> from scimlkit import fit
        >>> from scimlkit.fit.explore import simulate_ensemble, final_value
        >>> model = fit.ODEModel(lambda t, y, p: -p["k"] * y, states=["A"])
        >>> ens = simulate_ensemble(model, [fit.Parameter("k", bounds=(0.5, 2.0))], [0.0, 1.0], [1.0], n=8)
        >>> len(ens), ens.states.shape, bool(ens.ok.all())
        (8, (8, 2, 1), True)
        >>> bool(np.allclose(ens.evaluate(final_value("A")), np.exp(-ens.params["k"]), rtol=1e-5))
        True
    """

    t: np.ndarray
    states: np.ndarray
    ok: np.ndarray
    params: dict[str, np.ndarray]
    state_names: tuple[str, ...]
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ok)

    def state(self, name: str) -> np.ndarray:
        """Trajectories `(n, T)` of one state."""
        try:
            return self.states[:, :, self.state_names.index(name)]
        except ValueError as exc:
            raise ProblemDefinitionError(f"no state {name!r}; states are {self.state_names}") from exc

    def parameter_matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Parameters as an `(n, d)` matrix, columns in `names` order (default: all)."""
        names = list(names or self.params)
        return np.stack([self.params[k] for k in names], axis=-1)

    def evaluate(self, prop: Callable[..., Any]) -> np.ndarray:
        """Apply a solution property (see `scimlkit.fit.explore.properties`) to every member."""
        from .properties import evaluate_property

        return evaluate_property(prop, self)


def _y0_function(model: ODEModel, y0: Y0) -> Callable[[Mapping[str, Any]], Any]:
    if callable(y0):
        return lambda p: jnp.asarray(y0(p), dtype=float)
    if isinstance(y0, Mapping):
        missing = [s for s in model.states if s not in y0]
        if missing:
            raise ProblemDefinitionError(f"y0 gives no value for state(s) {missing}")

        def from_mapping(p: Mapping[str, Any]) -> Any:
            return jnp.stack([jnp.asarray(p[v] if isinstance(v, str) else v, dtype=float) for v in (y0[s] for s in model.states)])

        return from_mapping
    arr = np.asarray(y0, dtype=float)
    if arr.shape != (len(model.states),):
        raise ProblemDefinitionError(f"y0 must have one value per state {model.states}, got shape {arr.shape}")
    return lambda p: jnp.asarray(arr)


@dataclass
class _Job:
    """Everything a worker needs to simulate chunks (pickled for parallel engines)."""

    model: ODEModel
    y0: Any
    t: np.ndarray
    t0: float
    constants: dict[str, float]
    names: tuple[str, ...]
    settings: SolverSettings
    chunk_size: int


_CACHE: dict[tuple, Callable] = {}
_CACHE_SIZE = 16


def _cache_key(job: _Job) -> tuple:
    y0 = job.y0
    y0_key = ("array", len(job.model.states)) if not (callable(y0) or isinstance(y0, Mapping)) else ("fn", id(y0))
    return (id(job.model.rhs), job.model.states, job.model.stiff, y0_key, len(job.t), job.names,
            tuple(sorted(job.constants)), job.settings, job.chunk_size)


def _batched_solver(job: _Job) -> Callable:
    """A jitted, vmapped solve; compiled once per model/shape/settings and reused across calls
    (parameter values, constants, save times and a numeric y0 are arguments, not constants)."""
    key = _cache_key(job)
    if key not in _CACHE:
        spec = job.settings.solver
        if spec == "auto":
            spec = STIFF_DEFAULT if job.model.stiff else NONSTIFF_DEFAULT
        solver, split = resolve_solver(spec)
        y0_fn = None if key[3][0] == "array" else _y0_function(job.model, job.y0)
        settings = job.settings

        def one(values: Any, constants: dict, ts: Any, t0: Any, y0: Any) -> tuple[Any, Any]:
            p = {**constants, **dict(zip(job.names, values, strict=True))}
            start = y0 if y0_fn is None else y0_fn(p)
            ys, ok, _ = solve(job.model.rhs, solver, split, t0, ts[-1], start, ts, p, settings, reverse_adjoint())
            return ys, ok

        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None)))
    compiled = _CACHE[key]
    y0 = jnp.asarray(_y0_function(job.model, job.y0)({}) if key[3][0] == "array" else 0.0)
    args = ({k: jnp.asarray(v) for k, v in job.constants.items()}, jnp.asarray(job.t), jnp.asarray(job.t0), y0)
    return lambda values: compiled(values, *args)


def _run_chunks(job: _Job, chunks: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    run = _batched_solver(job)
    out = []
    for index, chunk in chunks:
        n = len(chunk)
        padded = chunk if n == job.chunk_size else np.concatenate([chunk, np.repeat(chunk[-1:], job.chunk_size - n, 0)])
        ys, ok = run(jnp.asarray(padded))
        ys, ok = np.array(ys[:n]), np.array(ok[:n])
        ys[~ok] = np.nan
        out.append((index, ys, ok))
    return out


def simulate_ensemble(
    model: ODEModel,
    params: Mapping[str, Any] | Sequence[Parameter],
    t: Sequence[float] | np.ndarray,
    y0: Y0,
    *,
    n: int | None = None,
    design: str = "sobol",
    constants: Mapping[str, float] | None = None,
    t0: float | None = None,
    solver: Any = "auto",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 10_000,
    chunk_size: int = 1024,
    engine: Any = None,
    seed: int | None = 0,
) -> Ensemble:
    """Simulate `model` for many parameter sets.

    **Arguments:**

    - `model`: a `fit.ODEModel`.
    - `params`: either the parameter sets themselves (`{name: array (n,)}`, or posterior
      samples: an ArviZ `InferenceData`), or a list of `fit.Parameter`s to draw `n` sets from
      with `design` (`"sobol"`, `"lhs"`, `"uniform"`, `"grid"`); fixed parameters
      (`estimate=False`) become constants. With `InferenceData`, every scalar posterior
      variable is passed to the model (`n` draws at most, if given); the RHS ignores
      those it does not use.
    - `t`: save times; `y0`: the initial state (numbers, `{state: number or parameter name}`,
      or a callable `y0(p)`); `t0`: start time (default `t[0]`).
    - `constants`: further fixed values passed to the RHS in `p`.
    - `solver`, `rtol`, `atol`, `max_steps`: as in `fit.SolverSettings`.
    - `chunk_size`: parameter sets per vmapped batch (bounds memory; the last is padded).
    - `engine`: `None`/"serial", "processes", a worker count, an Executor or Dask client, or
      the `ray` module: chunks are spread over workers, each compiling once.

    **Returns:** an `Ensemble`.

    **Example:**

    ```python
    >>> import jax.numpy as jnp, numpy as np
    >>> from scimlkit import fit
    >>> from scimlkit.fit.explore import simulate_ensemble
    >>> model = fit.ODEModel(lambda t, y, p: -p["k"] * y, states=["A"])
    >>> ens = simulate_ensemble(model, {"k": np.array([0.5, 1.0])}, t=[0.0, 1.0], y0=[1.0], chunk_size=2)
    >>> np.round(ens.state("A")[:, -1], 4).tolist()
    [0.6065, 0.3679]

    ```
    """
    constants = dict(constants or {})
    if isinstance(params, Sequence) and params and all(isinstance(p, Parameter) for p in params):
        for p in params:
            if not p.estimate:
                constants.setdefault(p.name, float(p.value))  # type: ignore[arg-type]
        if n is None:
            raise ProblemDefinitionError("give n= (how many parameter sets to draw) with a list of Parameters")
        values = sample_parameters(params, n, design, seed)
    elif hasattr(params, "posterior"):  # ArviZ InferenceData from fit.sample: every scalar variable
        values = from_samples(params, scalar_names(params), n=n, seed=seed)
    elif isinstance(params, Mapping):
        values = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in params.items()}
    else:
        raise ProblemDefinitionError("params must be a dict of arrays, InferenceData, or a list of fit.Parameter")
    lengths = {len(v) for v in values.values()}
    if len(lengths) != 1:
        raise ProblemDefinitionError(f"all parameter arrays must have the same length, got {sorted(lengths)}")
    total = lengths.pop()
    ts = np.asarray(t, dtype=float)
    if ts.ndim != 1 or len(ts) < 1 or np.any(np.diff(ts) <= 0):
        raise ProblemDefinitionError("t must be a 1-D, strictly increasing array of save times")
    names = tuple(values)
    matrix = np.stack([values[k] for k in names], axis=-1)
    chunk_size = max(1, min(chunk_size, total))
    job = _Job(
        model=model, y0=y0, t=ts, t0=float(ts[0] if t0 is None else t0),
        constants={k: float(v) for k, v in constants.items()}, names=names,
        settings=SolverSettings(solver=solver, rtol=rtol, atol=atol, max_steps=max_steps), chunk_size=chunk_size,
    )
    chunks = [(i, matrix[i : i + chunk_size]) for i in range(0, total, chunk_size)]
    start = time.perf_counter()
    # engines hand chunks to workers round-robin: put the pieces back in order by offset
    parts = sorted(map_chunks(engine, _run_chunks, job, chunks), key=lambda part: part[0])
    seconds = time.perf_counter() - start
    states = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, len(ts), len(model.states)))
    ok = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, bool)
    return Ensemble(
        t=ts, states=states, ok=ok, params=values, state_names=tuple(model.states), seconds=seconds,
        settings={"solver": solver, "rtol": rtol, "atol": atol, "max_steps": max_steps, "chunk_size": chunk_size, "design": design, "seed": seed},
    )


__all__ = ["Ensemble", "from_samples", "sample_parameters", "simulate_ensemble"]
