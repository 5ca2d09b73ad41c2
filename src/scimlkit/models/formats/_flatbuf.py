"""A minimal read-only FlatBuffers decoder (tables, vectors, strings, scalars).

Enough to walk a FlatBuffer given field indices from its schema, with every offset
bounds-checked so a damaged file raises `ModelFormatError` instead of reading garbage.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ModelFormatError

_SCALAR = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8, "?": 1}


class Table:
    """One FlatBuffers table inside `buf` at byte offset `pos`."""

    __slots__ = ("_vt", "_vt_len", "buf", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        _check(buf, pos, 4)
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        _check(buf, vt, 4)
        self._vt = vt
        self._vt_len = struct.unpack_from("<H", buf, vt)[0]
        _check(buf, vt, self._vt_len)

    def _field(self, index: int) -> int:
        """Absolute position of field `index`, or 0 if absent."""
        entry = 4 + 2 * index
        if entry + 2 > self._vt_len:
            return 0
        off = struct.unpack_from("<H", self.buf, self._vt + entry)[0]
        return self.pos + off if off else 0

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, fmt: str, default=0):
        p = self._field(index)
        if not p:
            return default
        _check(self.buf, p, _SCALAR[fmt])
        return struct.unpack_from("<" + fmt, self.buf, p)[0]

    def _deref(self, index: int) -> int:
        p = self._field(index)
        if not p:
            return 0
        _check(self.buf, p, 4)
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, index: int) -> Table | None:
        p = self._deref(index)
        return Table(self.buf, p) if p else None

    def string(self, index: int, default: str = "") -> str:
        p = self._deref(index)
        if not p:
            return default
        n = _len(self.buf, p)
        _check(self.buf, p + 4, n)
        return bytes(self.buf[p + 4 : p + 4 + n]).decode("utf-8", errors="replace")

    def vector(self, index: int, dtype: str) -> np.ndarray:
        """A vector of scalars as a NumPy array (`dtype` like "<i4", "u1", "<f4")."""
        p = self._deref(index)
        if not p:
            return np.zeros(0, dtype)
        n = _len(self.buf, p)
        dt = np.dtype(dtype)
        _check(self.buf, p + 4, n * dt.itemsize)
        return np.frombuffer(self.buf, dt, n, p + 4)

    def tables(self, index: int) -> list[Table]:
        p = self._deref(index)
        if not p:
            return []
        n = _len(self.buf, p)
        _check(self.buf, p + 4, 4 * n)
        out = []
        for i in range(n):
            q = p + 4 + 4 * i
            out.append(Table(self.buf, q + struct.unpack_from("<I", self.buf, q)[0]))
        return out


def root(buf: bytes | memoryview) -> Table:
    _check(buf, 0, 8)
    return Table(buf, struct.unpack_from("<I", buf, 0)[0])


def _len(buf, p: int) -> int:
    _check(buf, p, 4)
    return struct.unpack_from("<I", buf, p)[0]


def _check(buf, pos: int, size: int) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise ModelFormatError(
            f"FlatBuffer offset {pos}+{size} is outside the {len(buf)}-byte file (damaged file?)"
        )
