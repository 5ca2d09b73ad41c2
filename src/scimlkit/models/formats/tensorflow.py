"""TensorFlow reader: frozen GraphDef `.pb` files and SavedModel directories, without TensorFlow.

Protobufs are decoded by a small wire-format reader (`_protowire`) using field numbers
from TensorFlow's public `.proto` schemas; SavedModel variables are read from the
checkpoint's own TensorBundle format (`_tf_checkpoint`). Function calls
(`StatefulPartitionedCall`/`PartitionedCall`, as TF2 SavedModels are built) are inlined,
identities folded away, and the resulting op graph lowered by `tensorflow_ops` to
ONNX-semantics nodes. Inputs and outputs keep TensorFlow's NHWC layout.
"""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import (
    DAMAGED_INPUT_ERRORS,
    ModelError,
    ModelFormatError,
    UnsupportedOp,
    UnsupportedOperatorError,
)
from ..graph import Graph, GraphBuilder, reachable
from ._nhwc import Value, set_outputs
from ._protowire import Message
from ._tf_checkpoint import Checkpoint
from .tensorflow_ops import OPS, LowerContext
from .tf_types import np_dtype, shape_of

# Output-argument layouts of ops with several output args (others: one arg, index = flat index).
_OUTPUT_ARGS = {
    "FusedBatchNorm": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV2": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV3": [
        "y",
        "batch_mean",
        "batch_variance",
        "reserve_space_1",
        "reserve_space_2",
        "reserve_space_3",
    ],
    "TopKV2": ["values", "indices"],
    "Unique": ["y", "idx"],
}
_CALLS = {"StatefulPartitionedCall", "PartitionedCall"}
_IDENTITIES = {
    "Identity",
    "StopGradient",
    "Snapshot",
    "PreventGradient",
    "EnsureShape",
    "CheckNumerics",
}
_VARIABLES = {"VarHandleOp", "VariableV2", "Variable"}


@dataclass
class TfNode:
    """A node of the flattened TensorFlow graph (functions inlined)."""

    name: str
    op: str
    inputs: list[tuple[str, int]]
    attrs: dict[str, Message] = field(default_factory=dict)


def read_tensorflow(
    path: str | pathlib.Path | bytes,
    signature: str = "serving_default",
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
    opset: int = 21,
) -> Graph:
    """Read a frozen GraphDef (`.pb`) or a SavedModel directory into a `Graph`.

    For a SavedModel, `signature` picks the SignatureDef (inputs and outputs named by its
    keys, outputs in sorted key order as TensorFlow returns them). For a frozen GraphDef,
    inputs default to the Placeholders and outputs to the nodes nobody consumes; pass
    tensor names (`"name"` or `"name:1"`) to choose others.

    **Example:**

    ```python
    graph = read_tensorflow("exported_model/")            # SavedModel, serving_default
    graph = read_tensorflow("frozen.pb", outputs=["Identity"])
    ```
    """
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        if isinstance(path, (bytes, bytearray, memoryview)):
            return _convert(
                _graph_def(bytes(path), "<bytes>"), {}, None, inputs, outputs, opset, "graph"
            )
        path = pathlib.Path(path)
        if path.is_dir():
            return _read_saved_model(path, signature, opset)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file or SavedModel directory")
        data = path.read_bytes()
        if path.name == "saved_model.pb":
            return _read_saved_model(path.parent, signature, opset)
        return _convert(_graph_def(data, str(path)), {}, None, inputs, outputs, opset, path.stem)
    except ModelError:
        raise
    except DAMAGED_INPUT_ERRORS as exc:
        raise ModelFormatError(
            f"{path!s:.200}: damaged TensorFlow model ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        sys.setrecursionlimit(old)


def _graph_def(data: bytes, where: str) -> Message:
    graph_def = Message(data)
    if not graph_def.has(1):
        raise ModelFormatError(f"{where}: not a TensorFlow GraphDef (no nodes)")
    return graph_def


def _read_saved_model(directory: pathlib.Path, signature: str, opset: int) -> Graph:
    pb = directory / "saved_model.pb"
    if not pb.exists():
        raise ModelFormatError(f"{directory} is not a SavedModel (no saved_model.pb)")
    saved = Message(pb.read_bytes())
    metas = saved.msgs(2)
    if not metas:
        raise ModelFormatError(f"{pb}: SavedModel without meta graphs")
    meta = next((m for m in metas if "serve" in (m.msg(1) or Message()).strs(4)), metas[0])
    sigs = meta.map(5)
    if signature not in sigs:
        raise ModelFormatError(f"SavedModel has no signature {signature!r}; it has {sorted(sigs)}")
    sig = sigs[signature]
    ins = sig.map(1)
    outs = sig.map(2)
    in_pairs = [(key, ins[key].str(1)) for key in sorted(ins)]
    out_pairs = [(key, outs[key].str(1)) for key in sorted(outs)]
    graph_def = meta.msg(2) or Message()
    variables = _variables(directory, graph_def, meta.msg(7))
    return _convert(graph_def, variables, (in_pairs, out_pairs), None, None, opset, directory.name)


def _variables(
    directory: pathlib.Path, graph_def: Message, object_graph: Message | None
) -> dict[str, np.ndarray]:
    """Values of the main graph's variable nodes, read from the checkpoint."""
    var_nodes = [n for n in graph_def.msgs(1) if n.str(2) in _VARIABLES]
    if not var_nodes:
        return {}
    prefix = directory / "variables" / "variables"
    ckpt = Checkpoint(prefix)
    keys_by_node: dict[int, str] = {}
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in ckpt.entries:
        trackable = Message(ckpt.strings("_CHECKPOINTABLE_OBJECT_GRAPH")[0])
        for node_id, obj in enumerate(trackable.msgs(1)):
            for attr in obj.msgs(2):
                if attr.str(1) == "VARIABLE_VALUE":
                    keys_by_node[node_id] = attr.str(3)
    handle_keys: dict[str, str] = {}
    if object_graph is not None:
        concrete = object_graph.map(2)
        for node in graph_def.msgs(1):
            if node.str(2) not in _CALLS:
                continue
            fname = (_attrs(node).get("f") or Message()).msg(10)
            bound = (concrete.get(fname.str(1)) if fname is not None else None) or Message()
            bound_ids = bound.ints(2)
            handles = [_split_ref(i)[0] for i in node.strs(3) if not i.startswith("^")]
            for handle, node_id in zip(
                handles[len(handles) - len(bound_ids) :], bound_ids, strict=True
            ):
                if node_id in keys_by_node:
                    handle_keys[handle] = keys_by_node[node_id]
    values = {}
    for node in var_nodes:
        name = node.str(1)
        shared = (_attrs(node).get("shared_name") or Message()).str(2)
        candidates = [handle_keys.get(name), name, shared, f"{name}/.ATTRIBUTES/VARIABLE_VALUE"]
        key = next((k for k in candidates if k and k in ckpt.entries), None)
        if key is not None:
            values[name] = ckpt.tensor(key)
    return values


def _attrs(node: Message) -> dict[str, Message]:
    return node.map(5)


def _split_ref(ref: str) -> tuple[str, int]:
    name, _, idx = ref.partition(":")
    return name, int(idx) if idx.isdigit() else 0


class _Flattener:
    """Inline function calls and fold identities into one list of `TfNode`s in topological order."""

    def __init__(self, graph_def: Message) -> None:
        self.functions = {
            f.msg(1).str(1): f for f in (graph_def.msg(2) or Message()).msgs(1) if f.msg(1)
        }
        self.top = {n.str(1): n for n in graph_def.msgs(1)}
        self.nodes: list[TfNode] = []
        self.done: dict[str, str] = {}  # scope-qualified node -> flat name
        self.alias: dict[tuple[str, int], tuple[str, int]] = {}

    def top_ref(self, ref: str) -> tuple[str, int]:
        name, idx = _split_ref(ref)
        if name not in self.top:
            raise ModelFormatError(f"the graph has no node {name!r}")
        return self._canon((self._ensure("", self.top, name, {}), idx))

    def _canon(self, ref: tuple[str, int]) -> tuple[str, int]:
        while ref in self.alias:
            ref = self.alias[ref]
        return ref

    def _resolve(
        self,
        prefix: str,
        nodes: dict[str, Message],
        args: dict[str, tuple[str, int]] | None,
        ref: str,
    ):
        if args is None:  # GraphDef: "node:index"
            name, idx = _split_ref(ref)
        else:  # FunctionDef body: "arg" or "node:out_arg:index"
            if ref in args:
                return args[ref]
            parts = ref.split(":")
            name = parts[0]
            if name not in nodes:
                raise ModelFormatError(f"function body refers to unknown node {name!r}")
            if len(parts) == 3:
                op = nodes[name].str(2)
                layout = _OUTPUT_ARGS.get(op)
                idx = (
                    layout.index(parts[1]) + int(parts[2])
                    if layout and parts[1] in layout
                    else int(parts[2])
                )
            else:
                idx = int(parts[1]) if len(parts) > 1 else 0
        if name not in nodes:
            raise ModelFormatError(f"node input refers to unknown node {name!r}")
        return self._canon((self._ensure(prefix, nodes, name, args), idx))

    def _ensure(self, prefix: str, nodes: dict[str, Message], name: str, args) -> str:
        key = prefix + name
        if key in self.done:
            return self.done[key]
        self.done[key] = key  # guards cycles
        node = nodes[name]
        op = node.str(2)
        attrs = _attrs(node)
        data_inputs = [i for i in node.strs(3) if not i.startswith("^")]
        resolved = [self._resolve(prefix, nodes, args, i) for i in data_inputs]
        if op in _CALLS:
            fname = (attrs.get("f") or Message()).msg(10)
            fname = fname.str(1) if fname is not None else ""
            if fname not in self.functions:
                raise ModelFormatError(f"{op} {name!r} calls unknown function {fname!r}")
            fdef = self.functions[fname]
            sig = fdef.msg(1)
            in_names = [a.str(1) for a in sig.msgs(2)]
            if len(in_names) != len(resolved):
                raise ModelFormatError(
                    f"call {name!r}: {len(resolved)} inputs for function {fname!r} of {len(in_names)}"
                )
            body = {n.str(1): n for n in fdef.msgs(3)}
            ret = fdef.str_map(4)
            inner_args = dict(zip(in_names, resolved, strict=True))
            for i, out_arg in enumerate(sig.msgs(3)):
                target = ret.get(out_arg.str(1))
                if target is None:
                    raise ModelFormatError(f"function {fname!r} does not return {out_arg.str(1)!r}")
                self.alias[(key, i)] = self._resolve(key + "/", body, inner_args, target)
            return key
        if op in _IDENTITIES:
            self.alias[(key, 0)] = resolved[0]
            return key
        if op == "IdentityN":
            for i, r in enumerate(resolved):
                self.alias[(key, i)] = r
            return key
        self.nodes.append(TfNode(key, op, resolved, attrs))
        return key


def _convert(graph_def, variables, signature, inputs, outputs, opset, name) -> Graph:
    flat = _Flattener(graph_def)
    if signature is not None:
        in_pairs, out_pairs = signature
    else:
        placeholders = [n.str(1) for n in graph_def.msgs(1) if n.str(2) == "Placeholder"]
        in_names = inputs or placeholders
        in_pairs = [(_split_ref(n)[0], n) for n in in_names]
        if outputs is None:
            consumed = {_split_ref(i.lstrip("^"))[0] for n in graph_def.msgs(1) for i in n.strs(3)}
            skip = {"NoOp", "Const", "Placeholder", "Assert", "SaveV2", "RestoreV2", "VarHandleOp"}
            outputs = [
                n.str(1)
                for n in graph_def.msgs(1)
                if n.str(1) not in consumed and n.str(2) not in skip
            ]
            if not outputs:
                raise ModelFormatError("cannot tell the graph's outputs; pass outputs=[...]")
        out_pairs = [
            (_split_ref(n)[0] if ":" not in n or n.endswith(":0") else n.replace(":", "_"), n)
            for n in outputs
        ]
    in_refs = [flat.top_ref(ref) for _, ref in in_pairs]
    out_refs = [flat.top_ref(ref) for _, ref in out_pairs]
    unsupported: dict[str, list[str]] = {}
    for node in flat.nodes:
        if node.op not in OPS and node.op != "Placeholder":
            unsupported.setdefault(node.op, []).append(node.name)
    if unsupported:
        raise UnsupportedOperatorError(
            [UnsupportedOp(op, "tensorflow", 0, tuple(where)) for op, where in unsupported.items()],
            source="TensorFlow graph",
        )
    b = GraphBuilder(opset=opset, name=name)
    ctx = LowerContext(b, variables)
    for (key, _), ref in zip(in_pairs, in_refs, strict=True):
        node = next(n for n in flat.nodes if n.name == ref[0])
        dtype = np_dtype((node.attrs.get("dtype") or Message()).int(6, 1))
        shape = shape_of((node.attrs.get("shape") or Message()).msg(7))
        shape = None if shape is None else tuple(None if d < 0 else d for d in shape)
        ctx.env[ref] = Value(b.input(key, dtype, shape), shape, dtype)
    by_name = {n.name: n for n in flat.nodes}
    needed = reachable(
        (r[0] for r in out_refs),
        lambda name: (r[0] for r in by_name[name].inputs) if name in by_name else (),
    )
    for node in flat.nodes:
        if node.name in needed and node.op != "Placeholder":
            ctx.lower(node)
        elif node.op == "Placeholder" and node.name in needed and (node.name, 0) not in ctx.env:
            raise ModelFormatError(
                f"the outputs depend on placeholder {node.name!r}, which is not an input"
            )
    results = []
    for (key, _), ref in zip(out_pairs, out_refs, strict=True):
        value = ctx.value(ref)
        results.append((value.last(b), key, value.dtype, value.shape))
    set_outputs(b, results)
    graph = b.build()
    graph.metadata["source_format"] = "tensorflow"
    return graph
