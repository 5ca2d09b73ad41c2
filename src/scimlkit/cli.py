"""The `scimlkit` command: `scimlkit data | models | fit | demo`.

Each capability owns its subcommands in `scimlkit/<capability>/cli.py`, which exposes
`configure(parser)`; this module only wires them together and imports each lazily, so a
capability that is not built (or whose extra is not installed) says so plainly instead of
breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ScimlkitError

_CAPABILITIES = {
    "data": ("scimlkit.data.cli", "declare, fetch, verify and cache datasets"),
    "models": ("scimlkit.models.cli", "inspect, run and convert model files"),
    "fit": ("scimlkit.fit.cli", "fit ODE models to data"),
}


def _unavailable(name: str, reason: str):
    def handler(args: argparse.Namespace) -> int:
        print(f"scimlkit {name}: not available: {reason}", file=sys.stderr)
        return 2

    return handler


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Only the capability named on the command line (all of them when `argv` is None) is
    imported, so `scimlkit data ...` never pays for importing JAX.
    """
    selected = next((a for a in (argv or []) if not a.startswith("-")), None) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="scimlkit", description="Scientific machine learning toolkit."
    )
    parser.add_argument("--version", action="version", version=f"scimlkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{data,models,fit,demo}")

    for name, (module_name, help_text) in _CAPABILITIES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv is not None and selected != name:
            continue  # not invoked: leave its subcommands unconfigured
        try:
            module = importlib.import_module(module_name)
            configure = module.configure
        except ImportError as exc:  # the capability or its optional extra is missing
            own = isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith(module_name)
            reason = (
                "this capability is not built yet"
                if own
                else f"{exc}. Install with: pip install 'scimlkit[{name}]'"
            )
            p.set_defaults(func=_unavailable(name, reason))
            continue
        except AttributeError:
            p.set_defaults(func=_unavailable(name, "this capability is not built yet"))
            continue
        configure(p)
        if p.get_default("func") is None:
            p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])

    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded data (no network)")
    demo.add_argument("parts", nargs="*", help="parts to run: data, models, fit (default: all)")
    demo.add_argument("--out", default=None, help="folder for the demo's outputs (default: a temp dir)")
    demo.set_defaults(func=_run_demo)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import PARTS, run_demo

    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        print(f"error: unknown demo part(s) {unknown}; choose from {list(PARTS)}", file=sys.stderr)
        return 2
    return run_demo(parts=args.parts or None, out=args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scimlkit` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ScimlkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
