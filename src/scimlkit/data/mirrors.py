"""URL rewriting for institutional mirrors, caches and test servers.

Rules map a URL prefix to a replacement. For every declared URL that starts with a rule's
prefix, the rewritten URL is tried first; the declared URLs stay as fallbacks unless
``SCIMLKIT_MIRROR_ONLY=1``. Rules come from two places, environment first:

- ``SCIMLKIT_URL_REWRITE="PREFIX=REPLACEMENT;PREFIX2=REPLACEMENT2"`` (rules separated by ``;``
  or newlines; each splits at the ``=`` that is followed by the replacement's ``scheme://``);
- `add_mirror` in the running process.

Example:
    >>> clear_mirrors()
    >>> add_mirror("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://127.0.0.1:8000/mnist/")
    >>> candidate_urls(["https://ossci-datasets.s3.amazonaws.com/mnist/a.gz"])
    ['http://127.0.0.1:8000/mnist/a.gz', 'https://ossci-datasets.s3.amazonaws.com/mnist/a.gz']
    >>> clear_mirrors()
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .errors import RegistryError

ENV_REWRITE = "SCIMLKIT_URL_REWRITE"
ENV_MIRROR_ONLY = "SCIMLKIT_MIRROR_ONLY"
_SPLIT = re.compile(r"=(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_RULES: list[tuple[str, str]] = []


def add_mirror(prefix: str, replacement: str) -> None:
    """Try `replacement` + rest before any URL starting with `prefix` (for this process).

    Example:
        >>> add_mirror("https://example.org/data/", "file:///srv/mirror/data/")
        >>> clear_mirrors()
    """
    if not prefix or not replacement:
        raise RegistryError("add_mirror needs a non-empty prefix and replacement")
    _RULES.append((prefix, replacement))


def clear_mirrors() -> None:
    """Forget the rules added with `add_mirror` (environment rules stay).

    Example:
        >>> add_mirror("https://example.org/", "http://127.0.0.1:8000/")
        >>> clear_mirrors(); _RULES
        []
    """
    _RULES.clear()


def env_rules() -> list[tuple[str, str]]:
    """The rules of ``SCIMLKIT_URL_REWRITE``."""
    rules = []
    for item in re.split(r"[;\n]", os.environ.get(ENV_REWRITE, "")):
        item = item.strip()
        if not item:
            continue
        parts = _SPLIT.split(item, maxsplit=1)
        if len(parts) != 2 or not parts[0]:
            raise RegistryError(
                f"{ENV_REWRITE}: cannot read rule {item!r}; write PREFIX=REPLACEMENT, e.g. "
                "https://example.org/data/=http://127.0.0.1:8000/data/"
            )
        rules.append((parts[0], parts[1]))
    return rules


def rules() -> list[tuple[str, str]]:
    """All rules in the order they apply: environment, then `add_mirror`."""
    return [*env_rules(), *_RULES]


def candidate_urls(urls: Iterable[str]) -> list[str]:
    """The URLs to try for one file: every rewritten URL first, then the declared ones."""
    declared = list(urls)
    active = rules()
    rewritten = [rep + url[len(pre):] for url in declared for pre, rep in active if url.startswith(pre)]
    if os.environ.get(ENV_MIRROR_ONLY, "") not in ("", "0") and rewritten:
        declared = [u for u in declared if not any(u.startswith(pre) for pre, _ in active)]
    return list(dict.fromkeys([*rewritten, *declared]))
