"""`scimlkit fit ...` subcommands.

- `scimlkit fit zoo [NAME] [--method lm] [--starts 20] [--seed 0] [--engine serial]
  [--profile] [--plot FILE]`: fit a zoo problem and print the summary (no NAME: list them).

Other modules add subcommands here: `configure` calls `configure(sub)` of each module in
`_EXTENSIONS` that imports (for example `scimlkit.fit.petab_cli` adds `scimlkit fit petab`).
"""

from __future__ import annotations

import argparse
import importlib

#: modules with `configure(subparsers)` adding more `scimlkit fit` subcommands
_EXTENSIONS = ("scimlkit.fit.petab_cli",)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `fit` subcommands to `parser`."""
    sub = parser.add_subparsers(dest="fit_command", metavar="{zoo,...}")
    z = sub.add_parser("zoo", help="fit a problem of the built-in zoo and print the summary")
    z.add_argument("name", nargs="?", help="zoo problem (omit to list them)")
    z.add_argument("--method", default="lm", help="lm, dogbox, lbfgs, bfgs, trust, cmaes, de, two-stage")
    z.add_argument("--starts", type=int, default=20, help="number of starts (default 20)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--engine", default="serial", help="serial, processes or a worker count")
    z.add_argument("--shooting", type=int, default=0, metavar="SEGMENTS",
                   help="fit with multiple shooting over this many segments")
    z.add_argument("--profile", action="store_true", help="also compute profile-likelihood intervals")
    z.add_argument("--plot", default=None, metavar="FILE", help="write the fit plot (PNG)")
    z.set_defaults(func=_zoo)
    for name in _EXTENSIONS:  # --- extension point: other fit subcommands register here ---
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.configure(sub)


def _zoo(args: argparse.Namespace) -> int:
    from scimlkit import fit

    if not args.name:
        for n in fit.zoo.names():
            print(f"{n:<20} {fit.zoo.describe(n)}")
        return 0
    entry = fit.zoo.get(args.name)
    engine = int(args.engine) if args.engine.isdigit() else args.engine
    objective = fit.MultipleShooting(segments=args.shooting) if args.shooting else None
    result = fit.estimate(entry.problem, args.method, starts=args.starts, seed=args.seed,
                          engine=engine, objective=objective)
    print(result.summary())
    worst = max(abs(result.params[k] / v - 1.0) for k, v in entry.true.items())
    print(f"largest relative error against the reference values: {worst:.3%} "
          f"(tolerance {entry.rtol:.0%})")
    if args.profile:
        print(fit.profile(result).summary())
    if args.plot:
        result.plot().savefig(args.plot, dpi=110)
        print(f"plot written to {args.plot}")
    return 0
