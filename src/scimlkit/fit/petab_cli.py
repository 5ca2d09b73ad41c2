"""`scimlkit fit petab PROBLEM.yaml [--starts 50] [--method trust-hybrid] [--out result.json]`.

Reads a PEtab problem, prints the log-likelihood at the nominal parameters, runs a
multi-start estimation, prints the summary, writes the result as JSON and two plots next
to it (`<out>.waterfall.png`, `<out>.fit.png`: data and the best fit per observable).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def configure(subparsers: Any) -> None:
    """Add `petab` to the `scimlkit fit` subcommands."""
    p = subparsers.add_parser(
        "petab", help="estimate the parameters of a PEtab problem (YAML + SBML + tables)"
    )
    p.add_argument("problem", help="the PEtab problem's YAML file")
    p.add_argument("--starts", type=int, default=50, help="number of starts (default 50)")
    p.add_argument(
        "--method",
        default="trust-hybrid",
        help=(
            "estimation method (trust-hybrid, trust-newton, trust-fisher, lm, lbfgs, bfgs, trust, "
            "cmaes, de; default trust-hybrid: Fisher information plus a secant correction in a "
            "trust region, see docs/fit/petab.md)"
        ),
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="threads",
                   help="threads (default: all cores, one compilation), serial, processes or a worker count")
    p.add_argument(
        "--out", default="result.json", help="where to write the result (JSON); plots go beside it"
    )
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of `scimlkit fit petab`."""
    from scimlkit import fit

    problem = fit.from_petab(args.problem)
    print(problem.describe())
    print(
        f"log-likelihood at nominal parameters: {float(problem.log_likelihood(problem.nominal)):.6f}"
    )
    engine = int(args.engine) if str(args.engine).isdigit() else args.engine
    result = fit.estimate(problem, args.method, starts=args.starts, seed=args.seed, engine=engine)
    print(result.summary())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out, result_to_dict(problem, result))
    print(f"wrote {out}")
    if not args.no_plots:
        for path, fig in (
            (out.with_suffix(".waterfall.png"), result.plot_waterfall()),
            (out.with_suffix(".fit.png"), plot_observables(problem, result.params)),
        ):
            fig.savefig(path, dpi=100)
            print(f"wrote {path}")
    return 0


def result_to_dict(problem: Any, result: Any) -> dict[str, Any]:
    """A JSON-ready record of an estimation on a PEtab problem (enough to reproduce it)."""

    def num(v: float) -> float | None:
        return float(v) if math.isfinite(float(v)) else None

    return {
        "problem": problem.name,
        "method": result.method,
        "settings": {
            k: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
            for k, v in result.settings.items()
        },
        "seed": result.seed,
        "objective": num(result.objective),
        "log_likelihood": num(-result.objective + float(problem.log_prior(result.x))),
        "parameters": {k: float(v) for k, v in result.params.items()},
        "x": [float(v) for v in result.x],
        "scales": list(problem.scales),
        "starts": [
            {
                "index": s.index,
                "objective": num(s.objective),
                "status": s.status.name,
                "time_s": s.time_s,
                "iterations": s.iterations,
                "x": [float(v) for v in s.x],
            }
            for s in result.starts
        ],
        "converged_starts": result.converged_starts(),
        "compile_s": result.compile_s,
        "total_s": result.total_s,
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_observables(problem: Any, params: dict[str, float]) -> Any:
    """Data and simulation per observable of a PEtab problem (one panel each, by condition)."""
    import matplotlib.pyplot as plt
    import numpy as np

    sims = problem.simulate({k: v for k, v in params.items() if k in problem.parameter_names})
    n = len(sims)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, s in zip(axes.ravel(), sims, strict=False):
        conds = np.array(s["condition"])
        for c in dict.fromkeys(s["condition"]):
            m = conds == c
            order = np.argsort(s["t"][m])
            t = np.where(np.isfinite(s["t"][m]), s["t"][m], np.nan)[order]
            (line,) = ax.plot(t, s["prediction"][m][order], lw=1.2, label=str(c))
            ax.plot(t, s["y"][m][order], "o", ms=3, color=line.get_color())
        ax.set_title(s["observable"], fontsize=9)
        ax.set_xlabel("time")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    if n and len(set(sims[0]["condition"])) <= 8:
        axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
