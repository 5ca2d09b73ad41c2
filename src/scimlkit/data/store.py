"""Where datasets live: the primary writable store, the read-only load path, locks and installs.

Layout of a store root (the primary one is ``$SCIMLKIT_DATA``, else
``platformdirs.user_cache_dir("scimlkit")/data``)::

    <root>/<Name>/...                     installed datasets (only ever complete)
    <root>/.scimlkit/locks/<Name>.lock    per-dataset cross-process lock
    <root>/.scimlkit/partial/<Name>/      resumable downloads (<file>.part + <file>.part.json)
    <root>/.scimlkit/staging/<Name>.*/    unpacking in progress (renamed into place when done)
    <root>/.scimlkit/stamps/<Name>.json   verification stamp: size, mtime, hash of every file
    <root>/.scimlkit/terms/<Name>         terms accepted (hash of the message)

``SCIMLKIT_DATA_PATH`` lists read-only stores (``os.pathsep``-separated) searched before the
primary store, like DataDeps' load path.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .checksum import file_hash, parse_hash
from .errors import ChecksumMismatch, StoreError

ENV_DATA = "SCIMLKIT_DATA"
ENV_DATA_PATH = "SCIMLKIT_DATA_PATH"
META = ".scimlkit"
STAMP_VERSION = 1


def primary_store() -> Path:
    """The writable store: ``$SCIMLKIT_DATA``, else a ``data`` folder in the user cache.

    Example:
        >>> import os
        >>> os.environ["SCIMLKIT_DATA"] = "/srv/datasets"; str(primary_store())
        '/srv/datasets'
        >>> del os.environ["SCIMLKIT_DATA"]
    """
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("scimlkit")) / "data"


def readonly_stores() -> list[Path]:
    """The read-only stores of ``SCIMLKIT_DATA_PATH``, in search order."""
    raw = os.environ.get(ENV_DATA_PATH, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def load_path() -> list[Path]:
    """Every store searched, in order: the read-only ones, then the primary store.

    Example:
        >>> import os
        >>> os.environ.update(SCIMLKIT_DATA="/home/me/data", SCIMLKIT_DATA_PATH="/lab/shared")
        >>> [str(p) for p in load_path()]
        ['/lab/shared', '/home/me/data']
        >>> del os.environ["SCIMLKIT_DATA"], os.environ["SCIMLKIT_DATA_PATH"]
    """
    return [*readonly_stores(), primary_store()]


def find(name: str, accept: Callable[[Path], bool] | None = None) -> Path | None:
    """The installed folder of dataset `name` in the first store holding it (and, if given,
    passing `accept`), or None."""
    for root in load_path():
        candidate = root / name
        if candidate.is_dir() and (accept is None or accept(candidate)):
            return candidate
    return None


def meta_dir(root: Path, kind: str) -> Path:
    path = root / META / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create {path}: {exc}. Point SCIMLKIT_DATA at a writable folder."
        ) from exc
    return path


def partial_dir(name: str, root: Path | None = None) -> Path:
    """The folder of resumable `.part` files of dataset `name` (created if needed)."""
    path = meta_dir(root or primary_store(), "partial") / name
    path.mkdir(exist_ok=True)
    return path


def stamp_path(root: Path, name: str) -> Path:
    return root / META / "stamps" / f"{name}.json"


@contextlib.contextmanager
def locked(name: str, *, notify: bool = True) -> Iterator[None]:
    """Hold the per-dataset cross-process lock of the primary store (waits for other holders).

    The lock is an OS file lock: it is released when its process dies, even by SIGKILL.
    """
    lock = FileLock(str(meta_dir(primary_store(), "locks") / f"{name}.lock"))
    try:
        lock.acquire(timeout=1.0)
    except Timeout:
        if notify:
            print(f"scimlkit.data: waiting for another process fetching {name!r} ...", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def write_json_atomic(path: Path, data: Mapping) -> None:
    """Write JSON to `path` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # an unreadable stamp is treated as absent


# --------------------------------------------------------------------------------------------
# Staging and installation


def clean_staging(name: str) -> None:
    """Remove leftover staging folders of `name` (call with the dataset's lock held)."""
    staging = meta_dir(primary_store(), "staging")
    for leftover in staging.glob(f"{name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)


def new_staging(name: str) -> Path:
    """A fresh, empty staging folder on the primary store's file system (umask permissions)."""
    path = meta_dir(primary_store(), "staging") / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
    path.mkdir()
    return path


def install(name: str, staging: Path, stamp: Mapping) -> Path:
    """Install a complete `staging` folder as dataset `name` by atomic rename, with its stamp.

    Any previous installation is moved aside first and deleted afterwards, so a reader sees the
    old dataset, the new one, or none, never a mixture.
    """
    root = primary_store()
    target = root / name
    write_json_atomic(stamp_path(root, name), stamp)
    old = None
    if target.exists():
        old = meta_dir(root, "staging") / f"{name}.old.{secrets.token_hex(4)}"
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def remove(name: str) -> bool:
    """Delete dataset `name` from the primary store (data, stamp, partial downloads)."""
    root = primary_store()
    target = root / name
    found = target.exists() or (root / META / "partial" / name).exists()
    if target.exists():
        trash = meta_dir(root, "staging") / f"{name}.purge.{secrets.token_hex(4)}"
        os.rename(target, trash)
        shutil.rmtree(trash, ignore_errors=True)
    stamp_path(root, name).unlink(missing_ok=True)
    shutil.rmtree(root / META / "partial" / name, ignore_errors=True)
    clean_staging(name)
    return found


# --------------------------------------------------------------------------------------------
# Verification stamps


def file_record(path: Path, digest: str) -> list:
    """A stamp entry: ``[size, mtime_ns, "alg:hex"]``."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, digest]


def make_stamp(name: str, folder: Path, known: Mapping[str, str], sources: Mapping[str, dict]) -> dict:
    """Build the stamp of a staged dataset: every file's size, mtime and hash.

    `known` maps relative paths to ``"alg:hex"`` already computed (while downloading or
    unpacking); other files (written by a post_fetch hook) are hashed here.
    """
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        digest = known.get(rel) or f"sha256:{file_hash(path)}"
        files[rel] = file_record(path, digest)
    return {
        "version": STAMP_VERSION,
        "name": name,
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "downloads": dict(sources),
        "files": files,
    }


@dataclass
class VerifyReport:
    """The outcome of verifying one installed dataset."""

    name: str
    folder: Path
    ok: bool
    checked: int
    problems: list[str]
    stamped: bool

    def as_dict(self) -> dict:
        return {
            "name": self.name, "folder": str(self.folder), "ok": self.ok,
            "checked": self.checked, "problems": self.problems, "stamped": self.stamped,
        }


def matches_declaration(folder: Path, declared: Mapping[str, str | None]) -> bool:
    """False if the stamp shows a download whose hash differs from the declared one (same
    algorithm): the declaration was updated since this copy was installed."""
    stamp = read_json(stamp_path(folder.parent, folder.name))
    if not stamp:
        return True
    downloads = stamp.get("downloads", {})
    for filename, expected in declared.items():
        recorded = downloads.get(filename, {}).get("hash")
        if expected and recorded and recorded.split(":")[0] == expected.split(":")[0] and recorded != expected:
            return False
    return True


def quick_check(folder: Path) -> None:
    """Cheap check on a cache hit: compare each file's size and mtime with the stamp.

    Only files whose size or mtime changed are re-hashed; a real change raises
    `ChecksumMismatch`. No stamp (a dataset copied in by hand) means nothing to check.
    """
    stamp = read_json(stamp_path(folder.parent, folder.name))
    if not stamp:
        return
    changed = []
    for rel, (size, mtime_ns, digest) in stamp.get("files", {}).items():
        try:
            st = os.stat(folder / rel)
        except OSError:
            changed.append(f"{rel} is missing")
            continue
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue
        alg, hexd = parse_hash(digest)
        if st.st_size != size or file_hash(folder / rel, alg) != hexd:
            changed.append(f"{rel} was modified")
    if changed:
        raise ChecksumMismatch(
            f"dataset {folder.name!r} in {folder.parent} no longer matches what was installed: "
            f"{'; '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}. Re-fetch it with "
            f"`scimlkit data fetch --force {folder.name}` (or `scimlkit data purge {folder.name}`)."
        )


def verify(folder: Path) -> VerifyReport:
    """Re-hash every file of an installed dataset against its stamp (the explicit, slow check)."""
    stamp = read_json(stamp_path(folder.parent, folder.name))
    if not stamp:
        return VerifyReport(folder.name, folder, True, 0, [], False)
    problems = []
    files = stamp.get("files", {})
    for rel, (size, _mtime, digest) in files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        if path.stat().st_size != size:
            problems.append(f"{rel}: size {path.stat().st_size} != {size}")
            continue
        alg, hexd = parse_hash(digest)
        actual = file_hash(path, alg)
        if actual != hexd:
            problems.append(f"{rel}: {alg} {actual} != {hexd}")
    return VerifyReport(folder.name, folder, not problems, len(files), problems, True)


def folder_size(path: Path) -> tuple[int, int]:
    """Total bytes and number of files under `path` (symlinks not followed)."""
    total = count = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
                count += 1
    return total, count


def installed(root: Path) -> list[str]:
    """Names of the datasets installed in store `root`."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != META)
