"""Model file formats: a small registry of readers that each lower one format to a `Graph`.

`scimlkit.models.load` picks a reader by the `format=` argument, else by file extension,
else by sniffing the content. A reader is a function

```python
def read_myformat(source, *, weights=None, **kwargs) -> Graph: ...
```

where `source` is a path (file or folder) or `bytes`, and `weights` an optional second file
(Caffe `.caffemodel`, MXNet `.params`, Keras weights `.h5`). It must raise `ModelFormatError`
for damaged input and `UnsupportedOperatorError` (all at once) for layers it cannot lower,
and must never execute code stored in the file.

Built-in formats are listed in `_BUILTIN` and imported lazily (a format whose module or
dependency is missing says so when used). Plugins register more at run time:

```python
from scimlkit.models.formats import register_format
register_format(
    "myformat",
    extensions=(".myf",),
    sniff=lambda path, head: head.startswith(b"MYF1"),   # path: Path or None, head: first 64 bytes
    reader=read_myformat,                                # or "package.module:function" (lazy)
)
```
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFormatError

__all__ = ["FormatSpec", "detect_format", "formats", "get_format", "register_format"]

Sniffer = Callable[[Path | None, bytes], bool]


@dataclass(frozen=True)
class FormatSpec:
    """One registered format: name, file extensions, content sniffer and reader."""

    name: str
    extensions: tuple[str, ...]
    sniff: Sniffer | None
    reader: Callable[..., Any] | str

    def load_reader(self) -> Callable[..., Any]:
        """The reader function (imports it on first use if registered as a dotted path)."""
        if callable(self.reader):
            return self.reader
        module_name, _, attr = self.reader.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("scimlkit"):
                raise ModelFormatError(f"the {self.name} reader is not available in this version of scimlkit") from None
            from ...errors import MissingDependencyError

            raise MissingDependencyError(exc.name or module_name, "models", f"reading {self.name} files") from exc
        return getattr(module, attr)


_FORMATS: dict[str, FormatSpec] = {}


def register_format(
    name: str,
    extensions: tuple[str, ...] | list[str] = (),
    sniff: Sniffer | None = None,
    reader: Callable[..., Any] | str | None = None,
    *,
    replace: bool = False,
) -> FormatSpec:
    """Register a reader for a model format (see the module docstring)."""
    if reader is None:
        raise ValueError("register_format needs a reader")
    if name in _FORMATS and not replace:
        raise ValueError(f"format '{name}' is already registered (pass replace=True to override)")
    spec = FormatSpec(name, tuple(e.lower() for e in extensions), sniff, reader)
    _FORMATS[name] = spec
    return spec


def formats() -> dict[str, FormatSpec]:
    """All registered formats by name."""
    return dict(_FORMATS)


def get_format(name: str) -> FormatSpec:
    """The registered format called `name`; `ModelFormatError` listing the known ones otherwise."""
    try:
        return _FORMATS[name.lower()]
    except KeyError:
        raise ModelFormatError(f"unknown model format '{name}'; known formats: {sorted(_FORMATS)}") from None


def detect_format(source: Any) -> FormatSpec:
    """Pick the format of `source` (path or bytes): extension first, then content sniffing."""
    path: Path | None = None
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:64])
    else:
        path = Path(os.fspath(source))
        if not path.exists():
            raise ModelFormatError(f"{path}: no such file or folder")
        head = b""
        if path.is_file():
            with open(path, "rb") as f:
                head = f.read(64)
        name = path.name.lower()
        matches = [s for s in _FORMATS.values() if any(name.endswith(ext) for ext in s.extensions)]
        if len(matches) == 1:
            return matches[0]
        for spec in matches:  # an extension several formats use (.pb, .json, .h5): let content decide
            if spec.sniff is not None and _safe_sniff(spec, path, head):
                return spec
    for spec in _FORMATS.values():
        if spec.sniff is not None and _safe_sniff(spec, path, head):
            return spec
    what = str(path) if path is not None else "the given bytes"
    raise ModelFormatError(
        f"cannot tell the model format of {what}; pass format= one of {sorted(_FORMATS)}"
    )


def _safe_sniff(spec: FormatSpec, path: Path | None, head: bytes) -> bool:
    try:
        return bool(spec.sniff(path, head))  # type: ignore[misc]
    except Exception:
        return False


# ---------------------------------------------------------------- built-in sniffers
def _sniff_onnx(path: Path | None, head: bytes) -> bool:
    from .onnx import sniff_onnx

    return (path is None or path.is_file()) and sniff_onnx(head)


def _sniff_keras(path: Path | None, head: bytes) -> bool:
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return True
    if head.startswith(b"PK") and path is not None:
        import zipfile

        try:
            with zipfile.ZipFile(path) as z:
                return "config.json" in z.namelist()
        except zipfile.BadZipFile:
            return False
    return False


def _sniff_tensorflow(path: Path | None, head: bytes) -> bool:
    if path is not None and path.is_dir():
        return (path / "saved_model.pb").is_file()
    return head[:1] == b"\x0a"  # a frozen GraphDef starts with its first `node` field


def _sniff_tflite(path: Path | None, head: bytes) -> bool:
    return head[4:8] == b"TFL3"


def _sniff_caffe(path: Path | None, head: bytes) -> bool:
    if path is not None and path.is_file():  # look past leading comment lines
        with open(path, "rb") as f:
            head = f.read(4096)
    lines = [line.strip() for line in head.splitlines()]
    text = b" ".join(line for line in lines if line and not line.startswith(b"#"))
    return text.startswith((b"name:", b"layer {", b"input:", b"layers {", b"layer{", b"layers{"))


def _sniff_mxnet(path: Path | None, head: bytes) -> bool:
    if path is not None and path.name.lower().endswith("-symbol.json"):
        return True
    from .mxnet import sniff_mxnet

    return sniff_mxnet(head)


_BUILTIN: tuple[tuple[str, tuple[str, ...], Sniffer, str], ...] = (
    ("onnx", (".onnx", ".onnx.pb"), _sniff_onnx, "scimlkit.models.formats.onnx:read_onnx"),
    ("keras", (".keras", ".h5", ".hdf5"), _sniff_keras, "scimlkit.models.formats.keras:read_keras"),
    ("tensorflow", (".pb", ".savedmodel"), _sniff_tensorflow, "scimlkit.models.formats.tensorflow:read_tensorflow"),
    ("tflite", (".tflite",), _sniff_tflite, "scimlkit.models.formats.tflite:read_tflite"),
    ("caffe", (".prototxt", ".caffemodel"), _sniff_caffe, "scimlkit.models.formats.caffe:read_caffe"),
    ("mxnet", ("-symbol.json",), _sniff_mxnet, "scimlkit.models.formats.mxnet:read_mxnet"),
)

for _name, _ext, _sniff, _reader in _BUILTIN:
    register_format(_name, _ext, _sniff, _reader)
