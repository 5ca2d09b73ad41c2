"""A zoo of estimation problems with known answers, for tests, benchmarks and docs.

Each entry builds a `Problem` whose data were simulated *independently of scimlkit's
solver* (SciPy `solve_ivp`, DOP853, `rtol=1e-10`, `atol=1e-12`) at known parameter values,
with noise drawn from the problem's own noise model under a fixed seed. Entries:

| name | what it exercises |
|---|---|
| `exponential_decay` | the smallest problem (one state, one parameter) |
| `lotka_volterra` | oscillations, four log-scaled rates |
| `fitzhugh_nagumo` | a multimodal landscape (Ramsay et al. 2007) |
| `sir` | an unobserved state, an estimated initial state and noise scale |
| `lorenz` | chaos on a short horizon |
| `robertson` | stiffness (Kvaerno5 chosen automatically), log-normal noise |
| `michaelis_menten` | two experiments with condition constants, missing values |
| `pk_two_compartment` | bolus doses, an observable formula, log-normal noise |
| `lynx_hare` | real data (Hudson's Bay 1900-1920) shipped with the package |

Example:
    >>> from scimlkit import fit
    >>> "robertson" in fit.zoo.names()
    True
    >>> entry = fit.zoo.get("lotka_volterra")
    >>> sorted(entry.true)
    ['alpha', 'beta', 'delta', 'gamma']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from .errors import FitError
from .noise import Gaussian, LogNormal
from .problem import Dose, Experiment, Observable, ODEModel, Parameter, Problem


@dataclass(frozen=True)
class ZooProblem:
    """A zoo entry: the problem, the true parameter values and how close a fit should get."""

    name: str
    problem: Problem
    true: dict[str, float]
    rtol: float
    description: str


def _vec(*xs: Any) -> Any:
    """Stack scalars: a JAX array under tracing, a NumPy array for SciPy references."""
    if any(isinstance(x, jax.Array) for x in xs):
        return jnp.stack([jnp.asarray(x) for x in xs])
    return np.array(xs, dtype=float)


def _exp(x: Any) -> Any:
    return jnp.exp(x) if isinstance(x, jax.Array) else np.exp(x)


# ----------------------------------------------------------------------------- right-hand sides
def decay_rhs(t: Any, y: Any, p: Any) -> Any:
    return -p["k"] * y


def lotka_volterra_rhs(t: Any, y: Any, p: Any) -> Any:
    x, z = y[0], y[1]
    return _vec(p["alpha"] * x - p["beta"] * x * z, -p["gamma"] * z + p["delta"] * x * z)


def fitzhugh_nagumo_rhs(t: Any, y: Any, p: Any) -> Any:
    v, r = y[0], y[1]
    return _vec(p["c"] * (v - v**3 / 3.0 + r), -(v - p["a"] + p["b"] * r) / p["c"])


def sir_rhs(t: Any, y: Any, p: Any) -> Any:
    s, i = y[0], y[1]
    inf = p["beta"] * s * i
    return _vec(-inf, inf - p["gamma"] * i, p["gamma"] * i)


def lorenz_rhs(t: Any, y: Any, p: Any) -> Any:
    x, yy, z = y[0], y[1], y[2]
    return _vec(p["sigma"] * (yy - x), x * (p["rho"] - z) - yy, x * yy - p["b"] * z)


def robertson_rhs(t: Any, y: Any, p: Any) -> Any:
    a, b, c = y[0], y[1], y[2]
    r1, r2, r3 = p["k1"] * a, p["k2"] * b * b, p["k3"] * b * c
    return _vec(-r1 + r3, r1 - r2 - r3, r2)


def michaelis_menten_rhs(t: Any, y: Any, p: Any) -> Any:
    v = p["vmax"] * y[0] / (p["km"] + y[0])
    return _vec(-v, v)


def pk_rhs(t: Any, y: Any, p: Any) -> Any:
    gut, c, q = y[0], y[1], y[2]
    k10, k12, k21 = p["cl"] / p["v1"], p["q"] / p["v1"], p["q"] / p["v2"]
    return _vec(-p["ka"] * gut, p["ka"] * gut - (k10 + k12) * c + k21 * q, k12 * c - k21 * q)


def pk_concentration(t: Any, y: Any, p: Any) -> Any:
    return y[1] / p["v1"]


def sir_cases(t: Any, y: Any, p: Any) -> Any:
    return 1000.0 * y[1]


def mm_y0(p: Any) -> Any:
    return _vec(p["s0"], 0.0 * p["s0"])


def sir_y0(p: Any) -> Any:
    return _vec(1.0 - p["i0"], p["i0"], 0.0 * p["i0"])


# ----------------------------------------------------------------------------- reference solver
def reference_simulate(problem: Problem, params: dict[str, float], k: int = 0, t: Any = None) -> np.ndarray:
    """States of experiment `k` by SciPy `solve_ivp` (DOP853, rtol 1e-10, atol 1e-12; Radau
    for stiff models), with bolus doses handled by restarting: an independent reference."""
    e = problem.experiments[k]
    ts = np.asarray(e.t if t is None else t, dtype=float)
    p = dict(params)
    for name, v in e.constants.items():
        p[name] = params[v] if isinstance(v, str) else float(v)
    y = np.array(problem._y0[k](p), dtype=float)
    states = list(problem.model.states)
    method = "Radau" if problem.model.stiff else "DOP853"
    t0 = float(e.t0)  # type: ignore[arg-type]
    out = np.zeros((ts.size, len(states)))
    dose_times = sorted({float(d.time) for d in e.doses if t0 < d.time <= ts[-1]})
    for d in e.doses:
        if d.time <= t0:
            y[states.index(d.state)] += p[d.amount] if isinstance(d.amount, str) else d.amount
    edges = [t0, *dose_times, float(ts[-1])]
    for i in range(len(edges) - 1):
        a, b = edges[i], edges[i + 1]
        rows = np.flatnonzero(((ts >= a) if i == 0 else (ts > a)) & (ts <= b))
        if b > a:
            grid = np.unique(np.append(ts[rows], b))
            sol = solve_ivp(lambda tt, yy: np.asarray(problem.model.rhs(tt, yy, p), dtype=float),
                            (a, b), y, method=method, t_eval=grid, rtol=1e-10, atol=1e-12)
            if not sol.success:
                raise FitError(f"reference solve failed: {sol.message}")
            out[rows] = sol.y[:, np.searchsorted(grid, ts[rows])].T
            y = sol.y[:, -1].copy()
        else:
            out[rows] = y
        for d in e.doses:
            if float(d.time) == b and i < len(edges) - 2:
                y[states.index(d.state)] += p[d.amount] if isinstance(d.amount, str) else d.amount
    return out


def _observe(problem: Problem, params: dict[str, float], seed: int) -> None:
    """Replace each experiment's data by a reference simulation plus noise (in place)."""
    rng = np.random.default_rng(seed)
    for k, e in enumerate(problem.experiments):
        ys = reference_simulate(problem, params, k)
        p = dict(params)
        p.update({n: (params[v] if isinstance(v, str) else float(v)) for n, v in e.constants.items()})
        for j, oname in enumerate(e.observables):  # type: ignore[arg-type]
            i = [o.name for o in problem.observables].index(oname)
            fn = problem._observable_fn(i)
            m = np.array([float(fn(t, y, p)) for t, y in zip(e.t, ys, strict=True)])
            col = next(c for c in problem._columns[k] if c.obs_index == i)
            spec = col.noise.scale_spec
            s = float(p[spec]) if isinstance(spec, str) else float(spec)
            noisy = np.asarray(col.noise.sample(m, s, rng), dtype=float)
            keep = np.isfinite(e.data[:, j])
            e.data[keep, j] = noisy[keep]
            col.y = e.data[col.rows, j].copy()


def _build(name: str, model: ODEModel, experiments: list[Experiment], parameters: list[Parameter],
           true: dict[str, float], tolerance: float, description: str, seed: int,
           observables: list[Observable] | None = None, **kw: Any) -> ZooProblem:
    problem = Problem(model, experiments, parameters, observables, name=name, **kw)
    full = {p.name: (true[p.name] if p.name in true else float(p.value)) for p in parameters}  # type: ignore[arg-type]
    _observe(problem, full, seed)
    return ZooProblem(name, problem, true, tolerance, description)


# ----------------------------------------------------------------------------- entries
def exponential_decay() -> ZooProblem:
    t = np.linspace(0.5, 5.0, 10)
    return _build(
        "exponential_decay", ODEModel(decay_rhs, ["A"], name="exponential_decay"),
        [Experiment(t, np.ones((t.size, 1)), y0=[2.0])],
        [Parameter("k", (0.01, 10.0), "log10")], {"k": 0.5}, 0.02,
        "A' = -k A, A(0) = 2, Gaussian noise sd 0.01.", seed=1,
        observables=[Observable("A", "A", Gaussian(0.01))],
    )


def lotka_volterra() -> ZooProblem:
    t = np.linspace(0.0, 20.0, 21)
    return _build(
        "lotka_volterra", ODEModel(lotka_volterra_rhs, ["prey", "predator"], name="lotka_volterra", stiff=False),
        [Experiment(t, np.ones((t.size, 2)), y0=[30.0, 4.0])],
        [Parameter("alpha", (0.1, 2.0), "log10"), Parameter("beta", (0.001, 0.2), "log10"),
         Parameter("gamma", (0.1, 2.0), "log10"), Parameter("delta", (0.001, 0.2), "log10")],
        {"alpha": 0.55, "beta": 0.028, "gamma": 0.8, "delta": 0.024}, 0.05,
        "Predator-prey oscillations (Hudson's Bay-like scale), Gaussian noise sd 1.", seed=2,
        observables=[Observable("prey", "prey", Gaussian(1.0)), Observable("predator", "predator", Gaussian(1.0))],
    )


def fitzhugh_nagumo() -> ZooProblem:
    t = np.linspace(0.0, 20.0, 41)
    return _build(
        "fitzhugh_nagumo", ODEModel(fitzhugh_nagumo_rhs, ["V", "R"], name="fitzhugh_nagumo", stiff=False),
        [Experiment(t, np.ones((t.size, 2)), y0=[-1.0, 1.0])],
        [Parameter("a", (0.0, 1.0)), Parameter("b", (0.0, 1.0)), Parameter("c", (0.5, 10.0), "log10")],
        {"a": 0.2, "b": 0.2, "c": 3.0}, 0.05,
        "FitzHugh-Nagumo spikes (Ramsay et al. 2007), Gaussian noise sd 0.05; multimodal.", seed=3,
        observables=[Observable("V", "V", Gaussian(0.05)), Observable("R", "R", Gaussian(0.05))],
    )


def sir() -> ZooProblem:
    t = np.arange(1.0, 61.0, 3.0)
    return _build(
        "sir", ODEModel(sir_rhs, ["S", "I", "R"], name="sir", stiff=False),
        [Experiment(t, np.ones((t.size, 1)), y0=sir_y0)],
        [Parameter("beta", (0.05, 2.0), "log10"), Parameter("gamma", (0.01, 1.0), "log10"),
         Parameter("i0", (1e-5, 0.05), "log10"), Parameter("sigma", (0.1, 50.0), "log10")],
        {"beta": 0.45, "gamma": 0.12, "i0": 0.002, "sigma": 4.0}, 0.12,
        "SIR epidemic, only cases (1000 I) observed; estimated I(0) and noise sd.", seed=4,
        observables=[Observable("cases", sir_cases, Gaussian("sigma"))],
    )


def lorenz() -> ZooProblem:
    t = np.linspace(0.0, 2.0, 41)
    return _build(
        "lorenz", ODEModel(lorenz_rhs, ["x", "y", "z"], name="lorenz", stiff=False),
        [Experiment(t, np.ones((t.size, 3)), y0=[1.0, 1.0, 1.0])],
        [Parameter("sigma", (1.0, 30.0)), Parameter("rho", (10.0, 50.0)), Parameter("b", (0.5, 5.0))],
        {"sigma": 10.0, "rho": 28.0, "b": 8.0 / 3.0}, 0.05,
        "Lorenz system on a short horizon (t <= 2), Gaussian noise sd 0.5.", seed=5,
        observables=[Observable(s, s, Gaussian(0.5)) for s in ("x", "y", "z")],
    )


def robertson() -> ZooProblem:
    t = np.logspace(-2, 4, 25)
    return _build(
        "robertson", ODEModel(robertson_rhs, ["A", "B", "C"], name="robertson", stiff=True),
        [Experiment(t, np.ones((t.size, 3)), y0=[1.0, 0.0, 0.0], t0=0.0)],
        [Parameter("k1", (1e-3, 1.0), "log10"), Parameter("k2", (1e5, 1e9), "log10"),
         Parameter("k3", (1e2, 1e6), "log10")],
        {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.1,
        "Robertson's stiff kinetics over 6 decades of time, log-normal noise 2%.", seed=6,
        observables=[Observable(s, s, LogNormal(0.02)) for s in ("A", "B", "C")],
        rtol=1e-8, atol=1e-14,
    )


def michaelis_menten() -> ZooProblem:
    t = np.linspace(0.5, 10.0, 12)
    d1, d2 = np.ones((t.size, 1)), np.ones((t.size, 1))
    d1[3, 0] = np.nan  # a missing measurement
    return _build(
        "michaelis_menten", ODEModel(michaelis_menten_rhs, ["S", "P"], name="michaelis_menten", stiff=False),
        [Experiment(t, d1, y0=mm_y0, constants={"s0": 2.0}, name="S0=2"),
         Experiment(t, d2, y0=mm_y0, constants={"s0": 8.0}, name="S0=8")],
        [Parameter("vmax", (0.01, 10.0), "log10"), Parameter("km", (0.01, 10.0), "log10"),
         Parameter("s0", value=1.0, estimate=False)],
        {"vmax": 1.2, "km": 1.5}, 0.05,
        "Enzyme kinetics, product observed, two initial substrate levels, one missing value.", seed=7,
        observables=[Observable("P", "P", Gaussian(0.05))],
    )


def pk_two_compartment() -> ZooProblem:
    t = np.array([0.25, 0.5, 1, 2, 3, 4, 6, 8, 11.5, 12.5, 13, 14, 16, 18, 20, 24, 30, 36, 48])
    return _build(
        "pk_two_compartment", ODEModel(pk_rhs, ["gut", "central", "peripheral"], name="pk_two_compartment", stiff=False),
        [Experiment(t, np.ones((t.size, 1)), y0=[0.0, 0.0, 0.0],
                    doses=[Dose(0.0, "gut", 100.0), Dose(12.0, "gut", 100.0)])],
        [Parameter("ka", (0.1, 10.0), "log10"), Parameter("cl", (0.5, 50.0), "log10"),
         Parameter("v1", (2.0, 200.0), "log10"), Parameter("q", (0.2, 20.0), "log10"),
         Parameter("v2", (5.0, 500.0), "log10")],
        {"ka": 1.0, "cl": 5.0, "v1": 20.0, "q": 2.0, "v2": 50.0}, 0.2,
        "Oral two-compartment pharmacokinetics, two 100 mg doses, log-normal noise 5%.", seed=8,
        observables=[Observable("conc", pk_concentration, LogNormal(0.05))],
    )


def load_lynx_hare() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hudson's Bay Company hare and lynx pelts (thousands), 1900-1920, shipped with scimlkit.

    Values as tabulated in P. Howard's lecture notes and the Stan case study
    "Predator-Prey Population Dynamics" (Carpenter 2018). Returns `(year, hare, lynx)`.
    """
    from importlib.resources import files

    text = (files("scimlkit.fit") / "_demo_files" / "lotka_volterra.csv").read_text()
    rows = [r.split(",") for r in text.splitlines() if r and not r.startswith("#")][1:]
    data = np.array(rows, dtype=float)
    return data[:, 0], data[:, 1], data[:, 2]


def lynx_hare() -> ZooProblem:
    """Lotka-Volterra on the real lynx-hare series, log-normal noise, estimated initial
    populations and noise scale. `true` holds the Stan case study's posterior means
    (Carpenter 2018), which a maximum-likelihood fit should come close to."""
    year, hare, lynx = load_lynx_hare()
    model = ODEModel(lotka_volterra_rhs, ["hare", "lynx"], name="lynx_hare", stiff=False)
    exp = Experiment(year - year[0], np.stack([hare, lynx], axis=1), y0=["hare0", "lynx0"],
                     name="Hudson's Bay 1900-1920")
    pars = [Parameter("alpha", (0.1, 2.0), "log10"), Parameter("beta", (0.001, 0.2), "log10"),
            Parameter("gamma", (0.1, 2.0), "log10"), Parameter("delta", (0.001, 0.2), "log10"),
            Parameter("hare0", (1.0, 100.0), "log10"), Parameter("lynx0", (1.0, 100.0), "log10"),
            Parameter("sigma", (0.01, 2.0), "log10")]
    obs = [Observable("hare", "hare", LogNormal("sigma")), Observable("lynx", "lynx", LogNormal("sigma"))]
    problem = Problem(model, exp, pars, obs, name="lynx_hare")
    true = {"alpha": 0.55, "beta": 0.028, "gamma": 0.80, "delta": 0.024}
    return ZooProblem("lynx_hare", problem, true, 0.15,
                      "Real data: Hudson's Bay lynx and hare pelts 1900-1920 (no known truth).")


_ENTRIES: dict[str, Callable[[], ZooProblem]] = {
    f.__name__: f
    for f in (exponential_decay, lotka_volterra, fitzhugh_nagumo, sir, lorenz, robertson,
              michaelis_menten, pk_two_compartment, lynx_hare)
}


def describe(name: str) -> str:
    """One line on what a zoo problem exercises (without building it)."""
    for line in (__doc__ or "").splitlines():
        if line.startswith(f"| `{name}` |"):
            return line.split("|")[2].strip()
    raise FitError(f"unknown zoo problem {name!r}; choose one of {names()}")


def names() -> list[str]:
    """Names of the zoo's problems."""
    return list(_ENTRIES)


def get(name: str) -> ZooProblem:
    """Build the zoo problem `name` (fresh each call; data from a fixed seed)."""
    try:
        return _ENTRIES[name]()
    except KeyError:
        raise FitError(f"unknown zoo problem {name!r}; choose one of {names()}") from None
