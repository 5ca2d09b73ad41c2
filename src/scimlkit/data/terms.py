"""Terms of use: a dataset's message (licence, citation) must be accepted once before download.

Acceptance is remembered per dataset and message (a changed message asks again) in the
primary store. ``SCIMLKIT_ACCEPT_TERMS=1`` accepts everything (the message is still printed);
on a terminal the user is asked; otherwise `TermsNotAccepted` explains what to set. It never
waits for input that cannot come.
"""

from __future__ import annotations

import hashlib
import os
import sys
import textwrap

from .errors import TermsNotAccepted
from .spec import DataDep
from .store import meta_dir, primary_store

ENV_ACCEPT = "SCIMLKIT_ACCEPT_TERMS"


def _record(dep: DataDep):
    return meta_dir(primary_store(), "terms") / dep.name


def _digest(dep: DataDep) -> str:
    return hashlib.sha256(dep.message.encode()).hexdigest()


def accepted(dep: DataDep) -> bool:
    """Whether the terms of `dep` were accepted before (or it has none)."""
    if not dep.message.strip():
        return True
    try:
        return _record(dep).read_text().strip() == _digest(dep)
    except OSError:
        return False


def remember(dep: DataDep) -> None:
    """Record that the terms of `dep` were accepted."""
    _record(dep).write_text(_digest(dep) + "\n")


def _banner(dep: DataDep) -> str:
    body = "\n".join(textwrap.fill(p, 88) if len(p) > 88 else p for p in dep.message.strip().splitlines())
    return f"\nDataset {dep.name!r}:\n{textwrap.indent(body, '  ')}\n"


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def ensure_accepted(dep: DataDep, accept: bool | None = None) -> None:
    """Make sure the terms of `dep` are accepted: remembered, `accept`, the variable, or a prompt.

    Raises:
        TermsNotAccepted: not accepted, and no way to ask (the message names the variable).
    """
    if accepted(dep):
        return
    env = os.environ.get(ENV_ACCEPT, "").strip().lower() in ("1", "true", "yes", "y")
    if accept or env:
        how = f" by {ENV_ACCEPT}=1" if env and not accept else ""
        print(_banner(dep) + f"(terms accepted{how})", file=sys.stderr)
        remember(dep)
        return
    if accept is None and _interactive():
        print(_banner(dep), file=sys.stderr)
        # the question goes to stderr, so `path=$(scimlkit data fetch X)` captures only the path
        print(f"Do you accept the terms of {dep.name!r} and want to download it? [y/N] ",
              end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if answer.strip().lower() in ("y", "yes"):
            remember(dep)
            return
        raise TermsNotAccepted(f"the terms of {dep.name!r} were declined; nothing was downloaded")
    raise TermsNotAccepted(
        f"dataset {dep.name!r} comes with terms that must be accepted before it is downloaded:"
        f"{_banner(dep)}"
        f"This is not an interactive session, so nobody can be asked. To accept, set "
        f"{ENV_ACCEPT}=1 in the environment (or pass accept_terms=True, or run "
        f"`scimlkit data fetch {dep.name}` once in a terminal)."
    )
