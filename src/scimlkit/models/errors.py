"""Errors raised by `scimlkit.models`."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ScimlkitError


class ModelError(ScimlkitError):
    """Base class of errors raised by `scimlkit.models`."""


class ModelFormatError(ModelError, ValueError):
    """A model file is malformed, truncated, or not in the format it claims to be."""


#: What a reader's parsing raises on damaged bytes (index past the end, bad field, bad unpack);
#: readers turn these into `ModelFormatError` at their entry point.
DAMAGED_INPUT_ERRORS: tuple[type[Exception], ...] = (
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    OverflowError,
    ZeroDivisionError,
    UnicodeError,
    struct.error,
)


@dataclass(frozen=True)
class UnsupportedOp:
    """One operator (or layer) that scimlkit cannot run, and where it occurs."""

    op_type: str
    domain: str
    opset: int
    nodes: tuple[str, ...]
    reason: str = ""

    def describe(self) -> str:
        domain = self.domain or "ai.onnx"
        where = ", ".join(self.nodes[:5]) + (f", ... ({len(self.nodes)} nodes)" if len(self.nodes) > 5 else "")
        why = f": {self.reason}" if self.reason else ""
        return f"{domain}::{self.op_type} (opset {self.opset}) at {where}{why}"


class UnsupportedOperatorError(ModelError, NotImplementedError):
    """The model uses operators (or layers) scimlkit cannot run; all are listed at once."""

    def __init__(self, unsupported: list[UnsupportedOp], source: str = "model") -> None:
        self.unsupported = list(unsupported)
        lines = "\n".join(f"  - {u.describe()}" for u in self.unsupported)
        super().__init__(
            f"The {source} uses {len(self.unsupported)} unsupported operator(s):\n{lines}\n"
            "Please report them at the scimlkit issue tracker, with the model if you can share it."
        )


class DynamicShapeError(ModelError):
    """An op needs a value that is only known at run time while being traced (e.g. under jit)."""


class ModelInputError(ModelError, ValueError):
    """The inputs given to a model do not match its signature (names, count, dtype or rank)."""


class OpExecutionError(ModelError, RuntimeError):
    """A kernel failed while running a node; the message names the node and the cause."""
