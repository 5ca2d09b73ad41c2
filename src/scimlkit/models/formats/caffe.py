"""Caffe reader: a deploy `.prototxt` and its `.caffemodel`, without Caffe or compiled protos.

The prototxt (protobuf text format, read by `_caffe_text`) gives the net: inputs, layers,
their parameters and connections. The binary caffemodel (a `NetParameter`, decoded by the
wire-format reader `_protowire` with field numbers from Caffe's public `caffe.proto`)
gives each layer's blobs, matched by layer name. Both the current `layer {}` and the
legacy V1 `layers {}` definitions (enum layer types, 4-D num/channels/height/width blobs)
are read. Layers are lowered by `caffe_layers` to ONNX-semantics nodes; Caffe is NCHW, so
no layout changes are needed. Graph inputs and outputs carry the Caffe blob names.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import (
    DAMAGED_INPUT_ERRORS,
    ModelError,
    ModelFormatError,
    UnsupportedOp,
    UnsupportedOperatorError,
)
from ..graph import Graph, GraphBuilder
from . import _caffe_text as text
from ._nhwc import set_outputs
from ._protowire import Message

__all__ = ["read_caffe"]

# V1LayerParameter.LayerType -> the layer type name of the current format.
V1_TYPES = {
    0: "None", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat", 37: "ContrastiveLoss",
    4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout", 32: "DummyData", 7: "EuclideanLoss",
    25: "Eltwise", 38: "Exp", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss",
    11: "Im2col", 12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU", 19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split",
    33: "Slice", 23: "TanH", 24: "WindowData", 31: "Threshold",
}  # fmt: skip
V1_NAMES = {
    "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
    "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
    "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28,
    "IM2COL": 11, "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
    "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18, "SIGMOID": 19,
    "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22,
    "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
}  # fmt: skip
_PHASES = {"TRAIN": 0, "TEST": 1}


@dataclass
class Layer:
    """One Caffe layer as the lowering sees it (V1 layers converted to current type names)."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: text.TextMessage
    blobs: list[np.ndarray] = field(default_factory=list)

    def param(self, name: str) -> text.TextMessage:
        """The layer's `<name>_param` message (empty, so defaults apply, when absent)."""
        return self.params.msg(name)


def read_caffe(
    source: str | os.PathLike | bytes,
    *,
    weights: str | os.PathLike | bytes | None = None,
    opset: int = 21,
) -> Graph:
    """Read a Caffe deploy `.prototxt` and its weights (`.caffemodel`) into a `Graph`.

    **Arguments:**

    - `source`: the deploy `.prototxt` (path or its bytes), or the `.caffemodel` path, whose
      prototxt is then looked for beside it (same stem, else `deploy.prototxt`, else the
      folder's only `.prototxt`).
    - `weights`: the `.caffemodel` (path or bytes). Default: the `.caffemodel` with the
      prototxt's stem in the same folder.

    Unknown layers and `Python` layers (whose code would have to run) are all reported in
    one `UnsupportedOperatorError`; damaged files raise `ModelFormatError`.

    **Example:**

    ```python
    graph = read_caffe("deploy.prototxt", weights="bvlc_alexnet.caffemodel")
    graph.inputs[0].describe()  # 'data: float32[10,3,227,227]'
    ```
    """
    prototxt, weights_data, where = _sources(source, weights)
    try:
        net = text.parse(prototxt)
        blobs = read_blobs(weights_data)
        return _Reader(net, blobs, opset, where).run()
    except ModelError as exc:
        if isinstance(exc, ModelFormatError) and not str(exc).startswith(where):
            raise ModelFormatError(f"{where}: {exc}") from None
        raise
    except DAMAGED_INPUT_ERRORS as exc:
        raise ModelFormatError(
            f"{where}: damaged Caffe model ({type(exc).__name__}: {exc})"
        ) from exc


def _sources(source, weights) -> tuple[bytes, bytes, str]:
    """(prototxt bytes, caffemodel bytes, a description for messages)."""
    proto_path: pathlib.Path | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        prototxt, where = bytes(source), "<prototxt bytes>"
    else:
        path = pathlib.Path(os.fspath(source))
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        if path.suffix.lower() == ".caffemodel":
            if weights is None:
                weights = path
            proto_path = _find_prototxt(path)
        else:
            proto_path = path
        prototxt, where = proto_path.read_bytes(), str(proto_path)
    if weights is None:
        if proto_path is None:
            raise ModelFormatError(
                "no weights: pass weights= with the .caffemodel file when the prototxt is given as bytes"
            )
        weights = proto_path.with_suffix(".caffemodel")
        if not weights.is_file():
            raise ModelFormatError(
                f"{proto_path}: no weights file {weights.name} beside it; "
                "pass weights='path/to/net.caffemodel' to name the .caffemodel"
            )
    if isinstance(weights, (bytes, bytearray, memoryview)):
        return prototxt, bytes(weights), where
    weights = pathlib.Path(os.fspath(weights))
    if not weights.is_file():
        raise ModelFormatError(f"weights file {weights}: no such file")
    return prototxt, weights.read_bytes(), where


def _find_prototxt(caffemodel: pathlib.Path) -> pathlib.Path:
    folder = caffemodel.parent
    for candidate in (caffemodel.with_suffix(".prototxt"), folder / "deploy.prototxt"):
        if candidate.is_file():
            return candidate
    found = sorted(folder.glob("*.prototxt"))
    if len(found) == 1:
        return found[0]
    raise ModelFormatError(
        f"{caffemodel}: a .caffemodel holds the weights only; no {caffemodel.stem}.prototxt or "
        f"deploy.prototxt beside it ({len(found)} other .prototxt files): pass the deploy "
        "prototxt as the source and the .caffemodel as weights="
    )


# ---------------------------------------------------------------- binary weights
def read_blobs(data: bytes) -> dict[str, list[np.ndarray]]:
    """Blobs of every layer in a binary `NetParameter` (`.caffemodel`), by layer name."""
    net = Message(data)
    result: dict[str, list[np.ndarray]] = {}
    layers = [(m.str(1), m.msgs(7)) for m in net.msgs(100)]  # LayerParameter: name, blobs
    for v1 in net.msgs(
        2
    ):  # V1LayerParameter: name 4, blobs 6; V0 inside `layer` (1): name 1, blobs 50
        v0 = v1.msg(1)
        layers.append(
            (v1.str(4) or (v0.str(1) if v0 else ""), v1.msgs(6) or (v0.msgs(50) if v0 else []))
        )
    if not layers and data and not net.has(1):
        raise ModelFormatError("the weights file is not a Caffe NetParameter (no layers)")
    for name, blobs in layers:
        if blobs:
            result[name] = [_blob(name, b) for b in blobs]
    return result


def _blob(layer: str, blob: Message) -> np.ndarray:
    """A BlobProto: shape (7) or legacy num/channels/height/width (1-4); float (5) or double (8) data."""
    if blob.has(7):
        shape = [int(d) for d in (blob.msg(7) or Message()).ints(1)]
    else:
        shape = [blob.int(i) for i in (1, 2, 3, 4)]
    data = blob.packed(5, "<f4")
    if data.size == 0 and blob.has(8):
        data = blob.packed(8, "<f8").astype(np.float32)
    count = int(np.prod(shape)) if shape else 1
    if data.size != count:
        raise ModelFormatError(
            f"layer '{layer}': a blob of shape {shape} holds {data.size} values (damaged or truncated weights?)"
        )
    return data.reshape(shape)


# ---------------------------------------------------------------- net structure
def _layers(net: text.TextMessage, blobs: dict[str, list[np.ndarray]]) -> list[Layer]:
    layers = []
    for msg in net.msgs("layer"):
        layers.append(
            Layer(msg.str("name"), msg.str("type"), msg.all("bottom"), msg.all("top"), msg)
        )
    for msg in net.msgs("layers"):
        kind = msg.enum("type", V1_NAMES, 0)
        type_name = V1_TYPES.get(kind, f"V1:{msg.str('type')}")
        layers.append(Layer(msg.str("name"), type_name, msg.all("bottom"), msg.all("top"), msg))
    if net.has("layer") and net.has("layers"):
        raise ModelFormatError("the prototxt mixes `layer {}` and legacy `layers {}` definitions")
    kept = []
    for i, layer in enumerate(layers):
        if not _in_test_phase(layer.params):
            continue
        layer.name = layer.name or f"layer{i}"
        if any(not isinstance(n, str) for n in (*layer.bottoms, *layer.tops)):
            raise ModelFormatError(f"layer '{layer.name}': bottom and top must be strings")
        layer.blobs = blobs.get(layer.name, [])
        kept.append(layer)
    return kept


def _in_test_phase(params: text.TextMessage) -> bool:
    """Caffe's NetStateRule check for the deploy state (phase TEST, level 0, no stages)."""

    def meets(rule: text.TextMessage) -> bool:
        if rule.has("phase") and rule.enum("phase", _PHASES, 1) != 1:
            return False
        if rule.has("min_level") and rule.int("min_level") > 0:
            return False
        if rule.has("max_level") and rule.int("max_level") < 0:
            return False
        return not rule.has("stage")

    includes, excludes = params.msgs("include"), params.msgs("exclude")
    if includes and not any(meets(r) for r in includes):
        return False
    return not any(meets(r) for r in excludes)


def _declared_inputs(net: text.TextMessage) -> list[tuple[str, tuple[int, ...]]]:
    names = net.all("input")
    shapes = [tuple(s.ints("dim")) for s in net.msgs("input_shape")]
    dims = net.ints("input_dim")
    if not shapes and dims:
        if len(dims) != 4 * len(names):
            raise ModelFormatError(
                f"{len(dims)} input_dim values for {len(names)} inputs (4 each expected)"
            )
        shapes = [tuple(dims[4 * i : 4 * i + 4]) for i in range(len(names))]
    if len(shapes) != len(names):
        raise ModelFormatError(f"{len(names)} net inputs but {len(shapes)} input shapes")
    return list(zip(names, shapes, strict=True))


class _Reader:
    def __init__(
        self, net: text.TextMessage, blobs: dict[str, list[np.ndarray]], opset: int, where: str
    ):
        from .caffe_layers import LAYERS

        self.lowerings = LAYERS
        self.net = net
        self.layers = _layers(net, blobs)
        self.where = where
        self.b = GraphBuilder(opset=opset, name=net.str("name") or "caffe")

    def run(self) -> Graph:
        from .caffe_layers import Context

        self._check_supported()
        inputs = _declared_inputs(self.net)
        input_layers = [layer for layer in self.layers if layer.type == "Input"]
        for layer in input_layers:
            shapes = [tuple(s.ints("dim")) for s in layer.param("input_param").msgs("shape")]
            if len(shapes) == 1:
                shapes = shapes * len(layer.tops)
            if len(shapes) != len(layer.tops):
                raise ModelFormatError(
                    f"Input layer '{layer.name}': {len(layer.tops)} tops, {len(shapes)} shapes"
                )
            inputs += list(zip(layer.tops, shapes, strict=True))
        if not inputs:
            raise ModelFormatError(
                "the net declares no inputs (no `input:` fields and no Input layer)"
            )
        ctx = Context(self.b)
        for name, shape in inputs:
            if any(d <= 0 for d in shape):
                raise ModelFormatError(
                    f"input '{name}' has shape {list(shape)}: every dimension must be positive"
                )
            ctx.env[name] = (self.b.input(name, np.float32, shape), shape)
        produced: list[str] = [name for name, _ in inputs]
        for (
            layer
        ) in self.layers:  # keep blob names free for the outputs (set_outputs renames into them)
            for top in layer.tops:
                if top not in ctx.env:
                    self.b.unique(top)
        for layer in self.layers:
            if layer.type == "Input":
                continue
            for bottom in layer.bottoms:
                if bottom not in ctx.env:
                    raise ModelFormatError(
                        f"layer '{layer.name}' reads blob '{bottom}' before any layer produces it"
                    )
            ctx.layer = layer
            self.lowerings[layer.type](ctx, layer)
            produced += [t for t in layer.tops if t not in produced]
        consumed = {
            bottom for layer in self.layers for bottom in layer.bottoms if bottom not in layer.tops
        }
        outputs = [name for name in produced if name not in consumed and name not in dict(inputs)]
        set_outputs(
            self.b, [(ctx.env[n][0], n, np.dtype(np.float32), ctx.env[n][1]) for n in outputs]
        )
        graph = self.b.build()
        graph.metadata["source_format"] = "caffe"
        return graph

    def _check_supported(self) -> None:
        missing: dict[str, list[str]] = {}
        for layer in self.layers:
            if layer.type not in self.lowerings and layer.type != "Input":
                missing.setdefault(layer.type, []).append(layer.name)
        if missing:
            reasons = {"Python": "Python layers run user code, which scimlkit never executes"}
            raise UnsupportedOperatorError(
                [
                    UnsupportedOp(kind, "caffe", 0, tuple(names), reasons.get(kind, ""))
                    for kind, names in missing.items()
                ],
                source=f"Caffe model {self.where}",
            )
