"""Lotka-Volterra from 20 random starts: SciPy by hand versus `scimlkit.fit.estimate`.

Same synthetic data (`fit.zoo.lotka_volterra()`: Gaussian noise sd 1 on both populations,
known truth), same 20 Latin-hypercube starts on the log10 scale, same bounds, same ODE
tolerances (rtol 1e-8, atol 1e-10).

- SciPy by hand: `least_squares(method="trf")` over `solve_ivp(method="LSODA")` residuals,
  Jacobian by finite differences (SciPy's default "2-point").
- scimlkit: `fit.estimate(problem, "lm", ...)` (SciPy's trf on JAX-compiled residuals and
  forward-mode Jacobians through diffrax), single shooting and multiple shooting
  (`objective=fit.MultipleShooting(4)`, each start refined on the full objective), and the
  two-stage method.

Prints per-fit times (compilation reported apart), RHS evaluations, starts recovered within
5% of the truth, and the speed-up ratios; then total wall time of 20 starts for
engine="serial" versus engine=2 (spawned processes). Run:

    .venv/bin/python benchmarks/fit_lotka_volterra.py [--no-engines] [--scipy-starts N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

from scimlkit import fit
from scimlkit.fit.optimize import sample_starts

TOL = 0.05


def recovered(params: dict[str, float], true: dict[str, float]) -> bool:
    return max(abs(params[k] / v - 1.0) for k, v in true.items()) < TOL


def scipy_by_hand(entry: fit.zoo.ZooProblem, starts: np.ndarray) -> dict:
    pr = entry.problem
    e = pr.experiments[0]
    data = e.data
    names = pr.parameter_names
    calls = {"rhs": 0}

    def rhs(t, y, a, b, c, d):
        calls["rhs"] += 1
        return [a * y[0] - b * y[0] * y[1], -c * y[1] + d * y[0] * y[1]]

    def residuals(z):
        a, b, c, d = 10.0**z
        sol = solve_ivp(rhs, (e.t[0], e.t[-1]), [30.0, 4.0], method="LSODA", t_eval=e.t,
                        args=(a, b, c, d), rtol=1e-8, atol=1e-10)
        if not sol.success or sol.y.shape[1] != e.t.size:
            return np.full(data.size, 1e6)
        return (data - sol.y.T).ravel()  # sigma = 1

    times, ok, rhs_calls = [], 0, []
    for z0 in starts:
        calls["rhs"] = 0
        t = time.perf_counter()
        res = least_squares(residuals, z0, bounds=(pr.lower, pr.upper), method="trf")
        times.append(time.perf_counter() - t)
        rhs_calls.append(calls["rhs"])
        ok += recovered(dict(zip(names, 10.0**res.x, strict=True)), entry.true)
    return {"time": np.array(times), "ok": ok, "rhs": np.array(rhs_calls), "n": len(starts)}


def ours(entry: fit.zoo.ZooProblem, starts: np.ndarray, label: str, **kw) -> dict:
    pr = entry.problem
    t_all = time.perf_counter()
    r = fit.estimate(pr, starts=starts, **kw)  # the very same start points
    outcomes = [(s, pr.to_natural(s.x)) for s in sorted(r.starts, key=lambda s: s.index)]
    compile_s, steps = r.compile_s, r.counts.steps
    times = np.array([s.time_s for s, _ in outcomes])
    ok = sum(recovered(p, entry.true) for _, p in outcomes)
    return {"label": label, "time": times, "ok": ok, "compile": compile_s, "steps": steps,
            "rhs": 6 * steps, "n": len(starts), "wall": time.perf_counter() - t_all}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-engines", action="store_true", help="skip the serial-vs-processes timing")
    ap.add_argument("--scipy-starts", type=int, default=20, help="SciPy starts to run (default 20)")
    args = ap.parse_args()
    entry = fit.zoo.lotka_volterra()
    pr = entry.problem
    starts = sample_starts(pr.lower, pr.upper, 20, "lhs", seed=0)
    print(f"problem: {pr!r}\ntruth: {entry.true}\nstarts: 20 Latin-hypercube points, seed 0\n")

    ref = scipy_by_hand(entry, starts[: args.scipy_starts])
    print(f"SciPy by hand (LSODA + finite differences): {ref['ok']}/{ref['n']} recovered within 5%, "
          f"median {np.median(ref['time']):.3f} s/fit, mean {ref['time'].mean():.3f} s/fit, "
          f"median {int(np.median(ref['rhs']))} RHS calls/fit")
    rows = [
        ours(entry, starts, "fit.estimate lm (single shooting)", method="lm"),
        ours(entry, starts, "fit.estimate lm + MultipleShooting(4)", method="lm",
             objective=fit.MultipleShooting(segments=4)),
        ours(entry, starts, "fit.estimate two-stage (spline) + lm", method="two-stage"),
    ]
    print()
    print(f"{'method':<42} {'recovered':>9} {'s/fit (median)':>15} {'speed-up':>9} "
          f"{'compile s':>10} {'RHS evals/fit':>14}")
    print(f"{'SciPy by hand':<42} {ref['ok']:>6}/{ref['n']:<2} {np.median(ref['time']):>15.4f} "
          f"{1.0:>9.1f} {0.0:>10.1f} {int(np.median(ref['rhs'])):>14}")
    for r in rows:
        speed = np.median(ref["time"]) / np.median(r["time"])
        print(f"{r['label']:<42} {r['ok']:>6}/{r['n']:<2} {np.median(r['time']):>15.4f} "
              f"{speed:>9.1f} {r['compile']:>10.1f} {int(r['rhs'] / r['n']):>14}")
    print("(scimlkit RHS evaluations = 6 x Tsit5 steps, primal only; Jacobian solves also carry "
          "4 forward-mode tangents through each evaluation)")

    if not args.no_engines:
        print("\n20 starts, total wall time including compilation:")
        for engine in ("serial", 2):
            fresh = fit.zoo.lotka_volterra().problem  # nothing compiled yet
            t = time.perf_counter()
            r = fit.estimate(fresh, "lm", starts=20, seed=0, engine=engine)
            print(f"  engine={engine!r:<10} {time.perf_counter() - t:7.2f} s  "
                  f"(best objective {r.objective:.4f}, {r.converged_starts()}/20 at the best)")


if __name__ == "__main__":
    main()
