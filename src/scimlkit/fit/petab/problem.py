"""A PEtab problem as a JAX log-likelihood: conditions, pre-equilibration, observables, noise.

`from_petab("problem.yaml")` reads the tables and the SBML model and returns a
`PEtabProblem`. Its `log_likelihood(params)` simulates every (pre-equilibration, simulation)
condition pair with a stiff diffrax solver, vmapped over pairs and jit-compiled once,
then evaluates the observables and the PEtab noise model (normal or Laplace, on a lin, log
or log10 scale, with the Jacobian term PEtab defines), priors excluded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from scimlkit.fit.petab.errors import PEtabError
from scimlkit.fit.petab.formula import free_names, parse_formula, to_code
from scimlkit.fit.petab.sbml import ModelFunctions, SBMLModel, read_sbml
from scimlkit.fit.petab.tables import PEtabTables, is_missing, read_tables, split_overrides
from scimlkit.fit.priors import LaplacePrior, LogNormalPrior, NormalPrior, Prior, UniformPrior
from scimlkit.fit.problem import Parameter, Problem
from scimlkit.fit.problem import from_scale as from_scale_1
from scimlkit.fit.simulate import SolverSettings, reverse_adjoint

_SCALES = ("lin", "log", "log10")
_LOG_2PI = math.log(2.0 * math.pi)
_LN10 = math.log(10.0)


#: smallest step of a time-course solve, as a fraction of its time span (see `_controller`)
_DTMIN_FRACTION = 1e-12


def _to_scale(v: np.ndarray, scale: Sequence[str]) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return np.array(
        [
            x if s == "lin" else (math.log(x) if s == "log" else math.log10(x))
            for x, s in zip(v, scale, strict=True)
        ]
    )


def _from_scale(z: Any, scale: Sequence[str]) -> Any:
    z = jnp.asarray(z, dtype=float)
    code = jnp.array([_SCALES.index(s) for s in scale])
    return jnp.where(code == 0, z, jnp.where(code == 1, jnp.exp(z), 10.0**z))


@dataclass
class _Spec:
    """Values that are either constants or entries of the full parameter vector."""

    idx: np.ndarray  # int, -1 for constants
    const: np.ndarray  # float

    def resolve(self, theta_full: jax.Array) -> jax.Array:
        take = theta_full[jnp.maximum(jnp.asarray(self.idx), 0)]
        return jnp.where(jnp.asarray(self.idx) >= 0, take, jnp.asarray(self.const))


@dataclass
class _Observable:
    id: str
    fn: Any  # (t, e, theta_full, op, npar) -> (h, sigma)
    transformation: str
    distribution: str
    rows: np.ndarray  # measurement row numbers
    pair: np.ndarray
    tidx: np.ndarray  # index into the time grid, -1 for steady state
    t: np.ndarray
    y: np.ndarray
    op: _Spec  # shape (n, n_obs_params)
    npar: _Spec
    sigma_varies: bool = False  # noise scale depends on estimated parameters
    sigma_floor: float = 1e-8  # a lower bound of the noise scale (for Gauss-Newton residuals)


class PEtabProblem(Problem):
    """A parameter-estimation problem read from PEtab files (see `from_petab`).

    It is a `scimlkit.fit.Problem`: `fit.estimate`, `fit.profile` and `fit.sample` take it
    as they are. `x` (the estimation-scale vector) follows `parameter_names`, the estimated
    rows of the parameter table, with their PEtab `parameterScale`s and bounds; priors
    (`objectivePriorType`) enter `log_prior`, not `log_likelihood`.

    Attributes:
        names: ids of the estimated parameters (same as `parameter_names`).
        nominal: dict id -> nominal value on the natural scale (estimated parameters).
        pairs: the (pre-equilibration, simulation) condition pairs that are simulated.
        model: the `SBMLModel`; `functions`: its generated JAX functions.
    """

    def __init__(
        self,
        tables: PEtabTables,
        model: SBMLModel | None = None,
        *,
        rtol: float = 1e-8,
        atol: float = 1e-8,
        solver: diffrax.AbstractSolver | None = None,
        max_steps: int = 10_000,
        steady_state_tol: float = 1e-10,
        gradient: str = "auto",
    ) -> None:
        self.tables = tables
        self.model = model or read_sbml(tables.sbml_path)
        self.name = tables.yaml_path.stem
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps
        self.steady_state_tol = steady_state_tol
        self.solver = solver or diffrax.Kvaerno4()
        self.settings = SolverSettings(self.solver, rtol, atol, max_steps)
        self.solver_name = type(self.solver).__name__.lower()
        self.gradient_mode = gradient
        self.regularization = []
        self.experiments = []
        self._read_parameters()
        cond_cols = [
            c for c in tables.conditions.columns if c not in ("conditionId", "conditionName")
        ]
        model_params = set(self.model.parameter_ids)
        overridden = (set(self.all_ids) | set(cond_cols)) & model_params
        self.functions: ModelFunctions = self.model.compile(overridden)
        self._read_conditions(cond_cols)
        self._read_measurements()
        self._llh = jax.jit(lambda th: self._log_likelihood_natural(th, reverse_adjoint()))
        self._grad = jax.jit(
            jax.grad(lambda th: self._log_likelihood_natural(th, reverse_adjoint()))
        )

    # -- parameter table ---------------------------------------------------------------
    def _read_parameters(self) -> None:
        df = self.tables.parameters
        self.all_ids: list[str] = [str(x).strip() for x in df["parameterId"]]
        if len(set(self.all_ids)) != len(self.all_ids):
            raise PEtabError(f"{self.name}: duplicate parameterId in the parameter table")
        self.index = {k: i for i, k in enumerate(self.all_ids)}
        all_scales = [("lin" if is_missing(s) else str(s).strip()) for s in df["parameterScale"]]
        bad = sorted({s for s in all_scales if s not in _SCALES})
        if bad:
            raise PEtabError(f"{self.name}: unknown parameterScale {bad}; use lin, log or log10")
        est = np.array([int(e) == 1 for e in df["estimate"]])
        nominal = np.array([np.nan if is_missing(v) else float(v) for v in df["nominalValue"]])
        if np.any(np.isnan(nominal[~est])):
            missing = [
                k for k, n, e in zip(self.all_ids, nominal, est, strict=True) if not e and n != n
            ]
            raise PEtabError(f"{self.name}: fixed parameter(s) {missing} have no nominalValue")
        self._nominal_full = nominal
        self.est_idx = np.flatnonzero(est)
        lower = df["lowerBound"].to_numpy(dtype=float)
        upper = df["upperBound"].to_numpy(dtype=float)
        self.nominal = {self.all_ids[i]: float(nominal[i]) for i in self.est_idx}
        self.priors = self._read_priors(df, est)
        self.parameters = []
        for i, k in enumerate(self.all_ids):
            if not est[i]:
                self.parameters.append(
                    Parameter(k, scale=all_scales[i], value=float(nominal[i]), estimate=False)
                )
                continue
            value = float(nominal[i]) if lower[i] <= nominal[i] <= upper[i] else None
            self.parameters.append(
                Parameter(
                    k,
                    (lower[i], upper[i]),
                    all_scales[i],
                    value,
                    True,
                    _prior(self.priors.get(k), k, self.name),
                )
            )
        self._free = [p for p in self.parameters if p.estimate]
        self._fixed = {p.name: float(p.value) for p in self.parameters if not p.estimate}  # type: ignore[arg-type]
        self._lower_nat = lower[self.est_idx]

    def _read_priors(self, df: Any, est: np.ndarray) -> dict[str, tuple[str, tuple[float, ...]]]:
        out: dict[str, tuple[str, tuple[float, ...]]] = {}
        if "objectivePriorType" not in df.columns:
            return out
        params = df.get("objectivePriorParameters")
        for i, k in enumerate(self.all_ids):
            kind = df["objectivePriorType"].iloc[i]
            if is_missing(kind) or not est[i]:
                continue
            raw = "" if params is None or is_missing(params.iloc[i]) else str(params.iloc[i])
            out[k] = (str(kind).strip(), tuple(float(x) for x in raw.split(";") if x.strip()))
        return out

    # -- conditions ----------------------------------------------------------------------
    def _spec(self, value: object, where: str) -> tuple[int, float]:
        if isinstance(value, int | float | np.floating | np.integer):
            return -1, float(value)
        s = str(value).strip()
        try:
            return -1, float(s)
        except ValueError:
            pass
        if s in self.index:
            return self.index[s], math.nan
        raise PEtabError(
            f"{self.name}: {where} refers to {s!r}, which is neither a number nor a parameterId"
        )

    def _read_conditions(self, cols: list[str]) -> None:
        fn, model = self.functions, self.model
        pset, states = set(fn.parameter_ids), fn.state_ids
        unknown = [c for c in cols if c not in pset and c not in states]
        if unknown:
            raise PEtabError(
                f"{self.name}: condition table column(s) {unknown} are not parameters, compartments "
                f"or species of the SBML model"
            )
        self._cond_rows: dict[str, dict[str, object]] = {}
        for _, row in self.tables.conditions.iterrows():
            cid = str(row["conditionId"]).strip()
            self._cond_rows[cid] = {c: row[c] for c in cols if not is_missing(row[c])}
        self._cols = cols
        del model

    def _condition_specs(self, cid: str) -> tuple[_Spec, np.ndarray, _Spec]:
        """Constants `p` and species overrides (mask, values) of condition `cid`."""
        if cid not in self._cond_rows:
            raise PEtabError(
                f"{self.name}: condition {cid!r} is used in measurements but not defined"
            )
        row = self._cond_rows[cid]
        fn = self.functions
        idx, const = [], []
        for k, default in zip(fn.parameter_ids, fn.defaults, strict=True):
            if k in row:
                i, c = self._spec(row[k], f"condition {cid!r} column {k!r}")
            elif k in self.index:
                i, c = self.index[k], math.nan
            else:
                i, c = -1, float(default)
            idx.append(i)
            const.append(c)
        mask, sidx, sconst = [], [], []
        for s in fn.state_ids:
            if s in row:
                i, c = self._spec(row[s], f"condition {cid!r} column {s!r}")
                mask.append(True)
            else:
                i, c = -1, 0.0
                mask.append(False)
            sidx.append(i)
            sconst.append(c)
        return (
            _Spec(np.array(idx, dtype=int), np.array(const)),
            np.array(mask, dtype=bool),
            _Spec(np.array(sidx, dtype=int), np.array(sconst)),
        )

    # -- measurements and observables --------------------------------------------------
    def _read_measurements(self) -> None:
        m = self.tables.measurements
        pre_col = (
            m["preequilibrationConditionId"] if "preequilibrationConditionId" in m.columns else None
        )
        pairs: list[tuple[str, str]] = []
        pair_of_row = []
        for i in range(len(m)):
            pre = (
                ""
                if pre_col is None or is_missing(pre_col.iloc[i])
                else str(pre_col.iloc[i]).strip()
            )
            key = (pre, str(m["simulationConditionId"].iloc[i]).strip())
            if key not in pairs:
                pairs.append(key)
            pair_of_row.append(pairs.index(key))
        # order pairs: without pre-equilibration first, then with (two vmapped groups)
        order = sorted(range(len(pairs)), key=lambda j: (pairs[j][0] != "", j))
        remap = {old: new for new, old in enumerate(order)}
        self.pairs = [pairs[j] for j in order]
        pair_of_row_a = np.array([remap[j] for j in pair_of_row], dtype=int)
        self._n_plain = sum(1 for p in self.pairs if not p[0])

        times = m["time"].astype(float).to_numpy()
        if np.any(times < 0):
            raise PEtabError(
                f"{self.name}: negative measurement times are not supported (simulation starts at 0)"
            )
        finite = np.isfinite(times)
        self.ts = np.unique(np.concatenate([[0.0], times[finite]]))
        tidx = np.where(finite, np.searchsorted(self.ts, np.where(finite, times, 0.0)), -1)
        self._need_ss = bool(np.any(~finite))

        specs = [self._condition_specs(c) for _, c in self.pairs]
        self._p_sim = _Spec(
            np.stack([s[0].idx for s in specs]), np.stack([s[0].const for s in specs])
        )
        self._x_mask = np.stack([s[1] for s in specs])
        self._x_over = _Spec(
            np.stack([s[2].idx for s in specs]), np.stack([s[2].const for s in specs])
        )
        pre = [self._condition_specs(p) if p else None for p, _ in self.pairs[self._n_plain :]]
        if pre:
            self._p_pre = _Spec(
                np.stack([s[0].idx for s in pre]), np.stack([s[0].const for s in pre])
            )
            self._xpre_mask = np.stack([s[1] for s in pre])
            self._xpre_over = _Spec(
                np.stack([s[2].idx for s in pre]), np.stack([s[2].const for s in pre])
            )

        obs_df = self.tables.observables
        obs_ids = [str(x).strip() for x in obs_df["observableId"]]
        unknown = sorted(set(str(x).strip() for x in m["observableId"]) - set(obs_ids))
        if unknown:
            raise PEtabError(
                f"{self.name}: measurements refer to undefined observable(s) {unknown}"
            )
        self.observables: list[_Observable] = []
        y_all = m["measurement"].astype(float).to_numpy()
        env_names = (
            set(self.functions.parameter_ids)
            | set(self.functions.state_ids)
            | set(self.model.assignment_rules)
            | set(self.model.initial_assignments) & set(self.functions.parameter_ids)
        )
        for j, oid in enumerate(obs_ids):
            rows = np.flatnonzero(m["observableId"].astype(str).str.strip().to_numpy() == oid)
            if rows.size == 0:
                continue
            orow = obs_df.iloc[j]
            trans = _cell(orow, "observableTransformation", "lin")
            dist = _cell(orow, "noiseDistribution", "normal")
            if trans not in _SCALES:
                raise PEtabError(
                    f"{self.name}: observable {oid!r} has unknown observableTransformation {trans!r}"
                )
            if dist not in ("normal", "laplace"):
                raise PEtabError(
                    f"{self.name}: observable {oid!r} has unsupported noiseDistribution {dist!r}"
                )
            f_obs = parse_formula(orow["observableFormula"], f"observableFormula of {oid}")
            f_noise = parse_formula(orow["noiseFormula"], f"noiseFormula of {oid}")
            n_op = _n_placeholders(f_obs, "observableParameter", oid)
            n_np = _n_placeholders(f_noise, "noiseParameter", oid)
            fn = self._observable_function(oid, f_obs, f_noise, env_names)
            op = self._override_specs(m, rows, "observableParameters", n_op, oid)
            npar = self._override_specs(m, rows, "noiseParameters", n_np, oid)
            self.observables.append(
                _Observable(
                    oid,
                    fn,
                    trans,
                    dist,
                    rows,
                    pair_of_row_a[rows],
                    tidx[rows],
                    times[rows],
                    y_all[rows],
                    op,
                    npar,
                    *self._sigma_info(f_noise, npar, n_np, oid),
                )
            )
        self.n_measurements = len(m)

    def _sigma_info(self, f_noise: Any, npar: _Spec, n_np: int, oid: str) -> tuple[bool, float]:
        """Whether the noise scale varies with estimated parameters, and a lower bound of it."""
        est = set(self.est_idx.tolist())
        names = free_names(f_noise)
        ph = {f"noiseParameter{q + 1}_{oid}" for q in range(n_np)}
        direct = [n for n in names - ph if n in self.index and self.index[n] in est]
        via = {int(i) for i in np.unique(npar.idx) if i >= 0 and int(i) in est}
        others = [n for n in names - ph if n not in self.index]
        if not direct and not via and not others:
            return False, 1e-8
        # the usual case: the noise formula is one placeholder mapped to one estimated parameter
        if (
            n_np == 1
            and str(f_noise) == f"noiseParameter1_{oid}"
            and len(via) == 1
            and np.all(npar.idx >= 0)
        ):
            lo = float(self.tables.parameters["lowerBound"].iloc[next(iter(via))])
            if lo > 0:
                return True, lo
        return True, 1e-8

    def _override_specs(self, m: Any, rows: np.ndarray, col: str, n: int, oid: str) -> _Spec:
        idx = np.full((rows.size, max(n, 1)), -1, dtype=int)
        const = np.zeros((rows.size, max(n, 1)))
        for r, row in enumerate(rows):
            vals = split_overrides(m[col].iloc[row]) if col in m.columns else []
            if n == 0:
                continue
            if len(vals) == 1 and n > 1:
                vals = vals * n
            if len(vals) != n:
                raise PEtabError(
                    f"{self.name}: measurement row {row + 2} gives {len(vals)} {col} for observable {oid!r}, "
                    f"whose formula has {n} placeholder(s)"
                )
            for q, v in enumerate(vals):
                idx[r, q], const[r, q] = self._spec(v, f"{col} of measurement row {row + 2}")
        return _Spec(idx, const)

    def _observable_function(self, oid: str, f_obs: Any, f_noise: Any, env_names: set[str]) -> Any:
        ph = re.compile(rf"^(observableParameter|noiseParameter)(\d+)_{re.escape(oid)}$")

        def name(n: str) -> str:
            mt = ph.match(n)
            if mt:
                arr = "op" if mt.group(1) == "observableParameter" else "npar"
                return f"{arr}[{int(mt.group(2)) - 1}]"
            if n in ("t", "time"):
                return "t"
            if n in env_names:
                return f"e[{n!r}]"
            if n in self.index:
                return f"theta[{self.index[n]}]"
            raise PEtabError(
                f"{self.name}: formula of observable {oid!r} reads {n!r}, which is not a model entity, "
                f"parameterId or placeholder"
            )

        src = (
            "def f(t, e, theta, op, npar):\n"
            f"    return jnp.asarray({to_code(f_obs, name)}, dtype=float), "
            f"jnp.asarray({to_code(f_noise, name)}, dtype=float)\n"
        )
        ns: dict[str, Any] = {"jnp": jnp}
        exec(compile(src, f"<observable {oid}>", "exec"), ns)
        return ns["f"]

    # -- simulation ----------------------------------------------------------------------
    def _controller(self, jumps: jax.Array) -> diffrax.AbstractStepSizeController:
        # A solve that cannot go on (blow-up, a cliff in parameter space) rejects steps until
        # max_steps: 10,000 steps, ~30x the cost of a successful solve (Crauste_CellSystems2017:
        # 0.38 s against 13 ms), paid by every rejected trial point of an optimizer. A step
        # below 1e-12 of the time span ends it as failed at once (0.02 s).
        t1 = float(self.ts[-1])
        pid = diffrax.PIDController(
            rtol=self.rtol, atol=self.atol, dtmin=_DTMIN_FRACTION * t1, force_dtmin=False
        )
        if jumps.shape[0] == 0:
            return pid
        # switches at or before t = 0 or at or after the last time need no special step
        jumps = jnp.where((jumps > 0.0) & (jumps < t1), jumps, 2.0 * t1 + 1.0)
        return diffrax.ClipStepSizeController(pid, jump_ts=jumps)

    def _term(self) -> diffrax.ODETerm:
        rhs = self.functions.rhs

        def field(t: Any, y: jax.Array, p: jax.Array) -> jax.Array:
            # overflow at extreme parameter values (inf - inf = nan) must fail the step, not
            # the Newton solver's linear solve: a huge finite derivative makes the step rejected
            dy = rhs(t, y, p)
            return jnp.where(jnp.isfinite(dy), dy, 1e200)

        return diffrax.ODETerm(field)

    def _steady_state(
        self, p: jax.Array, x: jax.Array, adjoint: Any
    ) -> tuple[jax.Array, jax.Array]:
        tol = self.steady_state_tol
        sol = diffrax.diffeqsolve(
            self._term(),
            self.solver,
            t0=0.0,
            t1=1e12,
            dt0=None,
            y0=x,
            args=p,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            event=diffrax.Event(diffrax.steady_state_event(rtol=tol, atol=tol)),
            max_steps=self.max_steps,
            adjoint=adjoint,
            throw=False,
        )
        ok = sol.result == diffrax.RESULTS.event_occurred
        return sol.ys[-1], ok

    def _simulate_pair(
        self, p: jax.Array, x_start: jax.Array, adjoint: Any
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        ts = jnp.asarray(self.ts)
        if self.ts[-1] > 0:
            sol = diffrax.diffeqsolve(
                self._term(),
                self.solver,
                t0=0.0,
                t1=float(self.ts[-1]),
                dt0=None,
                y0=x_start,
                args=p,
                saveat=diffrax.SaveAt(ts=ts),
                stepsize_controller=self._controller(self.functions.jumps(p)),
                max_steps=self.max_steps,
                adjoint=adjoint,
                throw=False,
            )
            xs, ok = sol.ys, sol.result == diffrax.RESULTS.successful
        else:
            xs, ok = x_start[None, :], jnp.asarray(True)
        if self._need_ss:
            x_inf, ok_ss = self._steady_state(p, x_start, adjoint)
            ok = ok & ok_ss
        else:
            x_inf = x_start
        return xs, x_inf, ok

    def _simulate_all(
        self, theta_full: jax.Array, adjoint: Any
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """States of every condition pair on the time grid `self.ts`, steady states, constants, ok flags."""
        fn = self.functions
        p_sim = self._p_sim.resolve(theta_full)
        x_over = self._x_over.resolve(theta_full)
        mask = jnp.asarray(self._x_mask)
        outs = []
        n0 = self._n_plain
        if n0:
            x0 = jax.vmap(fn.x0)(p_sim[:n0])
            x_start = jnp.where(mask[:n0], x_over[:n0], x0)
            outs.append(_map(lambda p, x: self._simulate_pair(p, x, adjoint), p_sim[:n0], x_start))
        if n0 < len(self.pairs):
            p_pre = self._p_pre.resolve(theta_full)
            xpre = jax.vmap(fn.x0)(p_pre)
            xpre = jnp.where(
                jnp.asarray(self._xpre_mask), self._xpre_over.resolve(theta_full), xpre
            )
            x_ss, ok_pre = _map(lambda p, x: self._steady_state(p, x, adjoint), p_pre, xpre)
            x_start = jnp.where(mask[n0:], x_over[n0:], x_ss)
            xs, x_inf, ok = _map(lambda p, x: self._simulate_pair(p, x, adjoint), p_sim[n0:], x_start)
            outs.append((xs, x_inf, ok & ok_pre))
        xs = jnp.concatenate([o[0] for o in outs])
        x_inf = jnp.concatenate([o[1] for o in outs])
        ok = jnp.concatenate([o[2] for o in outs])
        return xs, x_inf, p_sim, ok

    def _full(self, theta_est: jax.Array) -> jax.Array:
        return jnp.asarray(self._nominal_full).at[jnp.asarray(self.est_idx)].set(theta_est)

    def predictions(self, theta_est: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """Per observable: (simulated observable, noise scale) at its measurements."""
        return self._predict(self._full(theta_est), reverse_adjoint())[0]

    def _predict(
        self, theta: jax.Array, adjoint: Any
    ) -> tuple[list[tuple[jax.Array, jax.Array]], jax.Array]:
        xs, x_inf, p_sim, ok = self._simulate_all(theta, adjoint)
        return self._observe(theta, xs, x_inf, p_sim), jnp.all(ok)

    def _observe(
        self, theta: jax.Array, xs: jax.Array, x_inf: jax.Array, p_sim: jax.Array
    ) -> list[tuple[jax.Array, jax.Array]]:
        """Per observable (prediction, noise scale) from simulated states (`_simulate_all`)."""
        env = self.functions.env
        out = []
        for ob in self.observables:
            pair = jnp.asarray(ob.pair)
            tidx = jnp.asarray(ob.tidx)
            x = jnp.where((tidx >= 0)[:, None], xs[pair, jnp.maximum(tidx, 0)], x_inf[pair])
            t = jnp.asarray(np.where(np.isfinite(ob.t), ob.t, 0.0))
            p = p_sim[pair]
            op = ob.op.resolve(theta)
            npar = ob.npar.resolve(theta)

            def one(t, x, p, op, npar, ob=ob):
                return ob.fn(t, env(t, x, p), theta, op, npar)

            out.append(jax.vmap(one)(t, x, p, op, npar))
        return out

    def _objective_from_states(self, x: Any, xs: jax.Array, x_inf: jax.Array, ok: jax.Array) -> jax.Array:
        """`objective_fn(x)` with the simulated states given (everything after the ODE solves)."""
        theta = self._full(_from_scale(x, self.scales))
        total = self._log_density(self._observe(theta, xs, x_inf, self._p_sim.resolve(theta)))
        return jnp.where(jnp.all(ok), -total, jnp.inf) - self.log_prior(x) + self.penalty(x)

    def _log_density(self, preds: list[tuple[jax.Array, jax.Array]]) -> jax.Array:
        """Sum of the measurements' log densities given each observable's (prediction, noise scale)."""
        total = jnp.asarray(0.0)
        for ob, (h, sigma) in zip(self.observables, preds, strict=True):
            total = total + jnp.sum(
                _log_density(jnp.asarray(ob.y), h, sigma, ob.transformation, ob.distribution)
            )
        return total

    def dynamic_indices(self) -> np.ndarray:
        """Indices (into `names`) of the estimated parameters that the ODE solves depend on.

        The others (observable scalings and offsets, noise parameters) enter only after the
        solves, so second derivatives along them need no sensitivities (see `newton`): those
        that the solver inputs (simulation parameters, initial-state overrides, for every
        condition and pre-equilibration) take from the parameter vector.

        Example:
            >>> problem = from_petab("Boehm_JProteomeRes2014.yaml")   # doctest: +SKIP
            >>> [problem.names[i] for i in problem.dynamic_indices()]  # doctest: +SKIP
            ['Epo_degradation_BaF3', 'k_exp_hetero', 'k_exp_homo', 'k_imp_hetero', 'k_imp_homo', 'k_phos']
        """
        if getattr(self, "_dynamic", None) is None:
            specs = [self._p_sim, self._x_over]
            if self._n_plain < len(self.pairs):
                specs += [self._p_pre, self._xpre_over]
            used = set(np.concatenate([np.ravel(spec.idx) for spec in specs]).tolist())
            self._dynamic = np.asarray([i for i, j in enumerate(self.est_idx) if int(j) in used], dtype=int)
        return self._dynamic

    def _log_likelihood_natural(self, theta_est: jax.Array, adjoint: Any) -> jax.Array:
        preds, ok = self._predict(self._full(theta_est), adjoint)
        return jnp.where(ok, self._log_density(preds), -jnp.inf)

    # -- public API ------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Ids of the estimated parameters (`parameter_names`)."""
        return self.parameter_names

    def as_array(self, params: Mapping[str, float] | Sequence[float] | jax.Array) -> jax.Array:
        """Estimated parameters on the natural scale, in `names` order (missing ones: nominal)."""
        if isinstance(params, Mapping):
            fixed_changed = [
                k
                for k in set(params) & set(self._fixed)
                if not np.isclose(float(params[k]), self._fixed[k])
            ]
            if fixed_changed:
                raise PEtabError(
                    f"{self.name}: parameter(s) {sorted(fixed_changed)} are fixed (estimate = 0) and keep "
                    "their nominal values; set estimate to 1 in the parameter table to vary them"
                )
            unknown = sorted(set(params) - set(self.names) - set(self._fixed))
            if unknown:
                raise PEtabError(
                    f"{self.name}: unknown or fixed parameter(s) {unknown}; estimated: {self.names}"
                )
            return jnp.asarray([float(params.get(k, self.nominal[k])) for k in self.names])
        arr = jnp.asarray(params, dtype=float)
        if arr.shape != (len(self.names),):
            raise PEtabError(
                f"{self.name}: expected {len(self.names)} parameter values, got shape {arr.shape}"
            )
        return arr

    def log_likelihood(self, params: Mapping[str, float] | Sequence[float] | jax.Array) -> float:
        """Log-likelihood (priors excluded) at `params` (natural scale, dict or array).

        Example:
            >>> problem = from_petab("Boehm_JProteomeRes2014.yaml")   # doctest: +SKIP
            >>> problem.log_likelihood(problem.nominal)               # doctest: +SKIP
            -138.22...
        """
        return float(self._llh(self.as_array(params)))

    def gradient(self, params: Mapping[str, float] | Sequence[float] | jax.Array) -> jax.Array:
        """Gradient of `log_likelihood` with respect to the natural-scale parameters."""
        return self._grad(self.as_array(params))

    def nll(self, x: Any, *, adjoint: Any = None) -> jax.Array:
        """Negative log-likelihood at estimation-scale `x` (traceable; `inf` when a solve fails)."""
        theta = _from_scale(x, self.scales)
        return -self._log_likelihood_natural(theta, adjoint or reverse_adjoint())

    @property
    def residual_form(self) -> str | None:
        """None when every observable has normal noise (Gauss-Newton methods apply), else why not."""
        laplace = [ob.id for ob in self.observables if ob.distribution != "normal"]
        if laplace:
            return f"observable(s) {laplace} have Laplace noise, which has no least-squares form"
        for p in self._free:
            if (
                p.prior is not None
                and not isinstance(p.prior, UniformPrior)
                and p.prior.residual(0.0) is None
            ):
                return f"the prior {type(p.prior).__name__} of {p.name!r} has no least-squares form"
        return None

    def _residuals_aux(self, x: Any, adjoint: Any) -> tuple[jax.Array, jax.Array]:
        """Residuals with `objective = 0.5 * sum(r**2) + const`, and a step count (0)."""
        theta_est = _from_scale(x, self.scales)
        preds, ok = self._predict(self._full(theta_est), adjoint)
        parts = []
        for ob, (h, sigma) in zip(self.observables, preds, strict=True):
            y = jnp.asarray(ob.y)
            if ob.transformation == "log":
                y, h = jnp.log(y), jnp.log(h)
            elif ob.transformation == "log10":
                y, h = jnp.log10(y), jnp.log10(h)
            parts.append((y - h) / sigma)
            if ob.sigma_varies:
                floor = jnp.asarray(ob.sigma_floor)
                parts.append(jnp.sqrt(jnp.maximum(2.0 * jnp.log(sigma / floor) + 1.0, 0.0)))
        x = jnp.asarray(x)
        for i, p in enumerate(self._free):
            if p.prior is not None and not isinstance(p.prior, UniformPrior):
                v = x[i] if p.prior.on == "scale" else from_scale_1(x[i], p.scale)
                parts.append(jnp.atleast_1d(p.prior.residual(v)))
        r = jnp.concatenate([jnp.ravel(q) for q in parts])
        return jnp.where(ok, r, jnp.inf), jnp.asarray(0)

    def _fisher_rows(
        self, x: Any, xs: jax.Array, x_inf: jax.Array, ok: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Rows `R` whose Jacobian gives the Fisher information `J_R^T J_R`, and the objective,
        from the simulated states (`_simulate_all`).

        Per measurement `th / stop_gradient(sigma)` (transformed prediction over the noise
        scale: the location part) and, where the scale is estimated, `sqrt(2) log sigma`
        (normal) or `log sigma` (Laplace): the expected curvature of `-log p` in `log sigma`.
        Priors with a least-squares form add their residuals.
        """
        theta = self._full(_from_scale(x, self.scales))
        preds, ok = self._observe(theta, xs, x_inf, self._p_sim.resolve(theta)), jnp.all(ok)
        parts, total = [], jnp.asarray(0.0)
        for ob, (h, sigma) in zip(self.observables, preds, strict=True):
            y = jnp.asarray(ob.y)
            total = total + jnp.sum(_log_density(y, h, sigma, ob.transformation, ob.distribution))
            th = (
                h
                if ob.transformation == "lin"
                else (jnp.log(h) if ob.transformation == "log" else jnp.log10(h))
            )
            parts.append(th / jax.lax.stop_gradient(sigma))
            if ob.sigma_varies:
                parts.append(
                    (math.sqrt(2.0) if ob.distribution == "normal" else 1.0) * jnp.log(sigma)
                )
        x = jnp.asarray(x)
        for i, p in enumerate(self._free):
            if p.prior is not None and not isinstance(p.prior, UniformPrior):
                v = x[i] if p.prior.on == "scale" else from_scale_1(x[i], p.scale)
                res = p.prior.residual(v)
                if res is not None:
                    parts.append(jnp.atleast_1d(res))
        rows = jnp.concatenate([jnp.ravel(q) for q in parts])
        obj = jnp.where(ok, -total, jnp.inf) - self.log_prior(x) + self.penalty(x)
        return jnp.where(ok, rows, jnp.inf), obj

    def fisher(self, x: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective, its gradient and the Fisher information matrix at estimation-scale `x`.

        One forward-mode pass through the solver (compiled on first use) gives all three; the
        Hessian model of `method="trust-fisher"` and `"trust-hybrid"`. A failed solve gives `inf`.
        """
        if getattr(self, "_fisher_jit", None) is None:
            self._fisher_jit = jax.jit(self._fisher_fn())
        self.compiled.counts.jacobian += 1
        out = self._run_compiled(self._fisher_jit, x)
        if out is None:
            return self._failed_model()
        jac, obj = out
        f = float(obj)
        if not np.isfinite(f):
            return self._failed_model()
        jr, g = np.asarray(jac[:-1]), np.array(jac[-1])
        return f, g, jr.T @ jr

    @staticmethod
    def _run_compiled(fn: Any, x: Any) -> Any:
        """`fn(x)` on the host, or None where a runtime check inside the solve failed."""
        try:
            return jax.device_get(fn(np.asarray(x, dtype=np.float64)))
        except (jax.errors.JaxRuntimeError, ValueError) as error:
            if not _solver_check_failed(error):
                raise
            return None

    def _failed_model(self) -> tuple[float, np.ndarray, np.ndarray]:
        """What `fisher` and `newton` return where the solve fails: the trust region rejects it."""
        n = len(self.names)
        return np.inf, np.zeros(n), np.eye(n)

    def _dynamic_states(
        self, x: Any, dyn: jax.Array, d: Any, adjoint: Any
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        """Simulated states (time grid, steady states) and ok flags at `x` with its dynamic
        entries `x[dyn]` replaced by `d` (the variables that sensitivities are taken along)."""
        xs, x_inf, _, ok = self._simulate_all(
            self._full(_from_scale(x.at[dyn].set(d), self.scales)), adjoint
        )
        return (xs, x_inf), ok

    def _fisher_fn(self) -> Any:
        """`x -> (Jacobian of [Fisher rows, objective], objective)`, traceable (see `fisher`).

        First-order sensitivities of the states along the `dynamic_indices` only; the rows
        are differentiated through the states' first-order Taylor model, which has the same
        value and Jacobian at `x`.
        """
        from scimlkit.fit.simulate import forward_adjoint

        fwd = forward_adjoint()
        dyn = jnp.asarray(self.dynamic_indices())

        def fisher(x: Any) -> tuple[jax.Array, jax.Array]:
            d0 = x[dyn]

            def states(d: Any) -> Any:
                s, ok = self._dynamic_states(x, dyn, d, fwd)
                return s, (s, ok)

            j1, (s0, ok) = jax.jacfwd(states, has_aux=True)(d0)

            def stacked(z: Any) -> tuple[jax.Array, jax.Array]:
                delta = z[dyn] - d0
                xs, x_inf = jax.tree.map(lambda s, j: s + j @ delta, s0, j1)
                rows, obj = self._fisher_rows(z, xs, x_inf, ok)
                return jnp.concatenate([rows, obj[None]]), obj

            return jax.jacfwd(stacked, has_aux=True)(x)

        return fisher

    def newton(self, x: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective, gradient and exact Hessian at estimation-scale `x`.

        Second-order forward sensitivities of the simulated states are taken along the
        `dynamic_indices` only; the objective is then differentiated twice through their
        second-order Taylor model, which has the same value, gradient and Hessian at `x`
        (for Boehm_JProteomeRes2014 6 of 9 directions: 36 instead of 81 second-order
        sensitivities). One compiled call (built on first use); a failed solve gives `inf`.
        """
        if getattr(self, "_newton_jit", None) is None:
            self._newton_jit = jax.jit(self._newton_fn())
        self.compiled.counts.hessian += 1
        out = self._run_compiled(self._newton_jit, x)
        if out is None:
            return self._failed_model()
        h, (g, v) = out
        f = float(v[0])
        if not np.isfinite(f):
            return self._failed_model()
        h = np.asarray(h)
        return f, np.array(g), 0.5 * (h + h.T)

    def _newton_fn(self) -> Any:
        """`x -> (Hessian, (gradient, [objective]))`, traceable (see `newton`)."""
        from scimlkit.fit.simulate import forward_adjoint

        fwd = forward_adjoint()
        dyn = jnp.asarray(self.dynamic_indices())

        def newton(x: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            d0 = x[dyn]

            def first(d: Any) -> Any:
                s, ok = self._dynamic_states(x, dyn, d, fwd)
                return s, (s, ok)

            def second(d: Any) -> Any:
                j, aux = jax.jacfwd(first, has_aux=True)(d)
                return j, (j, aux)

            h2, (j1, (s0, ok)) = jax.jacfwd(second, has_aux=True)(d0)

            def objective(z: Any) -> jax.Array:
                delta = z[dyn] - d0
                xs, x_inf = jax.tree.map(lambda s, j, h: s + j @ delta + 0.5 * ((h @ delta) @ delta), s0, j1, h2)
                return self._objective_from_states(z, xs, x_inf, ok)

            def gradient(z: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
                v, g = jax.value_and_grad(objective)(z)
                return g, (g, jnp.stack([v]))

            return jax.jacfwd(gradient, has_aux=True)(x)  # one trace of the observation model

        return newton

    @property
    def n_data(self) -> int:
        """Number of measurements."""
        return self.n_measurements

    def describe(self) -> str:
        """A short text description of the problem."""
        lines = [repr(self)]
        for p in self._free:
            lines.append(f"  {p.name:<24} [{p.bounds[0]:.4g}, {p.bounds[1]:.4g}] {p.scale}")  # type: ignore[index]
        return "\n".join(lines)

    def simulate(
        self, params: Mapping[str, float] | Any, t: Any = None, experiments: Any = None
    ) -> list[dict]:
        """Observables at the measurements, per observable: dict with `observable`, `t`, `y`,
        `prediction`, `sigma`, `condition` (NumPy). `params`: natural-scale dict or `x`."""
        theta = (
            self.as_array(params)
            if isinstance(params, Mapping)
            else _from_scale(jnp.asarray(params), self.scales)
        )
        preds, ok = jax.jit(lambda th: self._predict(self._full(th), reverse_adjoint()))(theta)
        out = []
        for ob, (h, sigma) in zip(self.observables, preds, strict=True):
            out.append(
                {
                    "observable": ob.id,
                    "t": ob.t,
                    "y": ob.y,
                    "prediction": np.asarray(h),
                    "sigma": np.asarray(sigma),
                    "condition": [self.pairs[k][1] for k in ob.pair],
                    "ok": bool(ok),
                }
            )
        return out

    def __repr__(self) -> str:
        return (
            f"PEtabProblem({self.name!r}: {len(self.names)} estimated parameters, "
            f"{len(self.pairs)} condition(s), {self.n_measurements} measurements, "
            f"{len(self.functions.state_ids)} states)"
        )


def _solver_check_failed(error: Exception) -> bool:
    """Whether `error` is a runtime check inside the solve (Equinox/Lineax: a non-finite linear
    solve in a stiff or overflowing region), which means a failed evaluation, not a bug.
    XLA:CPU reports it as `JaxRuntimeError` or, through its callback, as `ValueError`."""
    return isinstance(error, jax.errors.JaxRuntimeError) or "EquinoxRuntimeError" in str(error)


def _prior(spec: tuple[str, tuple[float, ...]] | None, pid: str, problem: str) -> Prior | None:
    """A `scimlkit.fit` prior from a PEtab `objectivePriorType` and its parameters."""
    if spec is None:
        return None
    kind, args = spec
    table: dict[str, tuple[type, str]] = {
        "normal": (NormalPrior, "natural"),
        "laplace": (LaplacePrior, "natural"),
        "uniform": (UniformPrior, "natural"),
        "logNormal": (LogNormalPrior, "natural"),
        "parameterScaleNormal": (NormalPrior, "scale"),
        "parameterScaleLaplace": (LaplacePrior, "scale"),
        "parameterScaleUniform": (UniformPrior, "scale"),
    }
    if kind not in table:
        raise PEtabError(
            f"{problem}: parameter {pid!r} has unsupported objectivePriorType {kind!r}; use one of {sorted(table)}"
        )
    if len(args) != 2:
        raise PEtabError(
            f"{problem}: parameter {pid!r}: objectivePriorParameters needs two numbers 'a;b', got {args}"
        )
    cls, on = table[kind]
    return cls(args[0], args[1], on=on)


def _map(fn: Any, *args: jax.Array) -> Any:
    """`jax.vmap(fn)(*args)`, without the batching transform when there is one row: a vmapped
    solver loop costs seconds more to trace (and nothing less to run) for a single condition."""
    if args[0].shape[0] == 1:
        return jax.tree.map(lambda a: a[None], fn(*(a[0] for a in args)))
    return jax.vmap(fn)(*args)


def _cell(row: Any, col: str, default: str) -> str:
    if col not in row.index or is_missing(row[col]):
        return default
    return str(row[col]).strip()


def _n_placeholders(expr: Any, kind: str, oid: str) -> int:
    pat = re.compile(rf"^{kind}(\d+)_{re.escape(oid)}$")
    nums = [int(mt.group(1)) for n in free_names(expr) if (mt := pat.match(n))]
    return max(nums, default=0)


def _log_density(y: jax.Array, h: jax.Array, sigma: jax.Array, trans: str, dist: str) -> jax.Array:
    """PEtab's log density of data `y` given prediction `h` and scale `sigma`."""
    if trans == "lin":
        ty, th, jac = y, h, 0.0
    elif trans == "log":
        ty, th, jac = jnp.log(y), jnp.log(h), jnp.log(y)
    else:
        ty, th, jac = jnp.log10(y), jnp.log10(h), jnp.log(y * _LN10)
    if dist == "normal":
        return -0.5 * _LOG_2PI - jnp.log(sigma) - 0.5 * ((ty - th) / sigma) ** 2 - jac
    return -jnp.log(2.0 * sigma) - jnp.abs(ty - th) / sigma - jac


def from_petab(yaml_path: str | Path, **solver_options: Any) -> PEtabProblem:
    """Read a PEtab problem (YAML + SBML + tables) into a `PEtabProblem`.

    `solver_options` go to `PEtabProblem` (`rtol`, `atol`, `solver`, `max_steps`,
    `steady_state_tol`); the defaults (Kvaerno4, rtol = atol = 1e-8) match the tolerances
    that published reference likelihoods use. `max_steps` (default 10,000 per solve, as
    AMICI's CVODES default) bounds the work of one simulation: a start whose parameters make
    the model so stiff that the solve needs more fails fast (objective `inf`) instead of
    stepping for minutes; all ten problems in `../shared/petab` need fewer at nominal values.
    Kvaerno4 was 2-30x faster than Kvaerno5 on 8 of the 10 benchmark problems in
    `../shared/petab` (2.5x slower on Bruno and Zheng, which take milliseconds either way);
    pass `solver=diffrax.Kvaerno5()` to choose.

    Example:
        >>> from scimlkit import fit
        >>> problem = fit.from_petab("Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml")  # doctest: +SKIP
        >>> round(float(problem.log_likelihood(problem.nominal)), 2)  # doctest: +SKIP
        -138.22
    """
    return PEtabProblem(read_tables(yaml_path), **solver_options)
