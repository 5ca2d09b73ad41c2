"""Declaring datasets: `DataDep`, the registry, and registry files (TOML and pooch-style).

A `DataDep` names a dataset and lists its files, each with its URLs (mirrors, tried in turn)
and an optional hash ``"alg:hex"``. Declarations live in a process-wide registry filled by
`register`, by TOML registry files (`load_registry`), by pooch registry files
(`load_pooch_registry`), and by third-party packages through the entry-point group
``scimlkit.datasets`` (see `catalogue`).

TOML registry files map one-to-one onto `DataDep`'s arguments; each top-level table is a dataset:

```toml
["UCI-Iris"]
urls = ["https://archive.ics.uci.edu/static/public/53/iris.zip"]
sha256 = "..."
message = "Fisher (1936). Licence: CC BY 4.0."
unpack = true

[MNIST]
message = "LeCun, Cortes, Burges. Please cite ..."
[MNIST.urls]                       # many files: file name -> URL or list of mirror URLs
"train-images-idx3-ubyte.gz" = ["https://a/...", "https://b/..."]
"train-labels-idx1-ubyte.gz" = "https://a/..."
[MNIST.hashes]
"train-images-idx3-ubyte.gz" = "sha256:..."
"train-labels-idx1-ubyte.gz" = "md5:..."
```
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import threading
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from .checksum import parse_hash
from .errors import RegistryError, UnknownDataset
from .unpack import archive_kind

ENTRY_POINT_GROUP = "scimlkit.datasets"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

PostFetch = Callable[[Path], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset folder, its URLs and its hash (or None).

    Example:
        >>> DataDep("Doc-Files", {"a.csv": ["https://a.example/a.csv", "https://b.example/a.csv"]}).files
        (RemoteFile(filename='a.csv', urls=('https://a.example/a.csv', 'https://b.example/a.csv'), hash=None),)
    """

    filename: str
    urls: tuple[str, ...]
    hash: str | None = None


def _filename_from_url(url: str) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    if not name:
        raise RegistryError(
            f"cannot tell a file name from URL {url!r}; declare urls as a mapping "
            "{'file-name': url} instead"
        )
    return name


def _check_relpath(name: str, dataset: str) -> str:
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or "\\" in name:
        raise RegistryError(f"dataset {dataset!r}: file name {name!r} must be a relative path inside the dataset")
    return str(PurePosixPath(*parts))


def _as_url_tuple(value: str | Sequence[str], dataset: str) -> tuple[str, ...]:
    urls = (value,) if isinstance(value, str) else tuple(value)
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise RegistryError(f"dataset {dataset!r}: URLs must be non-empty strings, got {value!r}")
    return urls


class DataDep:
    """A dataset declaration: name, files (URLs with mirrors, hashes), terms and unpacking.

    **Arguments:**

    - `name`: the dataset's name, also its folder name in the store (letters, digits, ``._+-``).
    - `urls`: one URL; a list of URLs that are mirrors of ONE file (tried in turn); or a mapping
      ``{file name: URL or list of mirror URLs}`` for a dataset of many files.
    - `sha256`: the SHA-256 hex digest of a single-file dataset.
    - `hashes`: ``"alg:hex"`` for a single-file dataset, or ``{file name: "alg:hex"}``; any
      hashlib algorithm. Without a hash the first fetch prints the line to pin it.
    - `message`: licence / citation text shown once; the user must accept it before download.
    - `unpack`: ``True`` to unpack every archive file after download (zip, tar, tar.gz/bz2/xz/zst,
      gz, bz2, xz, zst, 7z), or a collection of the file names to unpack.
    - `post_fetch`: called with the staging folder after download and unpacking, before the
      atomic install (a callable, or ``"module:function"``).
    - `headers`: extra HTTP headers; ``${VAR}`` in a value is read from the environment at
      fetch time (tokens: ``{"Authorization": "Bearer ${MY_TOKEN}"}``). Users add or override
      headers with ``SCIMLKIT_HEADERS_<NAME>`` (see `scimlkit.data`).
    - `description`: one line for `scimlkit data list`.
    - `licence`, `citation`: short licence name and the reference to cite (catalogue pages,
      `scimlkit data list/info`); the full terms belong in `message`.
    - `size`: total download size in bytes, if known (shown before fetching).
    - `keep_archives`: keep archive files next to their unpacked content.
    - `max_unpack_size`: refuse archives expanding past this many bytes (default from
      ``SCIMLKIT_MAX_UNPACK_SIZE``, else 64 GiB).

    Example:
        >>> dep = DataDep("Demo", "https://example.org/data/table.csv",
        ...               sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        >>> [f.filename for f in dep.files]
        ['table.csv']
    """

    def __init__(
        self,
        name: str,
        urls: str | Sequence[str] | Mapping[str, str | Sequence[str]],
        *,
        sha256: str | None = None,
        hashes: str | Mapping[str, str] | None = None,
        message: str = "",
        unpack: bool | Iterable[str] = False,
        post_fetch: PostFetch | str | None = None,
        headers: Mapping[str, str] | None = None,
        description: str = "",
        licence: str = "",
        citation: str = "",
        size: int | None = None,
        keep_archives: bool = False,
        max_unpack_size: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(
                f"invalid dataset name {name!r}: use letters, digits and '._+-' (no '/'), "
                "starting with a letter or digit"
            )
        self.name = name
        if isinstance(urls, Mapping):
            files = {_check_relpath(k, name): _as_url_tuple(v, name) for k, v in urls.items()}
        else:
            mirrors = _as_url_tuple(urls, name)
            files = {_check_relpath(_filename_from_url(mirrors[0]), name): mirrors}
        if not files:
            raise RegistryError(f"dataset {name!r} declares no files")
        if sha256 is not None and hashes is not None:
            raise RegistryError(f"dataset {name!r}: give either sha256= or hashes=, not both")
        per_file: dict[str, str] = {}
        if sha256 is not None or isinstance(hashes, str):
            if len(files) != 1:
                raise RegistryError(
                    f"dataset {name!r} has {len(files)} files: give hashes={{file name: 'alg:hex'}}"
                )
            text = hashes if isinstance(hashes, str) else f"sha256:{sha256}"
            per_file[next(iter(files))] = text
        elif hashes is not None:
            unknown = set(hashes) - set(files)
            if unknown:
                raise RegistryError(
                    f"dataset {name!r}: hashes given for undeclared files {sorted(unknown)}; "
                    f"declared files are {sorted(files)}"
                )
            per_file = dict(hashes)
        for fname, text in per_file.items():
            try:
                alg, digest = parse_hash(text)
            except RegistryError as exc:
                raise RegistryError(f"dataset {name!r}, file {fname!r}: {exc}") from None
            per_file[fname] = f"{alg}:{digest}"
        self.files: tuple[RemoteFile, ...] = tuple(
            RemoteFile(f, u, per_file.get(f)) for f, u in files.items()
        )
        if isinstance(unpack, bool):
            self.unpack: frozenset[str] = frozenset(files) if unpack else frozenset()
        else:
            self.unpack = frozenset(unpack)
            if self.unpack - set(files):
                raise RegistryError(
                    f"dataset {name!r}: unpack names undeclared files {sorted(self.unpack - set(files))}"
                )
            not_archives = sorted(f for f in self.unpack if archive_kind(f) is None)
            if not_archives:
                raise RegistryError(
                    f"dataset {name!r}: unpack names files that are not archives by their suffix: "
                    f"{not_archives} (known: .zip .tar .tar.gz .tgz .tar.bz2 .tar.xz .tar.zst .gz .bz2 .xz .zst .7z)"
                )
        self.message = message or ""
        self.post_fetch = post_fetch
        self.headers = dict(headers or {})
        self.description = description or ""
        self.licence = licence or ""
        self.citation = citation or ""
        self.size = size
        self.keep_archives = keep_archives
        self.max_unpack_size = max_unpack_size
        self.source = "python"  # or the registry file it came from

    def __repr__(self) -> str:
        return f"DataDep({self.name!r}, files={[f.filename for f in self.files]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataDep) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self.name, self.files, self.unpack, self.message, tuple(sorted(self.headers.items())))

    @property
    def pinned(self) -> bool:
        """Whether every file has a declared hash."""
        return all(f.hash for f in self.files)

    def post_fetch_callable(self) -> PostFetch | None:
        """The post-fetch hook, importing ``"module:function"`` strings on first use."""
        hook = self.post_fetch
        if hook is None or callable(hook):
            return hook
        module, _, attr = str(hook).partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise RegistryError(
                f"dataset {self.name!r}: post_fetch {hook!r} cannot be imported ({exc}); "
                "write it as 'package.module:function'"
            ) from exc

    def pin_line(self, digests: Mapping[str, str]) -> str:
        """The exact declaration line pinning `digests` ({file: "alg:hex"}), in the source's syntax."""
        if self.source != "python":  # a TOML registry: a line for the dataset's table
            body = ", ".join(f'"{k}" = "{v}"' for k, v in digests.items())
            return f"hashes = {{ {body} }}  # in [{_toml_key(self.name)}] of {self.source}"
        if len(digests) == 1:
            (value,) = digests.values()
            alg, digest = value.split(":", 1)
            return f'sha256="{digest}",' if alg == "sha256" else f'hashes="{value}",'
        inner = ", ".join(f'"{k}": "{v}"' for k, v in digests.items())
        return f"hashes={{{inner}}},"


def _toml_key(name: str) -> str:
    return name if re.match(r"^[A-Za-z0-9_-]+$", name) else f'"{name}"'


# --------------------------------------------------------------------------------------------
# The registry

_REGISTRY: dict[str, DataDep] = {}
_LOCK = threading.RLock()
_CATALOGUE_LOADED = False


def register(dep: DataDep, *, replace: bool = False) -> DataDep:
    """Add `dep` to the registry and return it.

    Registering an equal declaration again is a no-op (modules may be re-imported); a different
    declaration under a taken name raises `RegistryError` unless `replace=True`.

    Example:
        >>> d = register(DataDep("Doc-Example", "https://example.org/a.csv"), replace=True)
        >>> get("Doc-Example") is d
        True
    """
    if not isinstance(dep, DataDep):
        raise RegistryError(f"register() takes a DataDep, got {type(dep).__name__}")
    with _LOCK:
        old = _REGISTRY.get(dep.name)
        if old is not None and old != dep and not replace:
            raise RegistryError(
                f"a different dataset named {dep.name!r} is already registered (from {old.source}); "
                "pick another name or pass replace=True"
            )
        _REGISTRY[dep.name] = dep
    return dep


def unregister(name: str) -> None:
    """Remove a dataset from the registry (no error if absent).

    Example:
        >>> _ = register(DataDep("Doc-Gone", "https://example.org/a.csv"), replace=True)
        >>> unregister("Doc-Gone"); "Doc-Gone" in catalogue()
        False
    """
    with _LOCK:
        _REGISTRY.pop(name, None)


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, str | os.PathLike):
                load_registry(obj)
            elif callable(obj):
                obj()
        except Exception as exc:  # a broken plug-in must not break the others
            warnings.warn(
                f"scimlkit.data: entry point {ep.name!r} ({ep.value}) of group "
                f"{ENTRY_POINT_GROUP!r} failed: {exc}",
                stacklevel=2,
            )


def load_catalogue(*, reload: bool = False) -> None:
    """Import every source of declarations once: ``scimlkit.datasets`` (if installed), the
    entry points of group ``scimlkit.datasets``, and the TOML files listed in
    ``SCIMLKIT_REGISTRY`` (separated by ``os.pathsep``)."""
    global _CATALOGUE_LOADED
    with _LOCK:
        if _CATALOGUE_LOADED and not reload:
            return
        _CATALOGUE_LOADED = True
        try:
            importlib.import_module("scimlkit.datasets")
        except ImportError as exc:
            if not (getattr(exc, "name", "") or "").startswith("scimlkit.datasets"):
                warnings.warn(f"scimlkit.datasets could not be imported: {exc}", stacklevel=2)
        _load_entry_points()
        for path in filter(None, os.environ.get("SCIMLKIT_REGISTRY", "").split(os.pathsep)):
            load_registry(path)


def catalogue() -> dict[str, DataDep]:
    """Every registered dataset by name, after loading all declaration sources (`load_catalogue`).

    Example:
        >>> _ = register(DataDep("Listed-Example", "https://example.org/a.csv"), replace=True)
        >>> "Listed-Example" in catalogue()
        True
    """
    load_catalogue()
    with _LOCK:
        return dict(sorted(_REGISTRY.items(), key=lambda kv: kv[0].lower()))


def get(name: str) -> DataDep:
    """The registered dataset `name`; loads the catalogue if needed.

    Raises:
        UnknownDataset: nothing of that name is registered (the message suggests close names).

    Example:
        >>> _ = register(DataDep("Doc-Get", "https://example.org/a.csv"), replace=True)
        >>> get("Doc-Get").files[0].filename
        'a.csv'
    """
    with _LOCK:
        dep = _REGISTRY.get(name)
    if dep is not None:
        return dep
    known = catalogue()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownDataset(
        f"no dataset named {name!r} is registered.{hint} Declare it with "
        "scimlkit.data.register(DataDep(...)) or a registry file; `scimlkit data list` shows "
        "what is registered."
    )


# --------------------------------------------------------------------------------------------
# Registry files

_TOML_KEYS = {
    "urls", "sha256", "hashes", "message", "unpack", "post_fetch", "headers", "description",
    "licence", "citation", "size", "keep_archives", "max_unpack_size",
}


def parse_registry(text: str, *, source: str = "<string>") -> list[DataDep]:
    """Parse a TOML registry (each top-level table declares one dataset) without registering.

    Example:
        >>> [d.name for d in parse_registry('[Doc-Toml]\\nurls = "https://example.org/t.csv"\\n')]
        ['Doc-Toml']
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from exc
    deps = []
    for name, table in doc.items():
        if not isinstance(table, dict):
            raise RegistryError(f"{source}: top-level key {name!r} must be a table [{name}] declaring a dataset")
        unknown = set(table) - _TOML_KEYS
        if unknown:
            raise RegistryError(
                f"{source}: dataset {name!r} has unknown keys {sorted(unknown)}; allowed: {sorted(_TOML_KEYS)}"
            )
        if "urls" not in table:
            raise RegistryError(f"{source}: dataset {name!r} has no 'urls'")
        kwargs: dict[str, Any] = dict(table)
        try:
            dep = DataDep(name, kwargs.pop("urls"), **kwargs)
        except TypeError as exc:
            raise RegistryError(f"{source}: dataset {name!r}: {exc}") from exc
        except RegistryError as exc:
            raise RegistryError(f"{source}: {exc}") from None
        dep.source = source
        deps.append(dep)
    return deps


def load_registry(path: str | os.PathLike, *, register_all: bool = True, replace: bool = False) -> list[DataDep]:
    """Read a TOML registry file and register its datasets (see the module docstring for the format).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "reg.toml"
        >>> _ = p.write_text('[Tiny]\\nurls = "https://example.org/tiny.csv"\\n')
        >>> [d.name for d in load_registry(p)]
        ['Tiny']
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read registry file {p}: {exc}") from exc
    deps = parse_registry(text, source=str(p))
    if register_all:
        for dep in deps:
            register(dep, replace=replace)
    return deps


def load_pooch_registry(
    path: str | os.PathLike,
    name: str,
    *,
    base_url: str | None = None,
    register_dep: bool = True,
    **kwargs: Any,
) -> DataDep:
    """Declare one dataset from a pooch registry file (lines ``file hash [url]``, ``#`` comments).

    Files without a URL are fetched from ``base_url + file``. Other keyword arguments go to
    `DataDep` (``message=``, ``unpack=``, ...).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "registry.txt"
        >>> _ = p.write_text("a.csv md5:" + "0" * 32 + "\\n")
        >>> load_pooch_registry(p, "Pooch-Example", base_url="https://example.org/v1/").files[0].urls
        ('https://example.org/v1/a.csv',)
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RegistryError(f"cannot read pooch registry {p}: {exc}") from exc
    urls: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (2, 3):
            raise RegistryError(f"{p}:{lineno}: expected 'file hash [url]', got {line!r}")
        fname, digest = parts[0], parts[1]
        if len(parts) == 3:
            urls[fname] = parts[2]
        elif base_url:
            urls[fname] = base_url.rstrip("/") + "/" + fname
        else:
            raise RegistryError(f"{p}:{lineno}: {fname!r} has no URL; pass base_url=")
        hashes[fname] = digest
    dep = DataDep(name, urls, hashes=hashes, **kwargs)
    dep.source = str(p)
    if register_dep:
        register(dep)
    return dep


__all__ = [
    "ENTRY_POINT_GROUP",
    "DataDep",
    "RemoteFile",
    "catalogue",
    "get",
    "load_catalogue",
    "load_pooch_registry",
    "load_registry",
    "parse_registry",
    "register",
    "unregister",
]
