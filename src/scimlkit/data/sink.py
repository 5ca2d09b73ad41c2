"""`HashingWriter`: append chunks to a file and a hasher on a worker thread.

hashlib and file writes release the GIL on large buffers, so the producer (a network read, a
decompressor) runs while the previous chunk is hashed and written: one pass over the bytes,
two cores busy.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

from .errors import StoreError

_writev = getattr(os, "writev", None)  # POSIX only


class HashingWriter:
    """Write byte chunks to `path` (append or truncate) while feeding `hasher`, in a thread.

    Example:
        >>> import hashlib, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
        >>> w = HashingWriter(p, hashlib.sha256())
        >>> w.put([b"ab", b"c"]); w.close()
        >>> w.hasher.hexdigest()[:8], p.read_bytes()
        ('ba7816bf', b'abc')
    """

    def __init__(self, path: Path, hasher, *, append: bool = False, depth: int = 8) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self.path = Path(path)
        try:
            self.fd = os.open(path, flags, 0o666)  # the umask decides the permissions
        except OSError as exc:
            raise StoreError(
                f"cannot write {path}: {exc.strerror or exc}. Point SCIMLKIT_DATA at a writable "
                "folder (or fix the permissions of this one)."
            ) from exc
        self.hasher = hasher
        self.size = os.fstat(self.fd).st_size
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                for piece in item:
                    self.hasher.update(piece)
                self._write(item)
            except BaseException as exc:
                self._error = exc

    def _write(self, pieces: list[bytes]) -> None:
        if _writev is not None and len(pieces) > 1:
            written, total = _writev(self.fd, pieces), sum(len(p) for p in pieces)
            if written == total:
                return
            rest = memoryview(b"".join(pieces))[written:]  # a short write: finish it
        else:
            rest = memoryview(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        while rest:
            rest = rest[os.write(self.fd, rest):]

    def _check(self) -> None:
        if self._error is not None:
            err = self._error
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise StoreError(
                f"cannot write {self.path}: {why}. Free some space (`scimlkit data du` shows what "
                "the store holds; `scimlkit data purge NAME` removes a dataset) or point "
                "SCIMLKIT_DATA at a larger, writable folder, then try again."
            ) from err

    def put(self, pieces: list[bytes]) -> None:
        """Queue `pieces` (immutable bytes: they are used after this call returns)."""
        self._check()
        self.size += sum(len(p) for p in pieces)
        self._q.put(pieces)

    def close(self) -> None:
        """Wait for the queued chunks, close the file, and raise any write error."""
        self._q.put(None)
        self._thread.join()
        os.close(self.fd)
        self._check()
