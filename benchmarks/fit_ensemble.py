"""Ensemble simulation: scimlkit (vmapped diffrax, chunked) vs a plain loop of SciPy's solve_ivp.

10,000 FitzHugh-Nagumo simulations over 4 parameters (a Sobol design), saved at 201 times
on [0, 100], both at rtol=1e-6 / atol=1e-8 with a 5th-order explicit Runge-Kutta pair
(Tsit5 vs RK45). The SciPy loop is timed on `--scipy-n` members (default 1,000) and
extrapolated linearly to the full ensemble unless `--scipy-n` equals `--n`; results are
checked against each other on the members both ran.

Run: python benchmarks/fit_ensemble.py [--n 10000] [--scipy-n 1000] [--chunk 2048]
"""

from __future__ import annotations

import argparse
import resource
import time

import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from scimlkit import fit
from scimlkit.fit.explore import sample_parameters, simulate_ensemble

T = np.linspace(0.0, 100.0, 201)
Y0 = [-1.0, 1.0]
PARAMS = [
    fit.Parameter("a", bounds=(0.5, 1.0)),
    fit.Parameter("b", bounds=(0.5, 1.0)),
    fit.Parameter("tau", bounds=(5.0, 20.0)),
    fit.Parameter("I", bounds=(0.0, 1.0)),
]


def fhn(t, y, p):
    v, w = y
    return jnp.stack([v - v**3 / 3 - w + p["I"], (v + p["a"] - p["b"] * w) / p["tau"]])


def fhn_numpy(t, y, a, b, tau, current):
    v, w = y
    return [v - v**3 / 3 - w + current, (v + a - b * w) / tau]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--scipy-n", type=int, default=1_000)
    parser.add_argument("--chunk", type=int, default=2048)
    args = parser.parse_args()

    values = sample_parameters(PARAMS, args.n, design="sobol", seed=0)
    model = fit.ODEModel(fhn, ["v", "w"])
    kwargs = dict(rtol=1e-6, atol=1e-8, chunk_size=args.chunk, solver="tsit5")

    small = {k: v[: args.chunk] for k, v in values.items()}
    start = time.perf_counter()
    simulate_ensemble(model, small, T, Y0, **kwargs)  # compile + one chunk
    first = time.perf_counter() - start
    start = time.perf_counter()
    ens = simulate_ensemble(model, values, T, Y0, **kwargs)
    ours = time.perf_counter() - start

    m = min(args.scipy_n, args.n)
    start = time.perf_counter()
    ref = np.empty((m, len(T), 2))
    for i in range(m):
        sol = solve_ivp(fhn_numpy, (T[0], T[-1]), Y0, method="RK45", t_eval=T, rtol=1e-6, atol=1e-8,
                        args=(values["a"][i], values["b"][i], values["tau"][i], values["I"][i]))
        ref[i] = sol.y.T
    scipy_time = (time.perf_counter() - start) * args.n / m

    err = np.max(np.abs(ens.states[:m] - ref))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ensemble of {args.n} FitzHugh-Nagumo simulations, {len(T)} save times, chunk {args.chunk}")
    print(f"  scimlkit: {ours:8.2f} s  ({args.n / ours:,.0f} sims/s; first call incl. compile {first:.2f} s); failed: {(~ens.ok).sum()}")
    label = "measured" if m == args.n else f"extrapolated from {m}"
    print(f"  solve_ivp loop: {scipy_time:8.2f} s ({label})")
    print(f"  speed-up: {scipy_time / ours:.1f}x (target >= 20x)")
    print(f"  max |difference| vs solve_ivp on {m} members: {err:.2e}")
    print(f"  result array: {ens.states.nbytes / 1e6:.1f} MB; peak RSS of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
