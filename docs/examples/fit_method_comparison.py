# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Which estimation method when? Methods x problems
#
# Every method of `fit.estimate` (local Levenberg-Marquardt, L-BFGS-B, BFGS, CMA-ES,
# differential evolution, multiple shooting, two-stage collocation) runs on the problem zoo
# and on PEtab benchmark problems, from the same number of starts; NUTS (`fit.sample`)
# runs once per zoo problem for its cost per effective sample. Reported per method and
# problem:
#
# - **success**: fraction of starts whose objective is within 1e-3 of the best known value
#   (the best over all methods and the objective at the true/nominal parameters);
# - **time to best**: total wall time divided by the number of successful starts (the
#   expected time to reach the optimum once), compilation included;
# - **evaluations**: objective, gradient, residual and Jacobian calls per start.
#
# By default (what CI and the docs build run) this is the quick mode: two zoo problems,
# three starts, no PEtab. `SCIMLKIT_FULL=1` runs five zoo problems, ten starts, two PEtab
# problems and NUTS.

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from scimlkit import fit

QUICK = os.environ.get("SCIMLKIT_FULL", "0") != "1"
STARTS = 3 if QUICK else 10
ZOO = ["exponential_decay", "lotka_volterra"] if QUICK else ["exponential_decay", "lotka_volterra",
                                                             "fitzhugh_nagumo", "sir", "michaelis_menten"]
PETAB_DIR = Path("../shared/petab") if Path("../shared/petab").is_dir() else Path("../../shared/petab")
PETAB = [] if QUICK or not PETAB_DIR.is_dir() else ["Boehm_JProteomeRes2014", "Fiedler_BMCSystBiol2016"]
METHODS = {
    "LM": dict(method="lm"),
    "multi-start LM": dict(method="lm", many=True),
    "L-BFGS-B": dict(method="lbfgs"),
    "BFGS": dict(method="bfgs"),
    "CMA-ES": dict(method="cmaes"),
    "DE": dict(method="de"),
    "multiple shooting": dict(method="lm", objective="shooting"),
    "two-stage": dict(method="two-stage"),
}

# %%
def problems():
    for name in ZOO:
        entry = fit.zoo.get(name)
        yield name, entry.problem, entry.problem.from_natural(entry.true)
    for name in PETAB:
        problem = fit.from_petab(PETAB_DIR / name / f"{name}.yaml")
        yield name, problem, problem.x0


def run(problem, spec):
    """One estimation; local LM starts from the nominal point only, global methods get fewer runs."""
    objective = fit.MultipleShooting(segments=4) if spec.get("objective") == "shooting" else None
    if spec["method"] == "lm" and not spec.get("many") and objective is None:
        kwargs = dict(starts=1, x0=problem.x0)
    elif spec["method"] in ("cmaes", "de"):
        kwargs = dict(starts=max(1, STARTS // 3))
    else:
        kwargs = dict(starts=STARTS)
    t0 = time.perf_counter()
    result = fit.estimate(problem, spec["method"], seed=0, objective=objective, **kwargs)
    return result, time.perf_counter() - t0


rows = []
for pname, problem, x_ref in problems():
    ref = problem.compiled.objective(x_ref)
    outcomes = {}
    for mname, spec in METHODS.items():
        try:
            result, wall = run(problem, spec)
        except Exception as exc:  # a method that does not apply (two-stage with unobserved states, ...)
            outcomes[mname] = ("n/a", str(exc).split(";")[0][:60])
            continue
        outcomes[mname] = (result, wall)
    best = min([ref] + [o[0].objective for o in outcomes.values() if not isinstance(o[0], str)])
    for mname, (result, wall) in outcomes.items():
        if isinstance(result, str):
            rows.append(dict(problem=pname, method=mname, success=np.nan, time_to_best=np.nan, evals=wall))
            continue
        objs = np.array([s.objective for s in result.starts])
        hits = int(np.sum(objs <= best + 1e-3))
        c = result.counts
        evals = (c.objective + c.gradient + c.residuals + c.jacobian) / max(1, len(result.starts))
        rows.append(dict(problem=pname, method=mname, success=hits / len(objs),
                         time_to_best=wall / hits if hits else np.inf, evals=f"{evals:.0f}"))

# %% [markdown]
# ## Results

# %%
import pandas as pd


def markdown(df: pd.DataFrame) -> str:
    """A pandas table as a markdown table (no tabulate dependency)."""
    head = "| " + " | ".join([df.index.name or ""] + [str(c) for c in df.columns]) + " |"
    lines = [head, "|" + "---|" * (len(df.columns) + 1)]
    for idx, row in df.iterrows():
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


table = pd.DataFrame(rows)
print("Fraction of starts reaching the best known objective (1e-3):")
print(markdown(table.pivot(index="method", columns="problem", values="success")))
print()
print("Wall seconds per successful start (inf: none succeeded):")
print(markdown(table.pivot(index="method", columns="problem", values="time_to_best")))
print()
print("Evaluations per start (objective + gradient + residual + Jacobian calls):")
print(markdown(table.pivot(index="method", columns="problem", values="evals")))

# %%
if not QUICK:
    for pname, problem, _ in problems():
        if pname in ZOO:
            t0 = time.perf_counter()
            idata = fit.sample(problem, num_samples=300, num_warmup=300, chains=2)
            s = fit.bayes.summary(idata)
            print(f"NUTS {pname}: {time.perf_counter() - t0:.1f} s, min ESS {s['ess_bulk'].min():.0f}, "
                  f"max R-hat {s['r_hat'].max():.3f}, divergences {s.attrs['divergences']}")

# %%
pivot = table.pivot(index="problem", columns="method", values="success").astype(float)
fig, ax = plt.subplots(figsize=(9, 3.5))
pivot.plot.bar(ax=ax, width=0.85)
ax.set_ylabel("fraction of starts at the best optimum")
ax.legend(fontsize=7, ncol=4)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Which method when
#
# - **Least squares with Gaussian (or log-normal) noise, few parameters:** multi-start LM.
#   Gauss-Newton steps converge in a handful of Jacobians; starts are cheap once compiled.
# - **Non-least-squares objectives (Laplace noise, L1, priors without residual form):**
#   L-BFGS-B (bounds) or BFGS; multi-start as for LM.
# - **Oscillating or chaotic dynamics with many local optima (FitzHugh-Nagumo, Lorenz):**
#   multiple shooting, or two-stage collocation to get a start, then LM.
# - **Rugged landscapes, no good bounds on scale, cheap simulations:** CMA-ES or DE, then a
#   local polish (both do one by default). They cost 10-100x more evaluations.
# - **PEtab problems (likelihoods with estimated noise scales):** `"trust-hybrid"`, the
#   default of `scimlkit fit petab` (Fisher information plus a secant correction; more
#   starts at the optimum than pyPESTO + Fides in less time on Boehm, Bruno and Fiedler, see
#   the PEtab page); `"trust-newton"` when exact Hessians are affordable (few dynamic
#   parameters) and the Fisher-based path stalls in a poor basin (Crauste). The cost is in
#   simulation: use `fit.profile` afterwards for identifiability.
# - **Uncertainty, not just a point:** `fit.sample(method="nuts")`, or `"ensemble"` when
#   gradients through the solver are unreliable.
