"""Shared helpers of the format-reader tests: run a Graph with scimlkit and with ONNX Runtime."""

from __future__ import annotations

import pathlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models"


def run_ours(graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of the graph on scimlkit's JAX runtime."""
    from scimlkit.models.runtime import run_graph

    return [np.asarray(y) for y in run_graph(graph, list(inputs))]


def to_onnx(graph):
    """The graph as an ONNX ModelProto (scimlkit's exporter when present, else a direct translation)."""
    try:
        from scimlkit.models.export import graph_to_model
    except ImportError:
        graph_to_model = None
    if graph_to_model is not None:
        return graph_to_model(graph)
    from onnx import helper, numpy_helper

    def attr(key, value):
        if isinstance(value, np.ndarray):
            value = numpy_helper.from_array(value)
        return helper.make_attribute(key, value)

    nodes = []
    for n in graph.nodes:
        node = helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, domain=n.domain)
        node.attribute.extend(attr(k, v) for k, v in n.attrs.items())
        nodes.append(node)

    def vi(v):
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(v.dtype)) if v.dtype is not None else 0
        shape = (
            None if v.shape is None else [d if isinstance(d, (int, str)) else None for d in v.shape]
        )
        return helper.make_tensor_value_info(v.name, elem, shape)

    g = helper.make_graph(
        nodes,
        graph.name,
        [vi(v) for v in graph.inputs],
        [vi(v) for v in graph.outputs],
        [numpy_helper.from_array(np.asarray(a), k) for k, a in graph.initializers.items()],
    )
    opsets = [helper.make_opsetid(d, v) for d, v in graph.opsets.items()]
    return helper.make_model(g, opset_imports=opsets, ir_version=10)


def run_ort(graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of the graph exported to ONNX and run by ONNX Runtime."""
    import onnxruntime as ort

    model = to_onnx(graph)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {v.name: x for v, x in zip(graph.inputs, inputs, strict=True)}
    return sess.run(None, feeds)


def reference(path: pathlib.Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs `in_<i>` and framework outputs `out_<i>` stored in a fixture `.npz`."""
    data = np.load(path)
    ins = [data[f"in_{i}"] for i in range(sum(k.startswith("in_") for k in data.files))]
    outs = [data[f"out_{i}"] for i in range(sum(k.startswith("out_") for k in data.files))]
    return ins, outs


def max_rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max(1, max |want|)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
