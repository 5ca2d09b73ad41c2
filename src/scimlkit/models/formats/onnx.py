"""Reader for ONNX model files (`.onnx`): `ModelProto` -> `Graph`.

Everything the file holds is translated to plain Python and NumPy values:

- initializers (dense and sparse), including tensors in external data files (their
  `location` is resolved relative to the model file and may not leave its folder);
- `Constant` nodes stay nodes (the runtime folds them; `Model` turns large float ones
  into parameters, like initializers);
- subgraph attributes (If branches, Loop/Scan bodies) become nested `Graph`s;
- every ONNX element type is mapped through `onnx.helper.tensor_dtype_to_np_dtype`
  (bfloat16, float8, int4/uint4, float4 come as `ml_dtypes` arrays; strings as `object`);
- sequence, optional and map value infos keep their kind in `ValueInfo.kind`;
- model-local functions are inlined.

A file that is not valid protobuf, is truncated, or references missing data raises
`ModelFormatError`; reading never executes anything from the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFormatError
from ..graph import Graph, Node, ValueInfo

__all__ = ["graph_from_proto", "read_onnx", "sniff_onnx", "tensor_to_numpy", "type_to_value_info"]


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is part of the models extra
        from ...errors import MissingDependencyError

        raise MissingDependencyError("onnx", "models", "reading ONNX files") from exc
    return onnx


def sniff_onnx(head: bytes) -> bool:
    """Heuristic content check: does `head` look like a serialized ModelProto?

    A ModelProto normally starts with field 1 (`ir_version`, varint: byte 0x08).
    """
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x80


def read_onnx(source: Any, *, base_dir: str | os.PathLike | None = None, **_: Any) -> Graph:
    """Read an ONNX model from a path, bytes or `onnx.ModelProto` into a `Graph`.

    **Arguments:**

    - `source`: file path, serialized bytes, or a `ModelProto`.
    - `base_dir`: folder that external data locations are relative to (default: the
      model file's folder; the current directory for bytes).

    **Example:**

    ```python
    from scimlkit.models.formats.onnx import read_onnx
    graph = read_onnx("model.onnx")
    print(graph.op_histogram())
    ```
    """
    onnx = _onnx()
    if isinstance(source, onnx.ModelProto):
        model = source
        where = "<ModelProto>"
    else:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            where = "<bytes>"
        else:
            path = Path(source)
            where = str(path)
            if not path.is_file():
                raise ModelFormatError(f"{path}: no such file (expected an ONNX model file)")
            data = path.read_bytes()
            if base_dir is None:
                base_dir = path.parent
        model = _parse_model(data, where)
    if base_dir is None:
        base_dir = Path.cwd()
    return graph_from_proto(model, base_dir=Path(base_dir), where=where)


def _parse_model(data: bytes, where: str):
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelFormatError(f"{where}: the file is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(
            f"{where}: not a valid ONNX model (protobuf decoding failed: {exc}). "
            "The file may be truncated or in another format; re-export or re-download it."
        ) from None
    if not model.HasField("graph"):
        raise ModelFormatError(f"{where}: the ONNX model has no graph (truncated or not an ONNX file)")
    return model


def graph_from_proto(model: Any, *, base_dir: Path | None = None, where: str = "<model>") -> Graph:
    """Translate a parsed `onnx.ModelProto` into a `Graph` (see the module docstring)."""
    onnx = _onnx()
    if model.functions:
        import onnx.inliner

        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelFormatError(f"{where}: cannot inline the model's local functions: {exc}") from None
    opsets: dict[str, int] = {}
    for imp in model.opset_import:
        domain = "" if imp.domain in ("", "ai.onnx") else imp.domain
        opsets[domain] = int(imp.version)
    if "" not in opsets and model.ir_version and model.ir_version < 3:
        opsets[""] = 1
    reader = _Reader(base_dir or Path.cwd(), where)
    graph = reader.graph(model.graph, opsets)
    _check_defined(graph, where)
    graph.metadata.update(
        {
            "format": "onnx",
            "ir_version": str(model.ir_version),
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
        }
    )
    for prop in model.metadata_props:
        graph.metadata[f"meta:{prop.key}"] = prop.value
    if model.doc_string:
        graph.doc = model.doc_string
    return graph


def tensor_to_numpy(tensor: Any, base_dir: Path | None = None, where: str = "<model>") -> np.ndarray:
    """Convert a `TensorProto` (possibly with external data) to a NumPy array."""
    return _Reader(base_dir or Path.cwd(), where).tensor(tensor)


def type_to_value_info(name: str, type_proto: Any) -> ValueInfo:
    """Translate an ONNX `TypeProto` into a `ValueInfo` (kind, element dtype, shape)."""
    onnx = _onnx()
    which = type_proto.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        tt = getattr(type_proto, which)
        dtype = None
        if tt.elem_type:
            try:
                dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            except (KeyError, ValueError):
                dtype = None
        shape = None
        if tt.HasField("shape"):
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
            )
        return ValueInfo(name, dtype, shape, "tensor")
    if which in ("sequence_type", "optional_type"):
        inner = type_to_value_info(name, getattr(type_proto, which).elem_type)
        kind = "sequence" if which == "sequence_type" else "optional"
        return ValueInfo(name, inner.dtype, inner.shape, kind if inner.kind == "tensor" else f"{kind}<{inner.kind}>")
    if which == "map_type":
        return ValueInfo(name, None, None, "map")
    return ValueInfo(name, None, None, "tensor")


class _Reader:
    def __init__(self, base_dir: Path, where: str) -> None:
        self.base_dir = Path(base_dir)
        self.where = where
        self.onnx = _onnx()

    # tensors ---------------------------------------------------------------
    def tensor(self, t: Any) -> np.ndarray:
        onnx = self.onnx
        try:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                return self._external(t)
            if t.data_type == onnx.TensorProto.UNDEFINED:
                raise ModelFormatError(f"{self.where}: tensor '{t.name}' has no element type")
            return onnx.numpy_helper.to_array(t)
        except ModelFormatError:
            raise
        except Exception as exc:
            raise ModelFormatError(f"{self.where}: cannot decode tensor '{t.name}': {exc}") from None

    def _external(self, t: Any) -> np.ndarray:
        onnx = self.onnx
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location")
        if not location:
            raise ModelFormatError(f"{self.where}: tensor '{t.name}' is stored externally but names no file")
        base = self.base_dir.resolve()
        path = (base / location).resolve()
        if os.path.isabs(location) or (base != path and base not in path.parents):
            raise ModelFormatError(
                f"{self.where}: tensor '{t.name}' points at '{location}', outside the model's folder; "
                "external data must live next to the model file"
            )
        if not path.is_file():
            raise ModelFormatError(
                f"{self.where}: external data file '{location}' of tensor '{t.name}' is missing "
                f"(looked in {base}); keep the data file next to the model"
            )
        offset = int(info.get("offset", 0) or 0)
        size = path.stat().st_size
        length = int(info["length"]) if info.get("length") else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelFormatError(
                f"{self.where}: external data for '{t.name}' ({location}, offset {offset}, length {length}) "
                f"runs past the end of the file ({size} bytes); the file is truncated"
            )
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
        shape = tuple(int(d) for d in t.dims)
        count = int(np.prod(shape, dtype=np.int64))
        if dtype.kind in "fiub" and dtype.itemsize * count == length:
            with open(path, "rb") as f:
                f.seek(offset)
                arr = np.fromfile(f, dtype=dtype.newbyteorder("<"), count=count)
            return arr.astype(dtype, copy=False).reshape(shape)
        with open(path, "rb") as f:  # packed types (int4, float4): let onnx unpack raw bytes
            f.seek(offset)
            raw = f.read(length)
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        del copy.external_data[:]
        copy.data_location = onnx.TensorProto.DEFAULT
        copy.raw_data = raw
        return onnx.numpy_helper.to_array(copy)

    def sparse(self, s: Any) -> np.ndarray:
        values = self.tensor(s.values)
        indices = self.tensor(s.indices).astype(np.int64)
        shape = tuple(int(d) for d in s.dims)
        dense = np.zeros(shape, dtype=values.dtype)
        if indices.ndim == 1:  # linearised indices
            dense.reshape(-1)[indices] = values
        else:
            dense[tuple(indices.T)] = values
        return dense

    # attributes -------------------------------------------------------------
    def attribute(self, a: Any, opsets: dict[str, int]) -> Any:
        A = self.onnx.AttributeProto
        kind = a.type
        if kind == A.FLOAT:
            return float(a.f)
        if kind == A.INT:
            return int(a.i)
        if kind == A.STRING:
            return _decode(a.s)
        if kind == A.TENSOR:
            return self.tensor(a.t)
        if kind == A.SPARSE_TENSOR:
            return self.sparse(a.sparse_tensor)
        if kind == A.GRAPH:
            return self.graph(a.g, opsets)
        if kind == A.TYPE_PROTO:
            return type_to_value_info("", a.tp)
        if kind == A.FLOATS:
            return [float(x) for x in a.floats]
        if kind == A.INTS:
            return [int(x) for x in a.ints]
        if kind == A.STRINGS:
            return [_decode(x) for x in a.strings]
        if kind == A.TENSORS:
            return [self.tensor(t) for t in a.tensors]
        if kind == A.SPARSE_TENSORS:
            return [self.sparse(t) for t in a.sparse_tensors]
        if kind == A.GRAPHS:
            return [self.graph(g, opsets) for g in a.graphs]
        if kind == A.TYPE_PROTOS:
            return [type_to_value_info("", t) for t in a.type_protos]
        if a.ref_attr_name:
            raise ModelFormatError(f"{self.where}: attribute '{a.name}' references a function attribute outside a function")
        raise ModelFormatError(f"{self.where}: attribute '{a.name}' has an unknown type ({kind})")

    # graphs -----------------------------------------------------------------
    def graph(self, g: Any, opsets: dict[str, int]) -> Graph:
        initializers: dict[str, np.ndarray] = {}
        for t in g.initializer:
            initializers[t.name] = self.tensor(t)
        for s in g.sparse_initializer:
            initializers[s.values.name] = self.sparse(s)
        inputs = [type_to_value_info(v.name, v.type) for v in g.input if v.name not in initializers]
        outputs = [type_to_value_info(v.name, v.type) for v in g.output]
        nodes: list[Node] = []
        for i, n in enumerate(g.node):
            domain = "" if n.domain in ("", "ai.onnx") else n.domain
            attrs = {a.name: self.attribute(a, opsets) for a in n.attribute}
            nodes.append(Node(n.op_type, list(n.input), list(n.output), attrs, domain, n.name or f"{n.op_type}_{i}"))
        graph = Graph(
            nodes=nodes,
            inputs=inputs,
            outputs=outputs,
            initializers=initializers,
            opsets=dict(opsets),
            name=g.name or "graph",
            doc=g.doc_string,
            value_info={v.name: type_to_value_info(v.name, v.type) for v in g.value_info},
        )
        return graph


def _decode(b: bytes) -> str | bytes:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def _check_defined(graph: Graph, where: str, outer: Iterable[str] = ()) -> None:
    """Every node input must be a graph input, initializer, earlier output or outer value."""
    known = set(outer) | set(graph.input_names) | set(graph.initializers) | {""}
    for node in graph.nodes:
        missing = [name for name in node.inputs if name not in known]
        if missing:
            raise ModelFormatError(
                f"{where}: node '{node.name}' ({node.op_type}) reads {missing}, which no earlier node, "
                "input or initializer defines (the graph is not in topological order, or the file is damaged)"
            )
        for sub in node.subgraphs():
            _check_defined(sub, where, known)
        known.update(node.outputs)
    missing_out = [v.name for v in graph.outputs if v.name not in known]
    if missing_out:
        raise ModelFormatError(f"{where}: graph outputs {missing_out} are never computed")
