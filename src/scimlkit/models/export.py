"""Export a `Graph` to ONNX: `graph_to_model` (a `ModelProto`) and `save_onnx` (a file).

Because every reader lowers to ONNX semantics, this works for models read from any format:
`scimlkit models convert net.caffemodel net.onnx`. Attribute types follow the op's ONNX
schema (so a reader may write `alpha=1` for a float attribute). Graph outputs without a
recorded type get one from ONNX shape inference. Models whose weights exceed 2 GB (the
protobuf limit) are written with external data next to the `.onnx` file.

**Example:**

```python
from scimlkit.models.export import save_onnx
save_onnx(model.graph, "model.onnx")
```
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .graph import Graph, ValueInfo

__all__ = ["graph_to_model", "save_onnx"]

#: Above this many bytes of weights a model is written with external data.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def _onnx():
    import onnx
    from onnx import helper, numpy_helper

    return onnx, helper, numpy_helper


def _elem_type(dtype: np.dtype | None) -> int:
    onnx, helper, _ = _onnx()
    if dtype is None:
        return onnx.TensorProto.UNDEFINED
    if np.dtype(dtype).kind == "O":
        return onnx.TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _type_proto(info: ValueInfo) -> Any:
    _, helper, _ = _onnx()
    shape = None if info.shape is None else [d if isinstance(d, int | str) else None for d in info.shape]
    tensor = helper.make_tensor_type_proto(_elem_type(info.dtype), shape)
    kind = info.kind
    if kind.startswith("sequence"):
        return helper.make_sequence_type_proto(tensor)
    if kind.startswith("optional"):
        inner = helper.make_sequence_type_proto(tensor) if "sequence" in kind[8:] else tensor
        return helper.make_optional_type_proto(inner)
    return tensor


def _value_info(info: ValueInfo) -> Any:
    _, helper, _ = _onnx()
    return helper.make_value_info(info.name, _type_proto(info))


def _tensor(value: Any, name: str = "") -> Any:
    _, _, numpy_helper = _onnx()
    arr = np.asarray(value)
    return numpy_helper.from_array(arr, name)


def _attribute(name: str, value: Any, attr_type: int | None, opsets: dict[str, int]) -> Any:
    onnx, helper, _ = _onnx()
    A = onnx.AttributeProto
    if isinstance(value, Graph):
        return helper.make_attribute(name, _graph_proto(value, opsets), attr_type=A.GRAPH)
    if isinstance(value, ValueInfo):
        return helper.make_attribute(name, _type_proto(value), attr_type=A.TYPE_PROTO)
    if isinstance(value, np.ndarray) and attr_type not in (A.INTS, A.FLOATS, A.STRINGS, A.INT, A.FLOAT):
        return helper.make_attribute(name, _tensor(value), attr_type=A.TENSOR)
    if isinstance(value, list) and value and isinstance(value[0], Graph):
        return helper.make_attribute(name, [_graph_proto(g, opsets) for g in value], attr_type=A.GRAPHS)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return helper.make_attribute(name, [_tensor(v) for v in value], attr_type=A.TENSORS)
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if attr_type == A.FLOAT:
        value = float(value)
    elif attr_type == A.INT:
        value = int(value)
    elif attr_type == A.FLOATS:
        value = [float(v) for v in value]
    elif attr_type == A.INTS:
        value = [int(v) for v in value]
    return helper.make_attribute(name, value, attr_type=attr_type if attr_type else None)


def _schema_attr_types(op_type: str, domain: str, opset: int) -> dict[str, int]:
    import onnx.defs

    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except Exception:
        return {}
    return {name: int(attr.type) for name, attr in schema.attributes.items()}


def _graph_proto(graph: Graph, opsets: dict[str, int]) -> Any:
    _, helper, _ = _onnx()
    opsets = {**opsets, **graph.opsets}
    nodes = []
    for node in graph.nodes:
        domain = node.domain or ""
        types = _schema_attr_types(node.op_type, domain, opsets.get(domain, 1))
        attrs = [_attribute(k, v, types.get(k), opsets) for k, v in node.attrs.items()]
        proto = helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name or None, domain=domain or None)
        proto.attribute.extend(attrs)
        nodes.append(proto)
    initializers = [_tensor(v, k) for k, v in graph.initializers.items()]
    value_info = [_value_info(v) for v in graph.value_info.values()]
    return helper.make_graph(
        nodes,
        graph.name or "graph",
        [_value_info(v) for v in graph.inputs],
        [_value_info(v) for v in graph.outputs],
        initializer=initializers,
        doc_string=graph.doc or None,
        value_info=value_info,
    )


def graph_to_model(graph: Graph, *, producer: str = "scimlkit", infer_types: bool = True) -> Any:
    """Translate a `Graph` (initializers included) into an `onnx.ModelProto`."""
    _, helper, _ = _onnx()
    try:
        g = _graph_proto(graph, dict(graph.opsets))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot export graph '{graph.name}' to ONNX: {exc}") from exc
    opsets = [helper.make_opsetid(d, v) for d, v in sorted(graph.opsets.items())]
    model = helper.make_model(g, opset_imports=opsets, producer_name=producer)
    model.ir_version = _ir_version(graph, opsets)
    for key, value in graph.metadata.items():
        if key.startswith("meta:"):
            helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key[5:]: value})
    if infer_types and any(o.type.tensor_type.elem_type == 0 for o in model.graph.output if o.type.HasField("tensor_type")):
        _fill_output_types(model)
    return model


def _ir_version(graph: Graph, opsets: list[Any]) -> int:
    onnx, helper, _ = _onnx()
    try:
        ir = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    except Exception:
        ir = 8
    ir = max(ir, 8)
    exotic = {a.dtype.name for a in graph.initializers.values() if np.asarray(a).dtype.kind == "V"}
    exotic |= {v.dtype.name for v in graph.inputs + graph.outputs if v.dtype is not None and v.dtype.kind == "V"}
    if any(name.startswith("float8") for name in exotic):
        ir = max(ir, 9)
    if any(name in ("int4", "uint4") for name in exotic):
        ir = max(ir, 10)
    if any(name.startswith("float4") for name in exotic):
        ir = max(ir, 11)
    return min(ir, onnx.IR_VERSION)


def _fill_output_types(model: Any) -> None:
    import onnx.shape_inference

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in model.graph.output:
        info = known.get(out.name)
        if info is not None and info.type.tensor_type.elem_type:
            out.type.CopyFrom(info.type)


def save_onnx(graph: Graph, path: str | os.PathLike, *, external_data: bool | None = None) -> Path:
    """Write `graph` as an ONNX file at `path`; returns the path.

    `external_data=None` stores weights in a `<name>.data` file next to the model when they
    exceed 2 GB (protobuf's limit); `True`/`False` force either way. The files are written
    under temporary names and renamed into place, so a failure never leaves half a model.
    """
    onnx, _, _ = _onnx()
    path = Path(path)
    model = graph_to_model(graph)
    size = sum(np.asarray(v).nbytes for v in graph.initializers.values())
    use_external = size > EXTERNAL_DATA_THRESHOLD if external_data is None else external_data
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        tmp_model = Path(tmp) / path.name
        data_name = f"{path.name}.data"
        if use_external:
            onnx.save_model(
                model,
                str(tmp_model),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=1024 if external_data is None else 0,
            )
            if (Path(tmp) / data_name).exists():
                os.replace(Path(tmp) / data_name, path.parent / data_name)
        else:
            onnx.save_model(model, str(tmp_model))
        os.replace(tmp_model, path)
    return path
