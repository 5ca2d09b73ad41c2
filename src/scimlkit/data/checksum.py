"""Hashes written as ``"alg:hex"`` for any algorithm hashlib offers.

A bare hex digest means SHA-256 (as in pooch). Hashing streams the file in large chunks; hashlib
releases the GIL on such chunks, so hashing overlaps with I/O in other threads.

Example:
    >>> from scimlkit.data.checksum import parse_hash
    >>> parse_hash("md5:" + "0" * 32)
    ('md5', '00000000000000000000000000000000')
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import ChecksumMismatch, RegistryError

CHUNK = 4 << 20
_HEX = re.compile(r"^[0-9a-f]+$")


def algorithms() -> list[str]:
    """The hash algorithms usable in declarations (hashlib's, lower case, sorted)."""
    return sorted({a.lower() for a in hashlib.algorithms_available})


def new_hasher(alg: str):
    """A fresh hashlib object for `alg` (raises `RegistryError` for an unknown algorithm)."""
    try:
        return hashlib.new(alg)
    except (ValueError, TypeError) as exc:
        raise RegistryError(
            f"unknown hash algorithm {alg!r}; use one of: {', '.join(algorithms())}"
        ) from exc


def parse_hash(text: str) -> tuple[str, str]:
    """Split ``"alg:hex"`` (or a bare SHA-256 hex digest) into ``(alg, hex)``, checking both.

    Raises:
        RegistryError: the algorithm is unknown or the digest has the wrong length.
    """
    text = text.strip()
    alg, sep, digest = text.partition(":")
    if not sep:
        alg, digest = "sha256", text
    alg = alg.lower()
    if alg not in hashlib.algorithms_available:
        alg = alg.replace("-", "_")  # accept "sha3-256" for hashlib's "sha3_256"
    digest = digest.lower()
    h = new_hasher(alg)
    if h.digest_size == 0:  # shake_*: variable length, any even length accepted
        ok = len(digest) % 2 == 0 and len(digest) > 0
    else:
        ok = len(digest) == 2 * h.digest_size
    if not ok or not _HEX.match(digest):
        raise RegistryError(
            f"malformed {alg} digest {digest!r}: expected {2 * h.digest_size or 'an even number of'} "
            "hex digits (write hashes as 'alg:hex', e.g. 'sha256:9f86d0...')"
        )
    return alg, digest


def hexdigest(h, length: int | None = None) -> str:
    """The hex digest of a hashlib object (`length` bytes for shake_* algorithms)."""
    return h.hexdigest(length) if h.digest_size == 0 else h.hexdigest()


def file_hash(path: str | Path, alg: str = "sha256", *, digest_len: int | None = None) -> str:
    """Hash a file in one streaming pass and return the hex digest.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
        >>> file_hash(p)[:12]
        'ba7816bf8f01'
    """
    h = new_hasher(alg)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return hexdigest(h, digest_len or 32)


def check(expected: str, actual_hex: str, what: str) -> None:
    """Raise `ChecksumMismatch` unless `actual_hex` matches `expected` (``"alg:hex"``)."""
    alg, digest = parse_hash(expected)
    if actual_hex.lower() != digest:
        raise ChecksumMismatch(
            f"{what}: {alg} hash mismatch: expected {digest} but got {actual_hex}. "
            "The download was deleted. If the file legitimately changed upstream, update the "
            "declared hash; otherwise try again later or another mirror.",
            expected=f"{alg}:{digest}",
            actual=f"{alg}:{actual_hex}",
        )


def verify_file(path: str | Path, expected: str) -> str:
    """Hash `path` and compare with `expected` (``"alg:hex"``); return the actual hex digest."""
    alg, digest = parse_hash(expected)
    actual = file_hash(path, alg, digest_len=len(digest) // 2)
    check(expected, actual, str(path))
    return actual
