"""A real HTTP/1.1 file server on 127.0.0.1 for download tests, with injectable faults.

Import it from any test package (the repository root is on ``sys.path`` under pytest because
``tests/`` is a package)::

    from tests.helpers.http_server import FileServer, Fault

    with FileServer() as server:
        server.add("/mnist/train.gz", payload)             # or FileServer(root=folder)
        server.fault("/mnist/train.gz", Fault.drop(after=1000), Fault.status(503, retry_after=1))
        url = server.url("/mnist/train.gz")
        ...
        server.requests                                      # every request: method, path, headers

Supports ``Range: bytes=N-`` / ``bytes=N-M`` (206, 416), ``ETag`` / ``Last-Modified`` with
``If-Range``, keep-alive, and faults consumed in order, one per request (each may repeat
``times`` times):

- ``Fault.drop(after)``: announce the full length, send `after` bytes, close the connection;
- ``Fault.status(code, retry_after=None)``: answer an error status (429, 500, 503, 404 ...);
- ``Fault.trickle(chunk, delay)``: send the body in small chunks with pauses;
- ``Fault.stall(after, seconds)``: send `after` bytes, then go silent for `seconds`;
- ``Fault.wrong_length(delta)``: announce ``len + delta`` bytes, send the real body, close;
- ``Fault.redirect(to, code=302)``: redirect to another path (or absolute URL);
- ``Fault.html()``: answer 200 with an HTML error page;
- ``Fault.no_range()``: ignore ``Range`` (answer 200 with the whole file).

``server.change(path, data)`` replaces a file and gives it a new ETag (a changed upstream
file). Each recorded request keeps the client's address (``client``): requests with the same
address came over one reused connection.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next `times` requests of its path."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    times: int = 1

    @classmethod
    def drop(cls, after: int, times: int = 1) -> Fault:
        return cls("drop", {"after": after}, times)

    @classmethod
    def status(cls, code: int, retry_after: float | str | None = None, times: int = 1) -> Fault:
        return cls("status", {"code": code, "retry_after": retry_after}, times)

    @classmethod
    def trickle(cls, chunk: int = 1024, delay: float = 0.01, times: int = 1) -> Fault:
        return cls("trickle", {"chunk": chunk, "delay": delay}, times)

    @classmethod
    def stall(cls, after: int, seconds: float, times: int = 1) -> Fault:
        return cls("stall", {"after": after, "seconds": seconds}, times)

    @classmethod
    def wrong_length(cls, delta: int = 100, times: int = 1) -> Fault:
        return cls("wrong_length", {"delta": delta}, times)

    @classmethod
    def redirect(cls, to: str, code: int = 302, times: int = 1) -> Fault:
        return cls("redirect", {"to": to, "code": code}, times)

    @classmethod
    def html(cls, times: int = 1) -> Fault:
        return cls("html", {}, times)

    @classmethod
    def no_range(cls, times: int = 1) -> Fault:
        return cls("no_range", {}, times)


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    fault: str | None = None
    client: tuple[str, int] | None = None  # (host, port) of the connection it came on


class _Entry:
    def __init__(self, data: bytes | Path, content_type: str) -> None:
        self.data = data
        self.content_type = content_type
        self.version = 0
        self.mtime = time.time() - 3600

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    @property
    def etag(self) -> str:
        return f'"{self.size:x}-{self.version}-{id(self) & 0xFFFF:x}"'

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.data, Path):
            with open(self.data, "rb") as f:
                f.seek(start)
                return f.read(end - start)
        return self.data[start:end]


class FileServer:
    """Serve in-memory files (`add`) or a folder (`root`) on 127.0.0.1; use as a context manager."""

    def __init__(self, root: str | Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root) if root else None
        self.files: dict[str, _Entry] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[Request] = []
        self.active = 0  # requests being answered now
        self.peak_active = 0  # the most answered at once (to check parallel clients)
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    # -- control -------------------------------------------------------------------------
    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def add(self, path: str, data: bytes | str | Path, content_type: str = "application/octet-stream") -> str:
        """Serve `data` (bytes, or a file path read on demand) at `path`; returns its URL."""
        if isinstance(data, str):
            data = data.encode()
        self.files["/" + path.lstrip("/")] = _Entry(data, content_type)
        return self.url(path)

    def change(self, path: str, data: bytes) -> None:
        """Replace a file's content and give it a new ETag (an upstream change)."""
        entry = self.files["/" + path.lstrip("/")]
        entry.data = data
        entry.version += 1
        entry.mtime = time.time()

    def fault(self, path: str, *faults: Fault) -> None:
        """Queue faults for the next requests of `path`, applied in order."""
        with self._lock:
            self.faults.setdefault("/" + path.lstrip("/"), []).extend(faults)

    def gets(self, path: str) -> list[Request]:
        """The GET requests made for `path`."""
        p = "/" + path.lstrip("/")
        return [r for r in self.requests if r.method == "GET" and r.path == p]

    # -- internals -----------------------------------------------------------------------
    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _lookup(self, path: str) -> _Entry | None:
        if path in self.files:
            return self.files[path]
        if self.root is not None:
            candidate = (self.root / path.lstrip("/")).resolve()
            if candidate.is_file() and self.root.resolve() in candidate.parents:
                return _Entry(candidate, "application/octet-stream")
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: FileServer
    protocol_version = "HTTP/1.1"
    CHUNK = 1 << 20

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        owner = self.owner
        with owner._lock:
            owner.active += 1
            owner.peak_active = max(owner.peak_active, owner.active)
        try:
            self._serve(head=False)
        finally:
            with owner._lock:
                owner.active -= 1

    def _send_simple(self, code: int, body: bytes, content_type: str = "text/plain", extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        record = Request(self.command, path, dict(self.headers.items()), client=tuple(self.client_address[:2]))
        self.owner.requests.append(record)
        fault = self.owner._next_fault(path)
        record.fault = fault.kind if fault else None
        kind = fault.kind if fault else None

        if kind == "status":
            extra = {}
            if fault.args["retry_after"] is not None:
                extra["Retry-After"] = str(fault.args["retry_after"])
            record.status = fault.args["code"]
            self._send_simple(fault.args["code"], b"injected failure\n", extra=extra)
            return
        if kind == "redirect":
            to = fault.args["to"]
            location = to if "://" in to else self.owner.url(to)
            record.status = fault.args["code"]
            self._send_simple(fault.args["code"], b"", extra={"Location": location})
            return
        if kind == "html":
            record.status = 200
            self._send_simple(200, b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>",
                              "text/html; charset=utf-8")
            return
        entry = self.owner._lookup(path)
        if entry is None:
            record.status = 404
            self._send_simple(404, b"not found\n")
            return

        size = entry.size
        start, end, status = 0, size, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        last_modified = formatdate(entry.mtime, usegmt=True)
        range_ok = rng and kind != "no_range" and (if_range is None or if_range in (entry.etag, last_modified))
        if range_ok and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            if first.isdigit():
                start = int(first)
                end = min(size, int(last) + 1) if last.isdigit() else size
                if start >= size:
                    record.status = 416
                    self._send_simple(416, b"", extra={"Content-Range": f"bytes */{size}"})
                    return
                status = 206
        length = end - start
        announced = length + fault.args["delta"] if kind == "wrong_length" else length
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Content-Length", str(announced))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", entry.etag)
        self.send_header("Last-Modified", last_modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if head:
            return
        try:
            self._body(entry, start, end, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if kind in ("drop", "wrong_length", "stall"):
            self.close_connection = True

    def _body(self, entry: _Entry, start: int, end: int, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if kind in ("drop", "stall"):
            cut = min(end, start + fault.args["after"])
            self.wfile.write(entry.read(start, cut))
            self.wfile.flush()
            if kind == "stall":
                time.sleep(fault.args["seconds"])
            return
        if kind == "trickle":
            step, delay = fault.args["chunk"], fault.args["delay"]
            for pos in range(start, end, step):
                self.wfile.write(entry.read(pos, min(end, pos + step)))
                self.wfile.flush()
                time.sleep(delay)
            return
        for pos in range(start, end, self.CHUNK):
            self.wfile.write(entry.read(pos, min(end, pos + self.CHUNK)))


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data` (computed by hashlib, independently of the code under test)."""
    return hashlib.sha256(data).hexdigest()
