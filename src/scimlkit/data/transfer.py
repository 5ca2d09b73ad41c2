"""Moving bytes: http(s) through httpx, ``file://``, other protocols through fsspec.

Every transfer streams into a ``.part`` file while hashing in the same pass (a worker thread
hashes and writes while the next chunk is read from the network). HTTP transfers resume with
``Range`` + ``If-Range`` (ETag or Last-Modified), also across process restarts: the ``.part``
file keeps a ``.part.json`` with the URL and validators; a part that cannot be resumed is
discarded. Transient failures (connection errors, timeouts, a body cut short, 408/425/429/5xx)
are retried with exponential backoff and jitter, honouring ``Retry-After``; then the next URL
(mirror) is tried.

Settings come from the environment: ``SCIMLKIT_RETRIES`` (5), ``SCIMLKIT_BACKOFF`` (base
seconds, 0.5), ``SCIMLKIT_TIMEOUT`` (read timeout, 60 s), ``SCIMLKIT_CONNECT_TIMEOUT`` (15 s),
``SCIMLKIT_MAX_PARALLEL`` (4 files at once), ``SCIMLKIT_PROGRESS=0`` (no progress bars).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from . import mirrors
from .checksum import hexdigest, new_hasher, parse_hash
from .errors import ChecksumMismatch, DownloadError
from .sink import HashingWriter
from .spec import RemoteFile

MiB = 1 << 20
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise DownloadError(f"{name}={raw!r} is not a number") from None


@dataclass
class Options:
    """Transfer settings; `Options.from_env()` reads the ``SCIMLKIT_*`` variables."""

    retries: int = 5
    backoff: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    max_parallel: int = 4
    chunk: int = 2 * MiB
    progress: bool = False

    @classmethod
    def from_env(cls, progress: bool | None = None) -> Options:
        if progress is None:
            progress = os.environ.get("SCIMLKIT_PROGRESS", "1") != "0" and sys.stderr.isatty()
        return cls(
            retries=int(_env_number("SCIMLKIT_RETRIES", 5)),
            backoff=_env_number("SCIMLKIT_BACKOFF", 0.5),
            read_timeout=_env_number("SCIMLKIT_TIMEOUT", 60.0),
            connect_timeout=_env_number("SCIMLKIT_CONNECT_TIMEOUT", 15.0),
            max_parallel=max(1, int(_env_number("SCIMLKIT_MAX_PARALLEL", 4))),
            progress=progress,
        )


@dataclass
class Fetched:
    """A file fetched and verified: where it lies, its hash, size and the URL that served it."""

    filename: str
    path: Path
    digest: str  # "alg:hex"
    size: int
    url: str
    attempts: list[str] = field(default_factory=list)


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Progress


class _Progress:
    """Rich progress bars on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            # on stderr, the stream whose terminal was checked: stdout may be captured
            # (`path=$(scimlkit data fetch X)`) and must hold only what the command prints
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
                console=Console(stderr=True),
            )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def task(self, name: str) -> Callable[[int, int | None, int | None], None]:
        """A callback ``(advance, total, completed)`` for one file."""
        if self._bar is None:
            return lambda advance, total=None, completed=None: None
        task = self._bar.add_task(name, total=None)
        bar = self._bar

        def update(advance: int, total: int | None = None, completed: int | None = None) -> None:
            if total is not None or completed is not None:
                bar.update(task, total=total, completed=completed)
            if advance:
                bar.advance(task, advance)

        return update


# --------------------------------------------------------------------------------------------
# Protocol handlers


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _read_state(meta: Path) -> dict:
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    part.with_name(part.name + ".json").unlink(missing_ok=True)


def _hash_prefix(path: Path, hasher) -> int:
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            hasher.update(view[:n])
            size += n
    return size


def _looks_html(content_type: str, filename: str) -> bool:
    return "text/html" in content_type.lower() and not filename.lower().endswith((".html", ".htm"))


def _http(url: str, part: Path, alg: str, headers: Mapping[str, str], opts: Options,
          client: httpx.Client, progress, filename: str) -> tuple[object, int, bool]:
    """Download `url` into `part` with resume and retries.

    Returns (hasher, size, spliced): `spliced` tells whether the file was completed from bytes
    already on disk (a resumed transfer), rather than written by one response.
    """
    meta = part.with_name(part.name + ".json")
    failures = 0
    spliced = False
    while True:
        state = _read_state(meta)
        validator = state.get("etag") or state.get("last_modified")
        if part.exists() and not (state.get("url") == url and validator):
            _discard(part)  # a part we cannot validate is useless
        hasher = new_hasher(alg)
        offset = _hash_prefix(part, hasher) if part.exists() else 0
        req = {"Accept-Encoding": "identity", **headers}
        if offset:
            req["Range"] = f"bytes={offset}-"
            req["If-Range"] = validator
        try:
            with client.stream("GET", url, headers=req) as r:
                if r.status_code == 416 and offset:
                    total = (r.headers.get("Content-Range", "").rpartition("/")[2]).strip()
                    if total.isdigit() and int(total) == offset:
                        progress(0, offset, offset)
                        return hasher, offset, True  # the part was already complete
                    _discard(part)
                    raise _Transient("the server refused to resume (416); restarting from zero")
                if r.status_code in RETRY_STATUS:
                    raise _Transient(f"HTTP {r.status_code} {r.reason_phrase}",
                                     _retry_after(r.headers.get("Retry-After")))
                if r.status_code >= 400:
                    raise _Permanent(f"HTTP {r.status_code} {r.reason_phrase}")
                if _looks_html(r.headers.get("Content-Type", ""), filename):
                    raise _Permanent(
                        "the server sent an HTML page instead of the file (an error or login page?)"
                    )
                length = r.headers.get("Content-Length")
                if r.status_code == 206:
                    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", r.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != offset:
                        _discard(part)
                        raise _Transient("the server answered a different range; restarting from zero")
                    total = int(m.group(3)) if m.group(3) != "*" else None
                    append = spliced = True
                else:  # 200: a fresh copy (no range support, or the file changed upstream)
                    offset, hasher, append, spliced = 0, new_hasher(alg), False, False
                    total = int(length) if length and length.isdigit() else None
                etag = r.headers.get("ETag")
                state = {"url": url, "total": total, "etag": etag if etag and not etag.startswith("W/") else None,
                         "last_modified": r.headers.get("Last-Modified")}
                meta.write_text(json.dumps(state))
                progress(0, total, offset)
                sink = HashingWriter(part, hasher, append=append)
                batch: list[bytes] = []
                pending = 0
                flushed = time.monotonic()
                try:
                    for piece in r.iter_raw():
                        batch.append(piece)
                        pending += len(piece)
                        # large writes, but a slow transfer still reaches the disk often (resume)
                        if pending >= opts.chunk or time.monotonic() - flushed > 0.25:
                            sink.put(batch)
                            progress(pending)
                            batch, pending = [], 0
                            flushed = time.monotonic()
                finally:  # keep what arrived before a failure: it is resumed from
                    try:
                        if batch:
                            sink.put(batch)
                            progress(pending)
                    finally:
                        sink.close()
                if total is not None and sink.size != total:
                    raise _Transient(f"the body ended after {sink.size} of {total} bytes")
                return hasher, sink.size, spliced
        except (_Transient, httpx.TransportError) as exc:
            if isinstance(exc, httpx.TooManyRedirects | httpx.UnsupportedProtocol | httpx.InvalidURL):
                raise _Permanent(str(exc) or type(exc).__name__) from exc
            failures += 1
            if failures > opts.retries:
                raise _Permanent(f"gave up after {failures} attempts; last error: {_describe(exc)}") from exc
            delay = min(opts.backoff_max, opts.backoff * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            after = getattr(exc, "retry_after", None)
            if after is not None:
                delay = max(delay, min(after, opts.retry_after_max))
            time.sleep(delay)
        except httpx.HTTPError as exc:
            raise _Permanent(_describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _copy_stream(read: Callable[[int], bytes], part: Path, alg: str, opts: Options, progress) -> tuple[object, int]:
    hasher = new_hasher(alg)
    sink = HashingWriter(part, hasher)
    try:
        while chunk := read(opts.chunk):
            sink.put([chunk])
            progress(len(chunk))
    finally:
        sink.close()
    return hasher, sink.size


def _file(url: str, part: Path, alg: str, opts: Options, progress) -> tuple[object, int]:
    path = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        with open(path, "rb") as f:
            progress(0, os.fstat(f.fileno()).st_size, 0)
            return _copy_stream(f.read, part, alg, opts, progress)
    except OSError as exc:
        raise _Permanent(f"cannot read {path}: {exc.strerror or exc}") from exc


def _fsspec(url: str, part: Path, alg: str, opts: Options, progress) -> tuple[object, int]:
    try:
        import fsspec
    except ImportError:
        raise _Permanent(
            f"{urlsplit(url).scheme}:// needs fsspec: pip install 'scimlkit[data]'"
        ) from None
    try:
        with fsspec.open(url, "rb") as f:
            return _copy_stream(f.read, part, alg, opts, progress)
    except ImportError as exc:
        raise _Permanent(f"the fsspec backend for {urlsplit(url).scheme}:// is not installed: {exc}") from exc
    except ValueError as exc:
        raise _Permanent(f"fsspec cannot open {url}: {exc}") from exc
    except (OSError, RuntimeError) as exc:
        raise _Permanent(_describe(exc)) from exc


# --------------------------------------------------------------------------------------------
# Public entry points


def expand_headers(headers: Mapping[str, str], dataset: str) -> dict[str, str]:
    """Replace ``${VAR}`` in header values by environment variables (tokens stay out of code)."""
    out = {}
    for key, value in headers.items():
        for var in _ENV_VAR.findall(value):
            if var not in os.environ:
                raise DownloadError(
                    f"dataset {dataset!r} sends header {key!r} built from ${{{var}}}, but {var} is not "
                    f"set. Set it (e.g. export {var}=...) and try again."
                )
        out[key] = _ENV_VAR.sub(lambda m: os.environ[m.group(1)], value)
    return out


def env_headers_variable(dataset: str) -> str:
    """The variable holding extra headers for `dataset`: ``SCIMLKIT_HEADERS_<NAME>``, the name
    upper-cased with every character other than a letter or digit replaced by ``_``.

    Example:
        >>> env_headers_variable("UCI-Iris")
        'SCIMLKIT_HEADERS_UCI_IRIS'
    """
    return "SCIMLKIT_HEADERS_" + re.sub(r"[^A-Z0-9]", "_", dataset.upper())


def env_headers(dataset: str) -> dict[str, str]:
    """Headers for `dataset` set by the user in ``SCIMLKIT_HEADERS_<NAME>`` (a token for a
    private mirror, say), added to the declared ones and overriding them.

    The value is a JSON object (``{"Authorization": "Bearer ..."}``) or ``Name: value`` lines.

    Example:
        >>> import os
        >>> os.environ["SCIMLKIT_HEADERS_MY_DATA"] = "Authorization: Bearer abc"
        >>> env_headers("My-Data")
        {'Authorization': 'Bearer abc'}
        >>> del os.environ["SCIMLKIT_HEADERS_MY_DATA"]
    """
    var = env_headers_variable(dataset)
    raw = os.environ.get(var, "").strip()
    if not raw:
        return {}
    example = f"{var}='{{\"Authorization\": \"Bearer TOKEN\"}}' or {var}='Authorization: Bearer TOKEN'"
    if raw.startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise DownloadError(f"{var} is not valid JSON ({exc}); write e.g. {example}") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise DownloadError(f"{var} must map header names to strings; write e.g. {example}")
        return {str(k): v for k, v in value.items()}
    out = {}
    for line in raw.splitlines():
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise DownloadError(f"{var}: cannot read header line {line!r}; write e.g. {example}")
        out[name.strip()] = value.strip()
    return out


def _large_socket_reads() -> None:
    """httpcore reads 64 KiB per socket call; 1 MiB reads make bulk downloads ~1.3-1.5x faster.

    Set once on httpcore's HTTP/1.1 connection class, only ever upward (a larger read size
    changes no behaviour: the protocol parser buffers whatever arrives).
    """
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # pragma: no cover - a future httpcore layout: keep its default
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", MiB) < MiB:
        HTTP11Connection.READ_NUM_BYTES = MiB


def make_client(opts: Options) -> httpx.Client:
    """An httpx client with connection reuse, redirects followed, and the configured timeouts."""
    _large_socket_reads()
    timeout = httpx.Timeout(opts.read_timeout, connect=opts.connect_timeout, pool=None)
    limits = httpx.Limits(max_connections=max(4, opts.max_parallel), max_keepalive_connections=max(4, opts.max_parallel))
    return httpx.Client(follow_redirects=True, timeout=timeout, limits=limits,
                        headers={"User-Agent": "scimlkit-data"})


def fetch_file(remote: RemoteFile, part: Path, *, headers: Mapping[str, str] | None = None,
               opts: Options | None = None, client: httpx.Client | None = None,
               progress=None) -> Fetched:
    """Fetch one file into `part`, trying rewritten then declared URLs, verifying its hash.

    Raises:
        ChecksumMismatch: every URL that answered served content with the wrong hash.
        DownloadError: no URL could serve the file (each URL's reason is listed).
    """
    opts = opts or Options.from_env(progress=False)
    headers = dict(headers or {})
    progress = progress or (lambda advance, total=None, completed=None: None)
    alg, expected = parse_hash(remote.hash) if remote.hash else ("sha256", None)
    own_client = client is None
    client = client or make_client(opts)
    attempts: list[str] = []
    mismatch: ChecksumMismatch | None = None
    try:
        for url in mirrors.candidate_urls(remote.urls):
            scheme = urlsplit(url).scheme.lower()
            try:
                spliced = False
                if scheme in ("http", "https"):
                    hasher, size, spliced = _http(url, part, alg, headers, opts, client, progress,
                                                  remote.filename)
                    digest = hexdigest(hasher, len(expected) // 2 if expected else 32)
                    if spliced and expected is not None and digest != expected:
                        # bytes kept from an earlier transfer may be stale or damaged (a server
                        # that changed the file but not its validators): once more from zero
                        _discard(part)
                        attempts.append(f"{url}: {alg} mismatch after resuming; fetched again from the start")
                        hasher, size, spliced = _http(url, part, alg, headers, opts, client, progress,
                                                      remote.filename)
                elif scheme == "file":
                    hasher, size = _file(url, part, alg, opts, progress)
                else:
                    hasher, size = _fsspec(url, part, alg, opts, progress)
            except _Permanent as exc:
                attempts.append(f"{url}: {exc}")
                if scheme not in ("http", "https"):
                    _discard(part)
                continue
            digest = hexdigest(hasher, len(expected) // 2 if expected else 32)
            if expected is not None and digest != expected:
                _discard(part)
                attempts.append(f"{url}: {alg} mismatch (got {digest})")
                mismatch = ChecksumMismatch(
                    f"{remote.filename} from {url}: {alg} hash mismatch: expected {expected} but got "
                    f"{digest}. The download was deleted and nothing was installed. If the file "
                    "changed upstream, update the declared hash; otherwise try another mirror.",
                    expected=f"{alg}:{expected}", actual=f"{alg}:{digest}",
                )
                continue
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            return Fetched(remote.filename, part, f"{alg}:{digest}", size, url, attempts)
    finally:
        if own_client:
            client.close()
    if mismatch is not None:
        if len(attempts) > 1:
            mismatch.args = (mismatch.args[0] + "\nAll attempts:\n  " + "\n  ".join(attempts),)
        raise mismatch
    raise DownloadError(
        f"could not fetch {remote.filename!r} from any of its {len(attempts)} URL(s):\n  "
        + "\n  ".join(attempts)
        + "\nCheck your connection, or point at a mirror with SCIMLKIT_URL_REWRITE="
        "'PREFIX=MIRROR_PREFIX'. A partial download is kept and will be resumed."
    )


def fetch_files(remotes: Sequence[RemoteFile], part_dir: Path, *, headers: Mapping[str, str] | None = None,
                opts: Options | None = None) -> dict[str, Fetched]:
    """Fetch several files with a bounded pool of parallel transfers sharing one connection pool.

    Every file is attempted; if any failed, the first error is raised after the others finished.
    """
    opts = opts or Options.from_env()
    results: dict[str, Fetched] = {}
    errors: list[BaseException] = []
    with make_client(opts) as client, _Progress(opts.progress) as bars:
        def one(remote: RemoteFile) -> None:
            part = part_dir / (remote.filename.replace("/", "__") + ".part")
            try:
                results[remote.filename] = fetch_file(
                    remote, part, headers=headers, opts=opts, client=client,
                    progress=bars.task(remote.filename),
                )
            except BaseException as exc:
                errors.append(exc)

        if len(remotes) == 1:
            one(remotes[0])
        else:
            with ThreadPoolExecutor(max_workers=min(opts.max_parallel, len(remotes))) as pool:
                list(pool.map(one, remotes))
    if errors:
        mism = [e for e in errors if isinstance(e, ChecksumMismatch)]
        raise (mism or errors)[0]
    return results
