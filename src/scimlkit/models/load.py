"""`load`: any supported model file -> `Model`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .formats import detect_format, get_format
from .graph import Graph
from .model import Model
from .passes import optimize
from .runtime import check_supported

__all__ = ["load", "load_graph"]


def load_graph(
    source: str | os.PathLike | bytes,
    format: str | None = None,
    weights: str | os.PathLike | None = None,
    *,
    optimize_graph: bool = True,
    **kwargs: Any,
) -> Graph:
    """Read a model file into a `Graph` and check every op has a kernel (see `load`)."""
    spec = get_format(format) if format else detect_format(source)
    reader = spec.load_reader()
    if weights is not None:
        kwargs["weights"] = weights
    try:
        graph = reader(source, **kwargs)
    except (MemoryError, RecursionError) as exc:
        raise ModelFormatError(f"{_describe(source)}: cannot read the model ({type(exc).__name__})") from None
    if not isinstance(graph, Graph):  # pragma: no cover - a reader bug
        raise TypeError(f"the {spec.name} reader returned {type(graph).__name__}, not a Graph")
    graph.metadata.setdefault("format", spec.name)
    if optimize_graph:
        graph = optimize(graph)
    check_supported(graph, f"{spec.name} model {_describe(source)}")
    return graph


def load(
    source: str | os.PathLike | bytes,
    format: str | None = None,
    weights: str | os.PathLike | None = None,
    *,
    trainable: Callable[[str, np.ndarray], bool] | None = None,
    optimize_graph: bool = True,
    **kwargs: Any,
) -> Model:
    """Load a model file (ONNX, Keras, TensorFlow, TFLite, Caffe, MXNet) as a JAX `Model`.

    **Arguments:**

    - `source`: path to the file (or folder, for a SavedModel), or the file's bytes.
    - `format`: `"onnx"`, `"keras"`, ... (default: from the extension, else the content).
    - `weights`: a separate weights file where the format has one (`.caffemodel`, `.params`).
    - `trainable`: which constants become parameters (see `Model`).
    - `optimize_graph`: run the clean-up passes (`scimlkit.models.passes.optimize`).
    - further keyword arguments go to the format's reader.

    Every op the model uses is checked before anything runs: the ones without a kernel are
    all listed in one `UnsupportedOperatorError`. A damaged file raises `ModelFormatError`.
    Nothing stored in the file is executed.

    **Example:**

    ```python
    import numpy as np
    import scimlkit.models as sm
    model = sm.load("mobilenetv2.onnx")
    model.summary()
    probs = model(np.random.rand(1, 3, 224, 224).astype(np.float32))
    ```
    """
    graph = load_graph(source, format, weights, optimize_graph=optimize_graph, **kwargs)
    return Model(graph, trainable=trainable)


def _describe(source: Any) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return str(Path(os.fspath(source)))
