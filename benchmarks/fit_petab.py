"""PEtab benchmark problems: scimlkit.fit multi-start estimation vs pyPESTO + AMICI.

For each problem: N starts (default 20) of our method(s) and of pyPESTO (L-BFGS-B and
Fides, AMICI simulations), all from the same Latin-hypercube start points on the estimation
scale; reported: wall time (including compilation / model build), the best objective, and
how many starts reach the best known optimum within 1e-3 (absolute, on the negative
log-likelihood; priors excluded on both sides).

pyPESTO and AMICI live in their own virtual environment (never in scimlkit's), by default
`/work/venvs/pypesto` (`uv venv /work/venvs/pypesto && VIRTUAL_ENV=... uv pip install pypesto
petab amici fides`); set `PYPESTO_PYTHON` to use another. The pyPESTO side runs as a
subprocess of that interpreter (`--pypesto-worker`), with its `bin` first on PATH so AMICI's
model build finds its tools. If it cannot run, the table says why and keeps our numbers.

    .venv/bin/python benchmarks/fit_petab.py                        # Boehm, Fiedler, Crauste; 20 starts
    .venv/bin/python benchmarks/fit_petab.py --quick                # 1 problem, 3 starts (CI smoke)
    .venv/bin/python benchmarks/fit_petab.py --problems Boehm_JProteomeRes2014 --methods trust-hybrid trust-newton lm
    .venv/bin/python benchmarks/fit_petab.py --tol 0     # optimize at the reference tolerances 1e-8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "petab"
DEFAULT_PROBLEMS = ["Boehm_JProteomeRes2014", "Crauste_CellSystems2017", "Fiedler_BMCSystBiol2016"]
#: AMICI writes its compiled models under the working directory: keep them out of the repo
AMICI_DIR = Path(tempfile.gettempdir()) / "scimlkit_amici_models"
PYPESTO_PYTHON = os.environ.get("PYPESTO_PYTHON", "/work/venvs/pypesto/bin/python")


def starts_for(lower: np.ndarray, upper: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Latin hypercube start points in the box (shared by both sides)."""
    from scipy.stats import qmc

    u = qmc.LatinHypercube(d=lower.size, seed=seed).random(n)
    return lower + u * (upper - lower)


def run_ours(yaml_path: Path, method: str, starts: np.ndarray, tol: float | None = None,
             workers: int = 1) -> dict:
    """Our multi-start fit; with `tol`, optimize at rtol = atol = `tol` and report every
    start's objective re-evaluated at the default (reference) tolerances 1e-8 (in the wall time).
    With `workers > 1` the starts run on that many threads sharing one compilation."""
    from concurrent.futures import ThreadPoolExecutor

    from scimlkit import fit

    t0 = time.perf_counter()
    problem = fit.from_petab(yaml_path) if tol is None else fit.from_petab(yaml_path, rtol=tol, atol=tol)
    try:
        with ThreadPoolExecutor(workers) as pool:
            res = fit.estimate(problem, method, starts=starts, seed=0,
                               engine=pool if workers > 1 else "serial")
        by_index = {s.index: (float(s.objective), s.x) for s in res.starts}
        per_start = {s.index: (s.iterations, round(s.time_s, 2), s.status.name) for s in res.starts}
    except fit.EstimationFailedError:  # every start failed
        res, by_index, per_start = None, {}, {}
    if tol is not None and by_index:
        ref = fit.from_petab(yaml_path)
        by_index = {k: (-ref.log_likelihood(ref.to_natural(x)) if np.isfinite(f) else f, x)
                    for k, (f, x) in by_index.items()}
    objs = [by_index[k][0] if k in by_index else float("inf") for k in range(len(starts))]
    wall = time.perf_counter() - t0
    counts = {}
    if res is not None:
        counts = {k: v for k, v in res.counts.__dict__.items() if v}
        counts["compile_s"] = round(res.compile_s, 1)
    name = f"scimlkit {method}" + ("" if tol is None else f" (tol {tol:g})")
    name += f", {workers} threads" if workers > 1 else ""
    return {"tool": name, "wall_s": wall, "objectives": objs, "evaluations": counts,
            "per_start": [per_start.get(k) for k in range(len(starts))]}


def run_pypesto(yaml_path: Path, optimizer: str, starts: np.ndarray, workers: int = 1,
                cold: bool = True) -> dict:
    """pyPESTO + AMICI from the same starts; `cold`: rebuild the AMICI model (its build time
    counts, as our compilation does); `workers > 1`: pyPESTO's MultiThreadEngine (its
    MultiProcessEngine cannot pickle an AMICI objective built without HDF5)."""
    AMICI_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = str(Path(PYPESTO_PYTHON).parent) + os.pathsep + env.get("PATH", "")
    payload = json.dumps({"yaml": str(yaml_path), "optimizer": optimizer, "starts": starts.tolist(),
                          "workers": workers, "cold": cold})
    if not Path(PYPESTO_PYTHON).exists():
        return {"tool": f"pyPESTO {optimizer}", "error": f"{PYPESTO_PYTHON} not found (install the pypesto venv)"}
    proc = subprocess.run(
        [PYPESTO_PYTHON, str(Path(__file__).resolve()), "--pypesto-worker"], input=payload, capture_output=True,
        text=True, env=env, timeout=3600, cwd=AMICI_DIR,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"tool": f"pyPESTO {optimizer}", "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pypesto_worker() -> None:
    """Runs inside the pyPESTO venv: build the AMICI model, optimize from the given starts."""
    import logging

    import petab.v1 as petab
    import pypesto
    import pypesto.engine
    import pypesto.optimize as optimize
    import pypesto.petab

    logging.disable(logging.WARNING)
    job = json.loads(sys.stdin.read())
    t0 = time.perf_counter()
    petab_problem = petab.Problem.from_yaml(job["yaml"])
    # AMICI cannot import timepoint-specific observable/noise parameter overrides (Fiedler):
    # petab's own flattening rewrites them into per-timepoint observables (a no-op otherwise)
    petab.flatten_timepoint_specific_output_overrides(petab_problem)
    importer = pypesto.petab.PetabImporter(petab_problem)
    problem = importer.create_problem(force_compile=job["cold"])
    build = time.perf_counter() - t0
    starts = np.asarray(job["starts"])
    full = np.empty((starts.shape[0], problem.dim_full))
    full[:, problem.x_free_indices] = starts  # same order: the estimated rows of the parameter table
    full[:, problem.x_fixed_indices] = problem.x_fixed_vals
    problem.set_x_guesses(full)
    opt = optimize.FidesOptimizer() if job["optimizer"] == "fides" else optimize.ScipyOptimizer(method="L-BFGS-B")
    engine = pypesto.engine.MultiThreadEngine(n_threads=job["workers"]) if job["workers"] > 1 else None
    result = optimize.minimize(problem, optimizer=opt, n_starts=len(starts), progress_bar=False, engine=engine)
    objs = [float(r["fval"]) for r in result.optimize_result.list]
    # pyPESTO's objective includes priors; the benchmark problems compared here have none
    tool = f"pyPESTO {job['optimizer']}" + (f", {job['workers']} threads" if job["workers"] > 1 else "")
    print(json.dumps({"tool": tool, "wall_s": time.perf_counter() - t0,
                      "build_s": build, "objectives": objs}))


def best_known(name: str) -> float | None:
    """Best known negative log-likelihood (the published nominal point is the best fit)."""
    ref = SHARED / "REFERENCE.tsv"
    for line in ref.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if parts[0] == name:
            return -float(parts[1])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="*", default=DEFAULT_PROBLEMS)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--methods", nargs="*", default=["trust-hybrid"])
    ap.add_argument("--tol", type=float, default=1e-6,
                    help="rtol = atol of our solver while optimizing (0: the reference 1e-8); "
                         "reported objectives are always re-evaluated at 1e-8")
    ap.add_argument("--pypesto", nargs="*", default=["L-BFGS-B", "fides"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1,
                    help="parallel threads on each side (ours share one compilation; pyPESTO's "
                         "MultiThreadEngine copies the AMICI objective per task)")
    ap.add_argument("--warm-amici", action="store_true",
                    help="reuse an earlier AMICI build (default: rebuild, so its build time counts)")
    ap.add_argument("--quick", action="store_true", help="one problem, 3 starts, no pyPESTO (CI smoke)")
    ap.add_argument("--json", default=None, help="also write all rows to this JSON file")
    ap.add_argument("--pypesto-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pypesto_worker:
        pypesto_worker()
        return
    if args.quick:
        args.problems, args.starts, args.pypesto = args.problems[:1], 3, []
    from scimlkit import fit

    rows = []
    for name in args.problems:
        yaml_path = SHARED / name / f"{name}.yaml"
        if not yaml_path.is_file():
            print(f"skip {name}: {yaml_path} is absent")
            continue
        problem = fit.from_petab(yaml_path)
        target = best_known(name)
        starts = starts_for(np.asarray(problem.lower), np.asarray(problem.upper), args.starts, args.seed)
        runs = [run_ours(yaml_path, m, starts, args.tol or None, args.workers) for m in args.methods]
        runs += [run_pypesto(yaml_path, o, starts, args.workers, not args.warm_amici) for o in args.pypesto]
        for r in runs:
            if "objectives" in r:
                r["best"] = float(np.nanmin(np.asarray(r["objectives"], float)))
        # one yardstick for every tool: the best of the published value and all end points
        bests = [r["best"] for r in runs if "best" in r] + ([target] if target is not None else [])
        yardstick = min(bests) if bests else np.nan
        for r in runs:
            r["problem"] = name
            r["target"] = target if target is not None else yardstick
            if "objectives" in r:
                r["hits"] = int(np.sum(np.asarray(r["objectives"], float) <= yardstick + 1e-3))
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "objectives"}), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    print()
    print("| problem | tool | starts at best known (1e-3) | best -llh | best known | wall s | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['problem']} | {r['tool']} | - | - | {r['target']:.3f} | - | {r['error']} |")
            continue
        note = f"build {r['build_s']:.0f} s" if "build_s" in r else ", ".join(f"{k} {v}" for k, v in
                                                                           r.get("evaluations", {}).items())
        print(f"| {r['problem']} | {r['tool']} | {r['hits']}/{len(r['objectives'])} | {r['best']:.3f} | "
              f"{r['target']:.3f} | {r['wall_s']:.1f} | {note} |")
    by_problem: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem"], {})[r["tool"]] = r
    for name, tools in by_problem.items():
        ours = [r for t, r in tools.items() if t.startswith("scimlkit") and "wall_s" in r]
        theirs = [r for t, r in tools.items() if t.startswith("pyPESTO") and "wall_s" in r]
        if ours and theirs:
            o = min(ours, key=lambda r: r["wall_s"])
            for t in theirs:
                print(f"{name}: wall-time ratio {t['tool']} / {o['tool']} = {t['wall_s'] / o['wall_s']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
