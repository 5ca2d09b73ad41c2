"""Keras reader: `.keras` (Keras 3 zip), legacy full-model `.h5`, and JSON architecture + HDF5 weights.

The model's JSON config is walked layer by layer (Sequential, Functional, nested models,
shared layers) and each layer is lowered to ONNX-semantics nodes by the converters in
`keras_layers` / `keras_seq`. Weights are read with h5py. Nothing stored in the file is
ever executed: `Lambda` layers and custom classes are refused, all listed in one
`UnsupportedOperatorError`.
"""

from __future__ import annotations

import io
import json
import pathlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError, ModelFormatError, UnsupportedOp, UnsupportedOperatorError
from ..graph import Graph, GraphBuilder
from . import keras_layers, keras_seq  # noqa: F401  (registers converters)
from ._keras_weights import WeightSource, keras3_weights, legacy_weights
from ._nhwc import Value, set_outputs
from .keras_layers import CONVERTERS, WRAPPERS, LayerSpec

MODEL_CLASSES = {"Functional", "Model", "Sequential"}
_DAMAGED = (
    OSError,
    RuntimeError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    OverflowError,
    UnicodeError,
    AttributeError,
)
_IGNORED_KWARGS = {"training", "mask"}


def read_keras(
    path: str | pathlib.Path | bytes, weights: str | pathlib.Path | None = None, opset: int = 21
) -> Graph:
    """Read a Keras model into a `Graph` (channels-last inputs and outputs, as in Keras).

    `path` is a `.keras` archive, a full-model `.h5`, or a `.json` architecture (then
    `weights` names the `.h5`/`.weights.h5` file holding the weights), or such a file's bytes.

    **Example:**

    ```python
    graph = read_keras("resnet.keras")
    graph.input_names  # ['image']
    ```
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        source: Any = io.BytesIO(bytes(path))
        path = pathlib.Path("<bytes>")
    else:
        path = pathlib.Path(path)
        source = path
        if not path.exists():
            raise ModelFormatError(f"{path}: no such file")
        if path.is_dir():
            raise ModelFormatError(
                f"{path} is a directory, not a Keras file (.keras, .h5 or .json)"
            )
    try:
        config, wsource = _open(source, path, None if weights is None else pathlib.Path(weights))
        try:
            return _Converter(config, wsource, opset).run()
        finally:
            wsource.close()
    except ModelError:
        raise
    except _DAMAGED as exc:  # h5py/zipfile/json failures deep inside a damaged file
        raise ModelFormatError(
            f"{path}: damaged or unreadable Keras file ({type(exc).__name__}: {exc})"
        ) from exc


def _open(
    source: Any, path: pathlib.Path, weights: pathlib.Path | None
) -> tuple[dict, WeightSource]:
    """Config and weights of a Keras file; `source` is its path or a BytesIO, `path` names it in errors."""
    if zipfile.is_zipfile(source):
        try:
            with zipfile.ZipFile(source) as zf:
                config = _parse_json(zf.read("config.json"), path)
                blob = zf.read("model.weights.h5") if "model.weights.h5" in zf.namelist() else None
        except KeyError as exc:
            raise ModelFormatError(f"{path}: Keras archive without {exc.args[0]}") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelFormatError(f"{path}: damaged Keras archive ({exc})") from None
        if weights is not None:
            return config, _weights_file(weights)
        if blob is None:
            raise ModelFormatError(f"{path}: Keras archive without model.weights.h5")
        return config, keras3_weights(_h5(io.BytesIO(blob), path))
    data = source.getvalue() if isinstance(source, io.BytesIO) else path.read_bytes()
    head = data[:8]
    if head.startswith(b"\x89HDF"):
        f = _h5(source, path)
        raw = f.attrs.get("model_config")
        if raw is None:
            f.close()
            raise ModelFormatError(
                f"{path} holds only weights (no model_config); load the architecture JSON and pass this file "
                "as weights=, e.g. load('model.json', weights='model.weights.h5')"
            )
        config = _parse_json(raw, path)
        config.setdefault("keras_version", _text(f.attrs.get("keras_version", "")))
        if weights is not None:
            f.close()
            return config, _weights_file(weights)
        group = f.get("model_weights", f)
        return config, legacy_weights(group, owner=f)
    if path.suffix.lower() == ".json" or head.lstrip()[:1] == b"{":
        config = _parse_json(data, path)
        if weights is None:
            raise ModelFormatError(
                f"{path} is an architecture only; pass its weights file as weights="
            )
        return config, _weights_file(weights)
    raise ModelFormatError(
        f"{path}: not a Keras file (expected a .keras zip, an HDF5 .h5 or a .json config)"
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _h5(source: Any, path: pathlib.Path):
    import h5py

    try:
        return h5py.File(source, "r")
    except OSError as exc:
        raise ModelFormatError(f"{path}: unreadable HDF5 data ({exc})") from None


def _weights_file(path: pathlib.Path) -> WeightSource:
    if not path.exists():
        raise ModelFormatError(f"{path}: no such weights file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return keras3_weights(_h5(io.BytesIO(zf.read("model.weights.h5")), path))
    f = _h5(path, path)
    if "layers" in f and "layer_names" not in f.attrs:
        return keras3_weights(f)
    group = f.get("model_weights", f)
    return legacy_weights(group, owner=f)


def _parse_json(raw: bytes | str, path: pathlib.Path) -> dict:
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: the model config is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFormatError(
            f"{path}: the model config has no class_name; not a Keras model config"
        )
    return config


# --------------------------------------------------------------------------------------
# Config walking


@dataclass
class _Call:
    """One call of a layer (a node in Keras terms): its positional and keyword tensors."""

    layer: dict
    index: int
    args: Any
    kwargs: dict


def _model_layers(config: dict) -> list[dict]:
    inner = config.get("config", {})
    layers = inner.get("layers") if isinstance(inner, dict) else inner
    if not isinstance(layers, list):
        raise ModelFormatError(f"model {config.get('class_name')!r} config has no layer list")
    return layers


def _layer_name(layer: dict) -> str:
    return (
        layer.get("name") or layer.get("config", {}).get("name") or layer.get("class_name", "layer")
    )


def _walk_classes(config: dict) -> Iterator[tuple[str, str, dict]]:
    """Every (class_name, layer name, layer dict), recursing into nested models and wrappers."""
    for layer in _model_layers(config):
        cls = layer.get("class_name", "?")
        if cls in MODEL_CLASSES:
            yield from _walk_classes(layer)
            continue
        yield cls, _layer_name(layer), layer
        if cls in WRAPPERS:
            inner = layer.get("config", {}).get("layer")
            if isinstance(inner, dict):
                yield inner.get("class_name", "?"), _layer_name(layer), inner
            backward = layer.get("config", {}).get("backward_layer")
            if isinstance(backward, dict):
                yield backward.get("class_name", "?"), _layer_name(layer), backward


_REFUSED = {
    "Lambda": "runs Python code stored in the model file; scimlkit never executes stored code",
    "TFOpLambda": "wraps a raw TensorFlow op call stored as code; not executed",
    "SlicingOpLambda": "wraps a TensorFlow slicing call stored as code; not executed",
}


def _check_supported(config: dict) -> None:
    found: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    for cls, name, layer in _walk_classes(config):
        if cls in CONVERTERS or cls in WRAPPERS:
            unsupported_reason = keras_layers.unsupported_config(cls, layer.get("config", {}))
            if unsupported_reason is None:
                continue
            reasons[cls] = unsupported_reason
        elif cls in _REFUSED:
            reasons[cls] = _REFUSED[cls]
        else:
            reasons[cls] = "custom or unknown layer class (its code is not in the file)"
        found.setdefault(cls, []).append(name)
    if found:
        raise UnsupportedOperatorError(
            [
                UnsupportedOp(cls, "keras", 3, tuple(names), reasons[cls])
                for cls, names in found.items()
            ],
            source="Keras model",
        )


@dataclass
class _Scope:
    """Outputs of the layer calls of one (possibly nested) model."""

    outputs: dict[tuple[str, int], list[Value]] = field(default_factory=dict)


class _Converter:
    def __init__(self, config: dict, weights: WeightSource, opset: int) -> None:
        self.config = config
        self.weights = weights
        self.keras2 = str(config.get("keras_version", "")).startswith(("1.", "2."))
        self.b = GraphBuilder(opset=opset, name=config.get("config", {}).get("name", "keras_model"))

    def run(self) -> Graph:
        if self.config.get("class_name") not in MODEL_CLASSES:
            raise ModelFormatError(
                f"top-level Keras object is a {self.config.get('class_name')!r}, not a Sequential/Functional model"
            )
        _check_supported(self.config)
        inputs = self._graph_inputs(self.config)
        outputs = self._model(self.config, inputs, self.weights)
        names = self._output_names(self.config, len(outputs))
        set_outputs(
            self.b,
            [
                (v.last(self.b), name, v.dtype, v.shape)
                for v, name in zip(outputs, names, strict=True)
            ],
        )
        graph = self.b.build()
        graph.metadata["source_format"] = "keras"
        return graph

    # -- interface -----------------------------------------------------------------

    def _graph_inputs(self, config: dict) -> list[Value]:
        specs = _input_specs(config)
        values = []
        for name, shape, dtype in specs:
            dt = np.dtype(dtype)
            values.append(Value(self.b.input(name, dt, shape), tuple(shape), dt))
        return values

    def _output_names(self, config: dict, n: int) -> list[str]:
        if config["class_name"] == "Sequential":
            return [_layer_name(_model_layers(config)[-1])]
        refs = _refs(config["config"].get("output_layers", []))
        names = [r[0] for r in refs]
        if len(set(names)) != len(names):
            names = [f"{r[0]}_{r[2]}" for r in refs]
        return names if len(names) == n else [f"output_{i}" for i in range(n)]

    # -- models ------------------------------------------------------------------

    def _model(self, config: dict, inputs: list[Value], weights: WeightSource) -> list[Value]:
        if config["class_name"] == "Sequential":
            return self._sequential(config, inputs, weights)
        return self._functional(config, inputs, weights)

    def _sequential(self, config: dict, inputs: list[Value], weights: WeightSource) -> list[Value]:
        values = inputs
        for layer in _model_layers(config):
            if layer.get("class_name") == "InputLayer":
                continue
            values = self._apply(layer, values, {}, weights)
        return values

    def _functional(self, config: dict, inputs: list[Value], weights: WeightSource) -> list[Value]:
        cfg = config["config"]
        scope = _Scope()
        in_refs = _refs(cfg.get("input_layers", []))
        if len(in_refs) != len(inputs):
            raise ModelFormatError(
                f"model {cfg.get('name')!r} expects {len(in_refs)} inputs, got {len(inputs)}"
            )
        for ref, value in zip(in_refs, inputs, strict=True):
            scope.outputs[(ref[0], ref[1])] = [value]
        calls = [
            call
            for layer in cfg["layers"]
            if layer.get("class_name") != "InputLayer"
            for call in _calls(layer)
        ]
        while calls:
            pending = []
            for call in calls:
                try:
                    args = _resolve(call.args, scope)
                    kwargs = {
                        k: _resolve(v, scope)
                        for k, v in call.kwargs.items()
                        if k not in _IGNORED_KWARGS
                    }
                except KeyError:
                    pending.append(call)
                    continue
                flat = list(_flatten(args))
                scope.outputs[(_layer_name(call.layer), call.index)] = self._apply(
                    call.layer, flat, kwargs, weights
                )
            if len(pending) == len(calls):
                missing = ", ".join(sorted({_layer_name(c.layer) for c in pending}))
                raise ModelFormatError(
                    f"Keras graph has layers whose inputs are never produced: {missing}"
                )
            calls = pending
        outs = []
        for ref in _refs(cfg.get("output_layers", [])):
            try:
                outs.append(scope.outputs[(ref[0], ref[1])][ref[2]])
            except (KeyError, IndexError):
                raise ModelFormatError(
                    f"model output {ref[0]!r} is not produced by any layer"
                ) from None
        return outs

    def _apply(
        self, layer: dict, inputs: list[Value], kwargs: dict, weights: WeightSource
    ) -> list[Value]:
        cls = layer.get("class_name")
        name = _layer_name(layer)
        if cls in MODEL_CLASSES:
            return self._model(layer, inputs, weights.for_layer(name))
        spec = LayerSpec(cls, name, layer.get("config", {}), weights.for_layer(name), self.keras2)
        try:
            return CONVERTERS[cls](self.b, spec, inputs, kwargs)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            raise ModelFormatError(
                f"Keras layer {name!r} ({cls}): cannot convert its config or weights: {exc!r}"
            ) from exc


def _input_specs(config: dict) -> list[tuple[str, tuple, str]]:
    layers = _model_layers(config)
    if config["class_name"] == "Sequential":
        first = layers[0] if layers else {}
        cfg = first.get("config", {})
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is None and isinstance(config["config"], dict):
            build = config["config"].get("build_input_shape") or config.get("build_config", {}).get(
                "input_shape"
            )
            shape = build
        if shape is None:
            raise ModelFormatError(
                "Sequential model without a known input shape; cannot build its graph"
            )
        name = cfg.get("name", "input") if first.get("class_name") == "InputLayer" else "input"
        return [(name, tuple(shape), _dtype_name(cfg.get("dtype")))]
    by_name = {_layer_name(layer): layer for layer in layers}
    specs = []
    for ref in _refs(config["config"].get("input_layers", [])):
        layer = by_name.get(ref[0])
        if layer is None:
            raise ModelFormatError(f"model input {ref[0]!r} has no InputLayer")
        cfg = layer.get("config", {})
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is None:
            raise ModelFormatError(f"input {ref[0]!r} has no shape in its config")
        specs.append((ref[0], tuple(shape), _dtype_name(cfg.get("dtype"))))
    return specs


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    if not isinstance(dtype, str) or dtype.startswith("mixed_"):
        return "float32"
    return dtype


def _refs(obj: Any) -> list[tuple[str, int, int]]:
    """Normalise input_layers/output_layers: `[name, node, tensor]` or a list of them."""
    if isinstance(obj, list) and obj and isinstance(obj[0], str):
        obj = [obj]
    return [(str(r[0]), int(r[1]), int(r[2])) for r in obj]


def _calls(layer: dict) -> list[_Call]:
    calls = []
    for index, node in enumerate(layer.get("inbound_nodes", [])):
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            calls.append(_Call(layer, index, node.get("args", []), node.get("kwargs", {})))
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            args = [["__k2__", *entry[:3]] for entry in node]
            kwargs = (
                node[0][3] if node and len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
            )
            kwargs = {k: (["__k2__", *v[:3]] if _is_k2_ref(v) else v) for k, v in kwargs.items()}
            # Keras 2 numbers the calls of a nested model with its own Input after that Input's node.
            calls.append(
                _Call(
                    layer,
                    index + _first_node_offset(layer),
                    args if len(args) != 1 else args[0],
                    kwargs,
                )
            )
        else:
            raise ModelFormatError(f"layer {_layer_name(layer)!r} has a malformed inbound node")
    return calls


def _first_node_offset(layer: dict) -> int:
    """1 for a Keras 2 nested model that owns an Input (its node 0), else 0."""
    if layer.get("class_name") not in MODEL_CLASSES:
        return 0
    if layer["class_name"] != "Sequential":
        return 1
    inner = _model_layers(layer)
    first = inner[0] if inner else {}
    cfg = first.get("config", {})
    return int(
        first.get("class_name") == "InputLayer"
        or "batch_input_shape" in cfg
        or "batch_shape" in cfg
    )


def _is_k2_ref(v: Any) -> bool:
    return isinstance(v, list) and len(v) >= 3 and isinstance(v[0], str) and isinstance(v[1], int)


def _resolve(obj: Any, scope: _Scope) -> Any:
    """Replace tensor references in call arguments with `Value`s (KeyError if not yet produced)."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            layer, node, tensor = obj["config"]["keras_history"]
            return scope.outputs[(layer, node)][tensor]
        return {k: _resolve(v, scope) for k, v in obj.items()}
    if isinstance(obj, list):
        if obj and obj[0] == "__k2__":
            return scope.outputs[(obj[1], obj[2])][obj[3]]
        return [_resolve(v, scope) for v in obj]
    return obj


def _flatten(obj: Any) -> Iterator[Value]:
    if isinstance(obj, Value):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _flatten(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _flatten(item)
