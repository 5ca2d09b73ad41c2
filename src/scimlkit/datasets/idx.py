"""The IDX file format (MNIST and its relatives), read with NumPy alone.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order,
big-endian. Files may be gzip-compressed (`.gz`); the reader detects that from the
content, not the name.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .errors import DatasetFormatError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        raw, name = bytes(source), "<bytes>"
    else:
        path = Path(source)
        raw, name = path.read_bytes(), str(path)
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DatasetFormatError(f"{name}: corrupt or truncated gzip stream ({exc}); delete it and fetch again") from exc
    return raw, name


def parse_idx(source: str | os.PathLike[str] | bytes) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a native-endian NumPy array.

    **Arguments:**

    - `source`: a path, or the file's bytes.

    **Returns:** an array of the file's shape; uint8 files stay uint8.

    **Raises:** `DatasetFormatError` if the magic number, type code or length is wrong.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.datasets.idx import parse_idx, write_idx
    >>> parse_idx(write_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))).tolist()
    [[0, 1, 2], [3, 4, 5]]

    ```
    """
    raw, name = _read_bytes(source)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetFormatError(f"{name}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise DatasetFormatError(f"{name}: unknown IDX type code 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{name}: truncated IDX header ({len(raw)} bytes, {header} needed)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing data"
        raise DatasetFormatError(
            f"{name}: IDX file {problem}: header says shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes. Delete it (`scimlkit data purge`) and fetch again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of `parse_idx`; used to make test files).

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.datasets.idx import write_idx
    >>> write_idx(np.zeros((1, 2), np.uint8))[:4].hex()
    '00000802'

    ```
    """
    array = np.asarray(array)
    matches = [
        (code, dtype)
        for code, dtype in IDX_TYPES.items()
        if dtype.kind == array.dtype.kind and dtype.itemsize == array.dtype.itemsize
    ]
    if not matches:
        raise DatasetFormatError(f"IDX cannot hold dtype {array.dtype}")
    code, dtype = matches[0]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(dtype, copy=False).tobytes()
