"""MXNet reader: a `*-symbol.json` graph and its `*.params` weights, without MXNet.

The symbol JSON (`nodes`, `arg_nodes`, `heads`; node attributes under `attrs`, `attr`
or, in old files, `param`, all as strings such as `"(3, 3)"` or `"True"`) is parsed as
data; the params file by `_mxnet_params`. Variables with a stored value become
initializers, the others graph inputs (label variables of `SoftmaxOutput` and friends
are dropped). Nodes are lowered by `mxnet_ops` to ONNX-semantics nodes in MXNet's NCHW
layout. Input shapes are not stored by MXNet: pass `input_shapes={"data": (1, 3, 224,
224)}` where an op needs sizes (e.g. `pooling_convention="full"`); otherwise inputs get
symbolic dimensions and a rank guessed from their consumers.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    DAMAGED_INPUT_ERRORS,
    ModelError,
    ModelFormatError,
    UnsupportedOp,
    UnsupportedOperatorError,
)
from ..graph import Graph, GraphBuilder, reachable
from . import _mxnet_array, _mxnet_nn, _mxnet_rnn, _mxnet_shape  # noqa: F401  (register into OPS)
from ._mxnet_params import DTYPES, read_params
from ._nhwc import set_outputs
from .mxnet_ops import LABEL_INPUTS, OPS, LowerContext, MxNode, MxValue, parse_tuple

__all__ = ["read_mxnet", "sniff_mxnet"]


def sniff_mxnet(head: bytes) -> bool:
    """Whether `head` (the first bytes of a file) looks like an MXNet symbol JSON."""
    text = head.lstrip()
    return text.startswith(b"{") and re.search(rb'"(nodes|arg_nodes|heads)"', head) is not None


def read_mxnet(
    source: str | os.PathLike | bytes,
    *,
    weights: str | os.PathLike | bytes | None = None,
    input_shapes: Mapping[str, Sequence[int | str | None]] | None = None,
    input_dtypes: Mapping[str, Any] | None = None,
    opset: int = 21,
) -> Graph:
    """Read an MXNet model (`net-symbol.json` + `net-0000.params`) into a `Graph`.

    **Arguments:**

    - `source`: the `*-symbol.json` path, or its bytes.
    - `weights`: the `*.params` file (path or bytes). Default: `<prefix>-NNNN.params` beside
      the symbol file with the highest epoch number.
    - `input_shapes`: shapes of the inputs by name (`None`/strings for unknown dimensions).
    - `input_dtypes`: NumPy dtypes of the inputs by name (default: the variable's
      `__dtype__`, else float32).
    - `opset`: the ONNX opset of the graph.

    **Example:**

    ```python
    graph = read_mxnet("resnet-symbol.json", weights="resnet-0000.params",
                       input_shapes={"data": (1, 3, 224, 224)})
    ```
    """
    where = _describe(source)
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            text = bytes(source)
            name = "mxnet"
        else:
            path = pathlib.Path(os.fspath(source))
            if not path.is_file():
                raise ModelFormatError(f"{path}: no such MXNet symbol file")
            text = path.read_bytes()
            name = path.name.removesuffix(".json").removesuffix("-symbol") or "mxnet"
        symbol = _parse_symbol(text, where)
        params = _load_params(source, weights, symbol, {"data", *(input_shapes or {})})
        return _convert(
            symbol, params, dict(input_shapes or {}), dict(input_dtypes or {}), opset, name
        )
    except ModelError:
        raise
    except DAMAGED_INPUT_ERRORS as exc:
        raise ModelFormatError(
            f"{where}: damaged MXNet model ({type(exc).__name__}: {exc})"
        ) from exc


def _describe(source: Any) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return str(source)


# ---------------------------------------------------------------- symbol JSON
def _parse_symbol(text: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFormatError(f"{where}: not a valid MXNet symbol JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or "heads" not in data:
        raise ModelFormatError(f"{where}: not an MXNet symbol JSON (no 'nodes'/'heads')")
    nodes = []
    for i, raw in enumerate(data["nodes"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("op"), str):
            raise ModelFormatError(f"{where}: node #{i} is not an MXNet node")
        attrs = raw.get("attrs", raw.get("attr", raw.get("param"))) or {}
        if not isinstance(attrs, dict):
            raise ModelFormatError(f"{where}: node #{i} has malformed attributes")
        inputs = []
        for ref in raw.get("inputs", []):
            if (
                not isinstance(ref, list)
                or len(ref) < 2
                or not all(isinstance(r, int) for r in ref)
            ):
                raise ModelFormatError(f"{where}: node #{i} has a malformed input {ref!r}")
            if not 0 <= ref[0] < i:
                raise ModelFormatError(
                    f"{where}: node #{i} refers to node #{ref[0]} (not before it)"
                )
            inputs.append((ref[0], ref[1]))
        name = str(raw.get("name", f"node{i}"))
        nodes.append(MxNode(i, raw["op"], name, {str(k): str(v) for k, v in attrs.items()}, inputs))
    heads = []
    for ref in data["heads"]:
        if not isinstance(ref, list) or len(ref) < 2 or not 0 <= ref[0] < len(nodes):
            raise ModelFormatError(f"{where}: malformed head {ref!r}")
        heads.append((int(ref[0]), int(ref[1])))
    if not heads:
        raise ModelFormatError(f"{where}: the symbol has no outputs ('heads' is empty)")
    return {"nodes": nodes, "heads": heads, "arg_nodes": data.get("arg_nodes", [])}


# ---------------------------------------------------------------- params
def _load_params(
    source: Any, weights: Any, symbol: dict[str, Any], input_names: set[str]
) -> dict[str, np.ndarray]:
    if weights is None:
        if isinstance(source, bytes | bytearray | memoryview):
            # no file name, so nowhere to look: fine only if every variable is an input
            if any(n.op == "null" and n.name not in input_names for n in symbol["nodes"]):
                raise ModelFormatError(
                    "an MXNet symbol given as bytes needs weights= (its .params file)"
                )
            return {}
        weights = _find_params(pathlib.Path(os.fspath(source)))
    if isinstance(weights, bytes | bytearray | memoryview):
        blob, where = bytes(weights), f"<{len(weights)} bytes of params>"
    else:
        wpath = pathlib.Path(os.fspath(weights))
        if not wpath.is_file():
            raise ModelFormatError(f"{wpath}: no such MXNet params file")
        blob, where = wpath.read_bytes(), str(wpath)
    params: dict[str, np.ndarray] = {}
    for key, value in read_params(blob, where).items():
        prefix, sep, rest = key.partition(":")
        params[rest if sep and prefix in ("arg", "aux") else key] = value
    return params


def _find_params(symbol_path: pathlib.Path) -> pathlib.Path:
    """`<prefix>-NNNN.params` beside `<prefix>-symbol.json`, highest epoch first."""
    prefix = symbol_path.name.removesuffix(".json").removesuffix("-symbol")
    pattern = re.compile(re.escape(prefix) + r"-(\d+)\.params$")
    found = sorted(
        (
            (int(m.group(1)), p)
            for p in symbol_path.parent.iterdir()
            if (m := pattern.match(p.name))
        ),
        reverse=True,
    )
    if not found:
        raise ModelFormatError(
            f"{symbol_path}: no weights file {prefix}-NNNN.params beside it; "
            "pass weights='path/to/file.params'"
        )
    return found[0][1]


# ---------------------------------------------------------------- conversion
def _convert(
    symbol: dict[str, Any],
    params: dict[str, np.ndarray],
    input_shapes: dict[str, Any],
    input_dtypes: dict[str, Any],
    opset: int,
    name: str,
) -> Graph:
    nodes: list[MxNode] = symbol["nodes"]
    heads: list[tuple[int, int]] = symbol["heads"]
    needed = reachable((h for h, _ in heads), lambda i: (r for r, _ in nodes[i].inputs))
    labels = {
        node.inputs[i][0]
        for node in nodes
        if node.index in needed
        for i in LABEL_INPUTS.get(node.op, ())
        if i < len(node.inputs)
    }
    unsupported: dict[str, list[str]] = {}
    for node in nodes:
        if node.index in needed and node.op != "null" and node.op not in OPS:
            unsupported.setdefault(node.op, []).append(node.name)
    if unsupported:
        raise UnsupportedOperatorError(
            [UnsupportedOp(op, "mxnet", 0, tuple(where)) for op, where in unsupported.items()],
            source="MXNet symbol",
        )
    unknown = set(input_shapes) - {n.name for n in nodes if n.op == "null"}
    if unknown:
        raise ModelFormatError(f"input_shapes names unknown inputs {sorted(unknown)}")
    b = GraphBuilder(opset=opset, name=name)
    ctx = LowerContext(b)
    consumers = _first_consumers(nodes)
    for node in nodes:
        if node.index not in needed:
            continue
        if node.op == "null":
            if node.name in params:
                ctx.env[(node.index, 0)] = MxValue.constant(params[node.name], node.name)
            elif node.index in labels:
                ctx.env[(node.index, 0)] = MxValue("", None, np.dtype(np.float32))  # never read
            else:
                ctx.env[(node.index, 0)] = _declare_input(
                    b, node, input_shapes, input_dtypes, consumers
                )
            continue
        ins = [ctx.env_value(ref, nodes) for ref in node.inputs]
        outs = OPS[node.op](ctx, node, ins)
        for i, value in enumerate(outs if isinstance(outs, list) else [outs]):
            ctx.env[(node.index, i)] = value
    results = []
    multi = {n for n, _ in heads if sum(1 for h, _ in heads if h == n) > 1}
    for node_id, idx in heads:
        value = ctx.env_value((node_id, idx), nodes)
        node = nodes[node_id]
        out_name = f"{node.name}_output{idx}" if node_id in multi or idx else f"{node.name}_output"
        results.append((ctx.tensor(value), out_name, value.dtype, value.shape))
    set_outputs(b, results)
    graph = b.build()
    graph.metadata["source_format"] = "mxnet"
    return graph


def _first_consumers(nodes: list[MxNode]) -> dict[int, MxNode]:
    first: dict[int, MxNode] = {}
    for node in nodes:
        for ref, _ in node.inputs:
            first.setdefault(ref, node)
    return first


def _declare_input(
    b: GraphBuilder,
    node: MxNode,
    input_shapes: dict[str, Any],
    input_dtypes: dict[str, Any],
    consumers: dict[int, MxNode],
) -> MxValue:
    if node.name in input_dtypes:
        dtype = np.dtype(input_dtypes[node.name])
    elif (
        node.attrs.get("__dtype__", "").lstrip("-").isdigit()
        and int(node.attrs["__dtype__"]) in DTYPES
    ):
        dtype = DTYPES[int(node.attrs["__dtype__"])].newbyteorder("=")
    else:
        dtype = np.dtype(np.float32)
    shape: tuple | None
    if node.name in input_shapes:
        shape = tuple(input_shapes[node.name])
    elif "__shape__" in node.attrs:
        shape = tuple(None if not d or d <= 0 else d for d in parse_tuple(node.attrs["__shape__"]))
    else:
        shape = None
        consumer = consumers.get(node.index)
        if consumer is not None and consumer.op in ("Convolution", "Deconvolution", "Pooling"):
            kernel = parse_tuple(consumer.attrs.get("kernel", "()"))
            if kernel and not (
                consumer.op == "Pooling" and consumer.attrs.get("global_pool") == "True"
            ):
                shape = (None,) * (len(kernel) + 2)
    graph_shape = (
        None
        if shape is None
        else tuple("N" if i == 0 and d is None else d for i, d in enumerate(shape))
    )
    name = b.input(node.name, dtype, graph_shape)
    static = None if shape is None else tuple(d if isinstance(d, int) else None for d in shape)
    return MxValue(name, static, dtype)
