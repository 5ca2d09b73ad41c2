"""Resolution: `datadep` finds a dataset in the stores or fetches it; `fetch` does the install.

A fetch holds the dataset's cross-process lock, so N processes asking at once make one
download; the others wait and then find it installed. Files are fetched into resumable ``.part``
files, verified, moved into a staging folder, unpacked there, passed to the post_fetch hook,
stamped, and installed by one atomic rename. If anything fails, the staging folder is removed
(partial downloads stay, to be resumed next time).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path, PurePosixPath

from . import store
from .errors import DataError, NotInStore
from .spec import DataDep, get
from .terms import ensure_accepted
from .transfer import Options, env_headers, expand_headers, fetch_files
from .unpack import archive_kind, unpack

ENV_OFFLINE = "SCIMLKIT_OFFLINE"


def offline() -> bool:
    """Whether ``SCIMLKIT_OFFLINE`` forbids downloads."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "y")


def _dep(name: str | DataDep) -> DataDep:
    return name if isinstance(name, DataDep) else get(name)


def locate(name: str) -> Path | None:
    """The installed folder of `name` in the load path (read-only stores first), or None.

    Unlike `datadep` it never downloads.

    Example:
        >>> from scimlkit.data import locate
        >>> locate("No-Such-Dataset") is None
        True
    """
    return store.find(name)


def fetch(name: str | DataDep, *, force: bool = False, accept_terms: bool | None = None,
          progress: bool | None = None) -> Path:
    """Make sure dataset `name` is installed and return its folder.

    **Arguments:**

    - `name`: a registered name, or a `DataDep` (it need not be registered).
    - `force`: fetch again into the primary store even if installed.
    - `accept_terms`: accept the dataset's terms for this call (None: remembered acceptance,
      ``SCIMLKIT_ACCEPT_TERMS``, or a prompt on a terminal).
    - `progress`: progress bars (None: only on a terminal and unless ``SCIMLKIT_PROGRESS=0``).

    Raises:
        NotInStore: offline (``SCIMLKIT_OFFLINE=1``) and not installed.
        TermsNotAccepted, DownloadError, ChecksumMismatch, UnsafeArchive: see their messages.

    Example:
        >>> from scimlkit.data import DataDep, fetch
        >>> folder = fetch(DataDep("Example", "https://example.org/table.csv"))  # doctest: +SKIP
    """
    dep = _dep(name)
    declared = {f.filename: f.hash for f in dep.files}

    def current(folder: Path) -> bool:  # a copy installed under an older declaration is skipped
        return store.matches_declaration(folder, declared)

    if not force:
        folder = store.find(dep.name, current)
        if folder is not None:
            store.quick_check(folder)
            return folder
    if offline():
        raise NotInStore(
            f"dataset {dep.name!r} is not in any store ({', '.join(map(str, store.load_path()))}) and "
            f"{ENV_OFFLINE}=1 forbids downloading it. Unset {ENV_OFFLINE} to fetch it, or copy it into "
            "a store listed in SCIMLKIT_DATA_PATH."
        )
    ensure_accepted(dep, accept_terms)
    with store.locked(dep.name):
        if not force:
            folder = store.find(dep.name, current)
            if folder is not None:  # another process installed it while we waited
                return folder
        folder = _fetch_locked(dep, Options.from_env(progress))
    if not dep.pinned:
        _print_pin(dep, folder)
    return folder


def _fetch_locked(dep: DataDep, opts: Options) -> Path:
    store.clean_staging(dep.name)
    staging = store.new_staging(dep.name)
    try:
        parts = store.partial_dir(dep.name)
        headers = expand_headers({**dep.headers, **env_headers(dep.name)}, dep.name)
        results = fetch_files(dep.files, parts, headers=headers, opts=opts)
        known: dict[str, str] = {}
        sources: dict[str, dict] = {}
        for remote in dep.files:
            got = results[remote.filename]
            target = staging / remote.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got.path, target)  # created with the umask's permissions
            known[remote.filename] = got.digest
            sources[remote.filename] = {"url": got.url, "hash": got.digest, "size": got.size}
        for remote in dep.files:
            if remote.filename not in dep.unpack or archive_kind(remote.filename) is None:
                continue
            archive = staging / remote.filename
            parent = PurePosixPath(remote.filename).parent
            extracted = unpack(archive, archive.parent, max_size=dep.max_unpack_size)
            for rel, digest in extracted.items():
                known[str(parent / rel) if str(parent) != "." else rel] = digest
            if not dep.keep_archives:
                archive.unlink()
                known.pop(remote.filename, None)
        hook = dep.post_fetch_callable()
        if hook is not None:
            try:
                hook(staging)
            except DataError:
                raise
            except Exception as exc:
                raise DataError(
                    f"the post_fetch hook of {dep.name!r} failed: {type(exc).__name__}: {exc}. "
                    "Nothing was installed."
                ) from exc
        stamp = store.make_stamp(dep.name, staging, known, sources)
        folder = store.install(dep.name, staging, stamp)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(parts, ignore_errors=True)
    return folder


def _print_pin(dep: DataDep, folder: Path) -> None:
    stamp = store.read_json(store.stamp_path(folder.parent, folder.name)) or {}
    digests = {f: s["hash"] for f, s in stamp.get("downloads", {}).items()}
    if digests:
        print(
            f"scimlkit.data: dataset {dep.name!r} has no declared hash. To pin what was just "
            f"downloaded, add to its declaration:\n    {dep.pin_line(digests)}",
            file=sys.stderr,
        )


def datadep(spec: str, *, accept_terms: bool | None = None) -> Path:
    """The local path of ``"Name"`` (the dataset folder) or ``"Name/sub/file"``, fetched on first use.

    Example:
        >>> from scimlkit.data import datadep
        >>> csv = datadep("UCI-Iris/iris.data")  # doctest: +SKIP
    """
    name, _, sub = spec.strip("/").partition("/")
    folder = fetch(name, accept_terms=accept_terms)
    if not sub:
        return folder
    parts = PurePosixPath(sub).parts
    if ".." in parts:
        raise DataError(f"{spec!r}: a path inside a dataset may not contain '..'")
    path = folder.joinpath(*parts)
    if not path.exists():
        present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        raise NotInStore(f"{sub!r} is not in dataset {name!r} at {folder}; it holds: {shown or 'nothing'}")
    return path


def verify(name: str) -> store.VerifyReport:
    """Re-hash every file of installed dataset `name` against its stamp (slow, thorough).

    Example:
        >>> from scimlkit.data import verify
        >>> report = verify("UCI-Iris")  # doctest: +SKIP
        >>> report.ok, report.checked, report.problems  # doctest: +SKIP
        (True, 1, [])
    """
    folder = store.find(name)
    if folder is None:
        raise NotInStore(f"dataset {name!r} is not installed in any store; nothing to verify")
    return store.verify(folder)


def purge(name: str) -> bool:
    """Delete dataset `name` (and its partial downloads) from the primary store.

    Returns whether anything was there. Read-only stores are never touched.

    Example:
        >>> from scimlkit.data import purge
        >>> purge("UCI-Iris")  # doctest: +SKIP
        True
    """
    with store.locked(name):
        return store.remove(name)
