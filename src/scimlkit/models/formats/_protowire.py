"""A minimal protobuf wire-format decoder: enough to read TensorFlow's GraphDef, SavedModel and checkpoints.

`Message(buf)` indexes fields by number; typed accessors interpret them as the schema
says (varints, packed or unpacked repeated scalars, strings, sub-messages, maps).
Truncated or malformed data raises `ModelFormatError`.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ModelFormatError


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise ModelFormatError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ModelFormatError("malformed protobuf varint")


class Message:
    """One decoded protobuf message: field number -> list of (wire type, raw value)."""

    __slots__ = ("fields",)

    def __init__(self, buf: bytes | memoryview = b"") -> None:
        buf = memoryview(buf) if not isinstance(buf, memoryview) else buf
        fields: dict[int, list[tuple[int, object]]] = {}
        pos, n = 0, len(buf)
        while pos < n:
            key, pos = read_varint(buf, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = read_varint(buf, pos)
            elif wire == 1:
                value, pos = buf[pos : pos + 8], pos + 8
            elif wire == 2:
                size, pos = read_varint(buf, pos)
                value, pos = buf[pos : pos + size], pos + size
            elif wire == 5:
                value, pos = buf[pos : pos + 4], pos + 4
            else:
                raise ModelFormatError(f"unsupported protobuf wire type {wire} (damaged file?)")
            if pos > n or number == 0:
                raise ModelFormatError("truncated or malformed protobuf message")
            fields.setdefault(number, []).append((wire, value))
        self.fields = fields

    def has(self, number: int) -> bool:
        return number in self.fields

    def int(self, number: int, default: int = 0, signed: bool = True) -> int:
        items = self.fields.get(number)
        if not items:
            return default
        wire, value = items[-1]
        if wire != 0:
            raise ModelFormatError(f"protobuf field {number} is not a varint")
        if signed and value >= 1 << 63:
            value -= 1 << 64
        return value

    def bool(self, number: int, default: bool = False) -> bool:
        return bool(self.int(number, int(default)))

    def float(self, number: int, default: float = 0.0) -> float:
        items = self.fields.get(number)
        if not items:
            return default
        wire, value = items[-1]
        return struct.unpack("<f" if wire == 5 else "<d", bytes(value))[0]

    def bytes(self, number: int, default: bytes = b"") -> bytes:
        items = self.fields.get(number)
        return bytes(items[-1][1]) if items else default

    def str(self, number: int, default: str = "") -> str:
        items = self.fields.get(number)
        return bytes(items[-1][1]).decode("utf-8", errors="replace") if items else default

    def strs(self, number: int) -> list[str]:
        return [bytes(v).decode("utf-8", errors="replace") for _, v in self.fields.get(number, [])]

    def msg(self, number: int) -> Message | None:
        items = self.fields.get(number)
        return Message(items[-1][1]) if items else None

    def msgs(self, number: int) -> list[Message]:
        return [Message(v) for _, v in self.fields.get(number, [])]

    def ints(self, number: int, signed: bool = True) -> list[int]:
        out: list[int] = []
        for wire, value in self.fields.get(number, []):
            if wire == 0:
                out.append(value)
            elif wire == 2:
                pos, buf = 0, value
                while pos < len(buf):
                    v, pos = read_varint(buf, pos)
                    out.append(v)
            else:
                raise ModelFormatError(f"protobuf field {number} is not an integer list")
        if signed:
            out = [v - (1 << 64) if v >= 1 << 63 else v for v in out]
        return out

    def packed(self, number: int, dtype: str) -> np.ndarray:
        """A repeated fixed-width field (float, double, fixed32...) as an array."""
        parts = [bytes(v) for _, v in self.fields.get(number, [])]
        return np.frombuffer(b"".join(parts), np.dtype(dtype)).copy()

    def map(self, number: int) -> dict[str, Message]:
        """A `map<string, Message>` field."""
        result = {}
        for entry in self.msgs(number):
            result[entry.str(1)] = entry.msg(2) or Message()
        return result

    def str_map(self, number: int) -> dict[str, str]:
        return {entry.str(1): entry.str(2) for entry in self.msgs(number)}
