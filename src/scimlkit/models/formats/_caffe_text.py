"""A small reader of the protobuf text format, as Caffe's `.prototxt` files use it.

`parse(text)` returns a `TextMessage`: field name -> list of values, where a value is a
`str` (quoted strings, with escapes, adjacent literals joined), an `int` or `float`, an
identifier kept as `Ident` (enum values, `true`/`false`), or a nested `TextMessage`.
Comments (`#`), `field: value`, `field { ... }`, `field: { ... }`, `field < ... >` and
`field: [a, b]` lists are understood; anything else raises `ModelFormatError` with the
line number. No schema is needed: typed accessors interpret the values.
"""

from __future__ import annotations

import re

from ..errors import ModelFormatError

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![\w.]))
  | (?P<ident>[-+]?[A-Za-z_][\w.]*)
  | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
_CLOSE = {"{": "}", "<": ">"}


class Ident(str):
    """An unquoted identifier value (an enum name, `true`, `false`, `inf`, `nan`)."""


class TextMessage:
    """One parsed text-format message: field name -> values in file order."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, list] = {}

    def add(self, name: str, value) -> None:
        self.fields.setdefault(name, []).append(value)

    def has(self, name: str) -> bool:
        return name in self.fields

    def all(self, name: str) -> list:
        return list(self.fields.get(name, []))

    def get(self, name: str, default=None):
        values = self.fields.get(name)
        return values[-1] if values else default

    def msg(self, name: str) -> TextMessage:
        """The nested message `name` (an empty one when absent, so defaults apply)."""
        value = self.get(name)
        if value is None:
            return TextMessage()
        if not isinstance(value, TextMessage):
            raise ModelFormatError(f"field '{name}' should be a message, got {value!r}")
        return value

    def msgs(self, name: str) -> list[TextMessage]:
        values = self.all(name)
        if any(not isinstance(v, TextMessage) for v in values):
            raise ModelFormatError(f"field '{name}' should hold messages")
        return values

    def str(self, name: str, default: str = "") -> str:
        value = self.get(name, default)
        if isinstance(value, TextMessage):
            raise ModelFormatError(f"field '{name}' should be a scalar, got a message")
        return str(value)

    def float(self, name: str, default: float = 0.0) -> float:
        return _number(name, self.get(name, default), float)

    def int(self, name: str, default: int = 0) -> int:
        return _number(name, self.get(name, default), int)

    def ints(self, name: str) -> list[int]:
        return [_number(name, v, int) for v in self.all(name)]

    def floats(self, name: str) -> list[float]:
        return [_number(name, v, float) for v in self.all(name)]

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, Ident) and value.lower() in ("true", "t", "false", "f"):
            return value.lower() in ("true", "t")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ModelFormatError(f"field '{name}' should be true or false, got {value!r}")

    def enum(self, name: str, names: dict[str, int], default: int) -> int:
        """An enum field given by name (`MAX`) or by number (`0`)."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, int):
            return value
        if isinstance(value, Ident) and value in names:
            return names[value]
        raise ModelFormatError(
            f"field '{name}': unknown value {value!r}; expected one of {sorted(names)}"
        )


def _number(name: str, value, kind):
    if isinstance(value, bool):
        return kind(value)
    if isinstance(value, (int, float)):
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ModelFormatError(f"field '{name}' should be an integer, got {value}")
            return int(value)
        return kind(value)
    if (
        kind is float
        and isinstance(value, Ident)
        and value.lstrip("+-").lower() in ("inf", "infinity", "nan")
    ):
        return float(value)
    raise ModelFormatError(f"field '{name}' should be a number, got {value!r}")


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        elif nxt.isdigit():
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, object, int]]:
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ModelFormatError(f"line {line}: cannot parse {text[pos : pos + 20]!r}")
        kind, raw = m.lastgroup, m.group()
        if kind == "string":
            try:
                tokens.append(("string", _unescape(raw[1:-1]), line))
            except (ValueError, AttributeError, IndexError):
                raise ModelFormatError(f"line {line}: bad escape in string {raw[:40]!r}") from None
        elif kind == "number":
            body = raw.rstrip("fF") if not raw.lower().startswith(("0x", "-0x", "+0x")) else raw
            if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", body):
                value: object = int(body, 16)
            elif re.fullmatch(r"[-+]?\d+", body):
                value = int(body)
            else:
                value = float(body)
            tokens.append(("number", value, line))
        elif kind != "space":
            tokens.append((kind, raw, line))
        line += raw.count("\n")
        pos = m.end()
    return tokens


def parse(text: str | bytes) -> TextMessage:
    """Parse protobuf text format into a `TextMessage` (`ModelFormatError` on bad syntax)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError("not a text prototxt (the bytes are not UTF-8)") from None
    tokens = _tokens(text)
    return _message(tokens, 0, None)[0]


def _message(tokens, pos: int, close: str | None) -> tuple[TextMessage, int]:
    msg = TextMessage()
    n = len(tokens)
    while True:
        if pos >= n:
            if close is not None:
                raise ModelFormatError(f"unexpected end of file: missing '{close}'")
            return msg, pos
        kind, value, line = tokens[pos]
        if kind == "punct" and value == close:
            return msg, pos + 1
        if kind == "punct" and value in ",;":
            pos += 1
            continue
        if kind != "ident":
            raise ModelFormatError(f"line {line}: expected a field name, got {value!r}")
        name = str(value)
        pos += 1
        colon = pos < n and tokens[pos][:2] == ("punct", ":")
        if colon:
            pos += 1
        if pos >= n:
            raise ModelFormatError(f"line {line}: field '{name}' has no value")
        kind, value, line = tokens[pos]
        if kind == "punct" and value in _CLOSE:
            sub, pos = _message(tokens, pos + 1, _CLOSE[value])
            msg.add(name, sub)
        elif kind == "punct" and value == "[" and colon:
            pos += 1
            while pos < n and tokens[pos][:2] != ("punct", "]"):
                if tokens[pos][:2] == ("punct", ","):
                    pos += 1
                    continue
                item, pos = _scalar(tokens, pos, name)
                msg.add(name, item)
            if pos >= n:
                raise ModelFormatError(f"line {line}: unterminated list for '{name}'")
            pos += 1
        elif colon:
            item, pos = _scalar(tokens, pos, name)
            msg.add(name, item)
        else:
            raise ModelFormatError(f"line {line}: expected ':' or '{{' after '{name}'")


def _scalar(tokens, pos: int, name: str):
    kind, value, line = tokens[pos]
    if kind == "string":
        parts = [value]
        pos += 1
        while pos < len(tokens) and tokens[pos][0] == "string":  # "a" "b" is "ab"
            parts.append(tokens[pos][1])
            pos += 1
        return "".join(parts), pos
    if kind == "number":
        return value, pos + 1
    if kind == "ident":
        return Ident(value), pos + 1
    if kind == "punct" and value in _CLOSE:
        return _message(tokens, pos + 1, _CLOSE[value])
    raise ModelFormatError(f"line {line}: bad value {value!r} for field '{name}'")
