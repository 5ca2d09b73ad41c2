"""Safe extraction of zip, tar (plain, gz, bz2, xz, zst), gz, bz2, xz, zst and 7z archives.

Every entry is checked before anything is written for it: absolute paths, ``..``, links whose
target leaves the folder, hard links to anything but an earlier entry, and device files or FIFOs
raise `UnsafeArchive`. The bytes actually written are counted, so an archive expanding past the
limit (``max_size``, default ``SCIMLKIT_MAX_UNPACK_SIZE`` or 64 GiB) is stopped as it happens,
whatever sizes its headers claim. Files are hashed (SHA-256) while written, for the store's stamp.

Example:
    >>> archive_kind("data.tar.gz"), archive_kind("notes.txt")
    ('tar.gz', None)
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from .errors import DataError, UnpackError, UnsafeArchive
from .sink import HashingWriter

MiB = 1 << 20
DEFAULT_MAX = 64 << 30
_KINDS = [
    (".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
    (".tbz", "tar.bz2"), (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar.zst", "tar.zst"),
    (".tzst", "tar.zst"), (".tar", "tar"), (".zip", "zip"), (".7z", "7z"), (".gz", "gz"),
    (".bz2", "bz2"), (".xz", "xz"), (".zst", "zst"),
]


_UNSAFE_ADVICE = (
    "The archive is damaged or hostile, and nothing from it was installed: do not unpack it by "
    "hand; report it to whoever publishes the dataset (or fetch it from another mirror)"
)


def archive_kind(filename: str) -> str | None:
    """The archive kind by file name (``"zip"``, ``"tar.gz"``, ``"gz"``, ...) or None."""
    low = filename.lower()
    for suffix, kind in _KINDS:
        if low.endswith(suffix):
            return kind
    return None


def default_max_size() -> int:
    raw = os.environ.get("SCIMLKIT_MAX_UNPACK_SIZE")
    if not raw:
        return DEFAULT_MAX
    try:
        return int(float(raw))
    except ValueError:
        raise DataError(f"SCIMLKIT_MAX_UNPACK_SIZE={raw!r} is not a number of bytes") from None


class _Writer:
    """Writes entries below `dest`, counting bytes against the limit and hashing each file."""

    def __init__(self, dest: Path, archive: str, max_size: int) -> None:
        self.dest = dest.resolve()
        self.archive = archive
        self.max_size = max_size
        self.total = 0
        self.hashes: dict[str, str] = {}

    def target(self, name: str) -> tuple[str, Path]:
        """Check an entry name and return (normalised relative name, absolute path)."""
        clean = name.replace("\\", "/")
        if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or "\x00" in clean:
            raise UnsafeArchive(f"{self.archive}: entry {name!r} has an absolute path; refusing to unpack it")
        parts = [p for p in clean.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnsafeArchive(f"{self.archive}: entry {name!r} climbs out with '..'; refusing to unpack it")
        if not parts:
            return "", self.dest
        rel = "/".join(parts)
        path = self.dest.joinpath(*parts)
        # a parent that is a symlink (planted by an earlier entry) must not lead outside
        real = Path(os.path.realpath(path.parent))
        if real != self.dest and self.dest not in real.parents:
            raise UnsafeArchive(f"{self.archive}: entry {name!r} would be written through a link outside the target")
        return rel, path

    def check_link(self, rel: str, target: str) -> None:
        if target.startswith("/") or "\\" in target:
            raise UnsafeArchive(f"{self.archive}: link {rel!r} points to absolute path {target!r}; refusing")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"{self.archive}: link {rel!r} -> {target!r} points outside the target; refusing")

    def count(self, n: int) -> None:
        self.total += n
        if self.total > self.max_size:
            raise self.too_large()

    def too_large(self) -> UnsafeArchive:
        return UnsafeArchive(
            f"{self.archive} expands past the limit of {self.max_size:,} bytes (an archive bomb?). "
            "If the dataset really is that large, raise the limit with max_unpack_size= or "
            "SCIMLKIT_MAX_UNPACK_SIZE."
        )

    def write(self, name: str, src: IO[bytes], mode: int | None = None, mtime: float | None = None,
              size: int | None = None) -> None:
        """Write one regular file; large ones (or of unknown size) are hashed and written on a
        worker thread while the next chunk is decompressed."""
        rel, path = self.target(name)
        if not rel:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.is_dir():
            raise UnsafeArchive(f"{self.archive}: entry {name!r} overwrites a link or folder; refusing")
        h = hashlib.sha256()
        if size is None or size > 4 * MiB:
            writer = HashingWriter(path, h)
            try:
                while chunk := src.read(MiB):
                    self.count(len(chunk))
                    writer.put([chunk])
            finally:
                writer.close()
        else:
            with open(path, "wb") as out:
                while chunk := src.read(MiB):
                    self.count(len(chunk))
                    h.update(chunk)
                    out.write(chunk)
        if mode is not None and mode & 0o111:
            os.chmod(path, 0o777 & ~_umask())
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        self.hashes[rel] = f"sha256:{h.hexdigest()}"

    def mkdir(self, name: str) -> None:
        _rel, path = self.target(name)
        if path.is_symlink():
            raise UnsafeArchive(f"{self.archive}: folder entry {name!r} replaces a link; refusing")
        path.mkdir(parents=True, exist_ok=True)

    def symlink(self, name: str, target: str) -> None:
        rel, path = self.target(name)
        self.check_link(rel, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def hardlink(self, name: str, target: str) -> None:
        rel, path = self.target(name)
        trel, tpath = self.target(target)
        if trel not in self.hashes:
            raise UnsafeArchive(
                f"{self.archive}: hard link {rel!r} -> {target!r} does not point to an earlier file of "
                "the archive; refusing"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.count(tpath.stat().st_size)
        shutil.copyfile(tpath, path)  # a copy: the store never shares inodes between entries
        self.hashes[rel] = self.hashes[trel]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _zstd_reader(f: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("zstandard", "data", "to unpack .zst files") from None
    return zstandard.ZstdDecompressor().stream_reader(f, read_size=MiB)


class _GzipStream(io.RawIOBase):
    """Inflate a (multi-member) gzip file with 1 MiB reads and no intermediate 8 KiB buffering.

    zlib checks each member's CRC-32 and length trailer; a truncated stream raises EOFError.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self.buf = b""
        self.pos = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def _fill(self) -> None:
        d = self.d
        if d.eof:  # the end of a member: another may follow
            rest = d.unused_data or self.raw.read(MiB)
            if not rest.strip(b"\0"):
                if rest and self.raw.read(1):
                    raise EOFError("garbage after the gzip stream")
                self.done = True
                return
            d = self.d = zlib.decompressobj(zlib.MAX_WBITS | 16)
            data = rest
        else:
            data = d.unconsumed_tail or self.raw.read(MiB)
            if not data:
                raise EOFError("the gzip stream ends before its end marker (truncated file)")
        self.buf = d.decompress(data, 4 * MiB)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        while self.pos >= len(self.buf):
            if self.done:
                return b""
            self._fill()
        if n is None or n < 0 or (self.pos == 0 and n >= len(self.buf)):
            out = self.buf[self.pos:] if self.pos else self.buf
            self.buf, self.pos = b"", 0
            return out
        out = self.buf[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def readinto(self, b) -> int:  # io.RawIOBase protocol
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _open_stream(path: Path, kind: str) -> IO[bytes]:
    """A decompressed stream for tar.* and single-file kinds."""
    comp = kind.removeprefix("tar.") if kind.startswith("tar.") else kind
    raw = open(path, "rb")  # noqa: SIM115 - handed to the decompressor, closed with it
    if comp == "tar":
        return raw
    if comp == "gz":
        return _GzipStream(raw)  # type: ignore[return-value]
    if comp == "bz2":
        return io.BufferedReader(bz2.BZ2File(raw), buffer_size=MiB)  # type: ignore[arg-type]
    if comp == "xz":
        return io.BufferedReader(lzma.LZMAFile(raw), buffer_size=MiB)  # type: ignore[arg-type]
    if comp == "zst":
        return _zstd_reader(raw)
    raise UnpackError(f"unknown archive kind {kind!r}")


def _tar(path: Path, kind: str, w: _Writer) -> None:
    with _open_stream(path, kind) as stream, tarfile.open(fileobj=stream, mode="r|", bufsize=MiB) as tf:
        for m in tf:
            if m.isdir():
                w.mkdir(m.name)
            elif m.isreg():
                src = tf.extractfile(m)
                assert src is not None
                w.write(m.name, src, m.mode, m.mtime, m.size)
            elif m.issym():
                w.symlink(m.name, m.linkname)
            elif m.islnk():
                w.hardlink(m.name, m.linkname)
            elif m.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                continue
            else:
                kind_name = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                             tarfile.FIFOTYPE: "FIFO"}.get(m.type, f"special entry (type {m.type!r})")
                raise UnsafeArchive(f"{w.archive}: entry {m.name!r} is a {kind_name}; refusing to unpack it")


def _zip(path: Path, w: _Writer) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if info.is_dir():
                w.mkdir(info.filename)
            elif stat.S_ISLNK(mode):
                w.symlink(info.filename, zf.read(info).decode("utf-8", "replace"))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise UnsafeArchive(f"{w.archive}: entry {info.filename!r} is a special file; refusing")
            else:
                with zf.open(info) as src:
                    w.write(info.filename, src, mode or None, size=info.file_size)


def _sevenzip(path: Path, w: _Writer) -> None:
    try:
        import py7zr
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("py7zr", "data", "to unpack .7z files") from None
    # py7zr stops decompressing past max_extract_size (the sizes it decodes come from the
    # headers, which are checked first); files are counted again as written below.
    with py7zr.SevenZipFile(path, max_extract_size=max(0, w.max_size - w.total)) as zf:
        infos = zf.list()
        declared = 0
        for info in infos:
            w.target(info.filename)
            if info.is_symlink:
                raise UnsafeArchive(f"{w.archive}: entry {info.filename!r} is a symbolic link; 7z links are refused")
            if not (info.is_file or info.is_directory):
                raise UnsafeArchive(
                    f"{w.archive}: entry {info.filename!r} is a special file (device, FIFO or socket); "
                    "refusing to unpack it"
                )
            declared += info.uncompressed or 0
        if declared > w.max_size:
            w.count(declared)  # raises: the headers alone announce a bomb
        try:
            zf.extractall(path=w.dest)
        except py7zr.exceptions.DecompressionBombError as exc:
            raise w.too_large() from exc
    for info in infos:
        if not info.is_directory:
            rel, p = w.target(info.filename)
            digest = hashlib.sha256()
            with open(p, "rb") as f:
                while chunk := f.read(4 * MiB):
                    digest.update(chunk)
            w.hashes[rel] = f"sha256:{digest.hexdigest()}"
            w.count(p.stat().st_size)


def unpack(archive: str | Path, dest: str | Path, *, max_size: int | None = None,
           kind: str | None = None) -> dict[str, str]:
    """Extract `archive` into `dest` safely; return ``{relative path: "sha256:hex"}`` of the files.

    Single-file compressors (``.gz``, ``.bz2``, ``.xz``, ``.zst``) produce the file name without
    the suffix.

    Raises:
        UnsafeArchive: an entry escapes `dest`, is a device file or FIFO, or the expanded size
            passes `max_size`.
        UnpackError: the archive is corrupt or not of a known kind.

    Example:
        >>> import tarfile, tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp()); (tmp / "a.txt").write_text("hi")
        2
        >>> with tarfile.open(tmp / "a.tar.gz", "w:gz") as t: t.add(tmp / "a.txt", "a.txt")
        >>> sorted(unpack(tmp / "a.tar.gz", tmp / "out"))
        ['a.txt']
    """
    archive = Path(archive)
    dest = Path(dest)
    kind = kind or archive_kind(archive.name)
    if kind is None:
        raise UnpackError(f"{archive.name}: not a known archive kind (zip, tar.*, gz, bz2, xz, zst, 7z)")
    dest.mkdir(parents=True, exist_ok=True)
    w = _Writer(dest, archive.name, default_max_size() if max_size is None else max_size)
    try:
        if kind == "zip":
            _zip(archive, w)
        elif kind == "7z":
            _sevenzip(archive, w)
        elif kind == "tar" or kind.startswith("tar."):
            _tar(archive, kind, w)
        else:
            out_name = archive.name[: -len(kind) - 1]
            with _open_stream(archive, kind) as stream:
                w.write(out_name, stream)
    except UnsafeArchive as exc:
        text = str(exc)
        if "SCIMLKIT_MAX_UNPACK_SIZE" not in text and _UNSAFE_ADVICE not in text:
            exc.args = (f"{text}. {_UNSAFE_ADVICE}",)
        raise
    except DataError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise UnpackError(f"{archive.name}: cannot unpack ({type(exc).__name__}: {exc}); the file is "
                          "corrupt or not a valid archive") from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("py7zr", "zstandard"):
            raise UnpackError(f"{archive.name}: cannot unpack ({type(exc).__name__}: {exc})") from exc
        raise
    return w.hashes

