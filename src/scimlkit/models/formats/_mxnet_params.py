"""MXNet's binary NDArray list (`*.params`, as `mx.nd.save` and Gluon's `export` write it).

Layout (little-endian, from MXNet's `src/ndarray/ndarray.cc`): a `uint64` list magic
`0x112` and a reserved `uint64`; a `uint64` count of arrays, each saved by
`NDArray::Save`; a `uint64` count of names, each a `uint64` length and its bytes.

One array: a `uint32` magic (`0xF993FAC9` V2, `0xF993FACA` V3 with NumPy shape
semantics, `0xF993FAC8` V1, anything else the rank of a legacy array), then for V2/V3 an
`int32` storage type (0 dense; sparse types also store a storage shape and aux data), the
shape (`int32` rank then `int64` dims; legacy: `uint32` dims), the context (two
`int32`), an `int32` dtype flag and the raw data. A V2 array of rank 0 (V3: unknown
rank, -1) is an empty placeholder with nothing after its shape.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ModelFormatError

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA

# mshadow type flags
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
}
_STORAGE = {0: "dense", 1: "row_sparse", 2: "csr"}


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data = data
        self.pos = 0
        self.where = where

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFormatError(
                f"{self.where}: truncated MXNet params file (wanted {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)})"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def count(self, what: str) -> int:
        (n,) = self.unpack("Q")
        if n > len(self.data):  # every entry takes at least one byte
            raise ModelFormatError(
                f"{self.where}: implausible {what} count {n} in MXNet params file"
            )
        return n


def read_params(data: bytes, where: str = "params") -> dict[str, np.ndarray]:
    """Arrays of an MXNet params file by name (the `arg:`/`aux:` prefixes are kept)."""
    r = _Reader(data, where)
    magic, _reserved = r.unpack("QQ")
    if magic != LIST_MAGIC:
        raise ModelFormatError(
            f"{where}: not an MXNet params file (magic {magic:#x}, expected {LIST_MAGIC:#x})"
        )
    arrays = [_read_array(r, i) for i in range(r.count("array"))]
    names = [
        r.take(r.count("name length")).decode("utf-8", "replace") for _ in range(r.count("name"))
    ]
    if r.pos != len(data):
        raise ModelFormatError(
            f"{where}: {len(data) - r.pos} unexpected bytes after the MXNet params list"
        )
    if not names and arrays:
        raise ModelFormatError(f"{where}: MXNet params file without names (a bare NDArray list)")
    if len(names) != len(arrays):
        raise ModelFormatError(f"{where}: {len(arrays)} arrays but {len(names)} names")
    return {n: a for n, a in zip(names, arrays, strict=True) if a is not None}


def _shape(r: _Reader, legacy_ndim: int | None = None) -> tuple[int, ...] | None:
    if legacy_ndim is not None:
        if legacy_ndim > 32:
            raise ModelFormatError(f"{r.where}: not an MXNet NDArray (magic {legacy_ndim:#x})")
        return tuple(r.unpack(f"{legacy_ndim}I"))
    (ndim,) = r.unpack("i")
    if ndim < 0:
        return None  # unknown (V3)
    if ndim > 32:
        raise ModelFormatError(f"{r.where}: implausible array rank {ndim}")
    dims = r.unpack(f"{ndim}q")
    if any(d < 0 for d in dims):
        return None
    return dims


def _read_array(r: _Reader, index: int) -> np.ndarray | None:
    (magic,) = r.unpack("I")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = r.unpack("i")
        if stype != 0:
            kind = _STORAGE.get(stype, f"storage type {stype}")
            raise ModelFormatError(
                f"{r.where}: array #{index} is {kind}; only dense arrays are supported "
                "(convert it with `.tostype('default')` before saving)"
            )
        shape = _shape(r)
        if shape is None or (magic == V2_MAGIC and len(shape) == 0):
            return None
    else:
        shape = _shape(r) if magic == V1_MAGIC else _shape(r, legacy_ndim=magic)
        if shape is None or len(shape) == 0:
            return None
    _dev_type, _dev_id = r.unpack("ii")
    (flag,) = r.unpack("i")
    if flag not in DTYPES:
        raise ModelFormatError(f"{r.where}: array #{index} has unsupported dtype flag {flag}")
    dtype = DTYPES[flag]
    size = int(np.prod(shape, dtype=np.int64))
    raw = r.take(size * dtype.itemsize)
    return np.frombuffer(raw, dtype).reshape(shape).astype(dtype.newbyteorder("="))
