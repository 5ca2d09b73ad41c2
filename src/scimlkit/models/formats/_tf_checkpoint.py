"""TensorFlow checkpoints (TensorBundle) without TensorFlow: the SSTable index and the data shards.

The index `variables.index` is a LevelDB-format table whose keys are checkpoint keys and
whose values are `BundleEntryProto`s (dtype, shape, shard, offset, size); the empty key
holds the `BundleHeaderProto` (number of shards). Tensor bytes live in
`variables.data-SSSSS-of-NNNNN`.
"""

from __future__ import annotations

import pathlib
import struct

import numpy as np

from ..errors import ModelFormatError
from ._protowire import Message, read_varint
from .tf_types import TF_DTYPES, shape_of

_MAGIC = 0xDB4775248B80FB57


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Entries of one SSTable block (uncompressed)."""
    if offset + size + 5 > len(data):
        raise ModelFormatError("checkpoint index block lies outside the file (truncated?)")
    if data[offset + size] != 0:
        raise ModelFormatError("compressed checkpoint index blocks are not supported")
    block = data[offset : offset + size]
    if size < 4:
        raise ModelFormatError("malformed checkpoint index block")
    restarts = struct.unpack_from("<I", block, size - 4)[0]
    end = size - 4 - 4 * restarts
    if end < 0:
        raise ModelFormatError("malformed checkpoint index block")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > end:
            raise ModelFormatError("malformed checkpoint index entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + vlen]))
        pos += vlen
    return entries


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def read_index(path: pathlib.Path) -> dict[str, Message]:
    """All entries of a TensorBundle index: checkpoint key -> BundleEntryProto (header under '')."""
    data = path.read_bytes()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise ModelFormatError(f"{path}: not a TensorFlow checkpoint index (bad SSTable footer)")
    footer = data[-48:]
    _, _, pos = _handle(footer)
    index_offset, index_size, _ = _handle(footer, pos)
    entries: dict[str, Message] = {}
    for _, handle in _block(data, index_offset, index_size):
        offset, size, _ = _handle(handle)
        for key, value in _block(data, offset, size):
            entries[key.decode("utf-8", errors="replace")] = Message(value)
    return entries


class Checkpoint:
    """Read tensors of a TensorBundle checkpoint by key (prefix like `.../variables/variables`)."""

    def __init__(self, prefix: pathlib.Path) -> None:
        index = prefix.with_name(prefix.name + ".index")
        if not index.exists():
            raise ModelFormatError(f"checkpoint index {index} not found")
        self.prefix = prefix
        self.entries = read_index(index)
        header = self.entries.pop("", Message())
        self.num_shards = header.int(1, 1) or 1
        self._shards: dict[int, bytes] = {}

    def names(self) -> list[str]:
        return list(self.entries)

    def _shard(self, shard: int) -> bytes:
        if shard not in self._shards:
            path = self.prefix.with_name(
                f"{self.prefix.name}.data-{shard:05d}-of-{self.num_shards:05d}"
            )
            if not path.exists():
                raise ModelFormatError(f"checkpoint data shard {path} not found")
            self._shards[shard] = path.read_bytes()
        return self._shards[shard]

    def raw(self, key: str) -> tuple[Message, bytes]:
        if key not in self.entries:
            raise ModelFormatError(f"checkpoint has no tensor {key!r}")
        entry = self.entries[key]
        if entry.has(7):
            raise ModelFormatError(
                f"checkpoint tensor {key!r} is partitioned into slices; not supported"
            )
        data = self._shard(entry.int(3))
        offset, size = entry.int(4), entry.int(5)
        if offset + size > len(data):
            raise ModelFormatError(
                f"checkpoint tensor {key!r} lies outside its data shard (truncated?)"
            )
        return entry, data[offset : offset + size]

    def tensor(self, key: str) -> np.ndarray:
        entry, blob = self.raw(key)
        dtype_code = entry.int(1)
        shape = shape_of(entry.msg(2))
        if dtype_code == 7:
            return np.asarray(self.strings(key), dtype=object).reshape(shape)
        if dtype_code not in TF_DTYPES:
            raise ModelFormatError(
                f"checkpoint tensor {key!r} has unsupported dtype code {dtype_code}"
            )
        dtype = np.dtype(TF_DTYPES[dtype_code])
        count = int(np.prod(shape)) if shape else 1
        if count * dtype.itemsize != len(blob):
            raise ModelFormatError(
                f"checkpoint tensor {key!r}: {len(blob)} bytes for shape {shape}"
            )
        return np.frombuffer(blob, dtype).reshape(shape).copy()

    def strings(self, key: str) -> list[bytes]:
        """A string tensor: varint lengths, a 4-byte checksum, then the bytes."""
        entry, blob = self.raw(key)
        shape = shape_of(entry.msg(2))
        count = int(np.prod(shape)) if shape else 1
        lengths, pos = [], 0
        for _ in range(count):
            n, pos = read_varint(blob, pos)
            lengths.append(n)
        pos += 4
        out = []
        for n in lengths:
            out.append(bytes(blob[pos : pos + n]))
            pos += n
        if pos > len(blob):
            raise ModelFormatError(f"checkpoint string tensor {key!r} is truncated")
        return out
