"""The Graph IR: one in-memory graph with ONNX semantics that every format reader targets.

A `Graph` is a list of `Node`s in topological order over named values. Node op types,
domains, attributes and input/output conventions are exactly ONNX's, so one op library
(`scimlkit.models.ops`) executes graphs from every format, and export to ONNX is a
direct translation (`scimlkit.models.export`).

Attributes hold plain Python values: `int`, `float`, `str`, `bytes`, lists of those,
`numpy.ndarray` for tensors and `Graph` for subgraphs (If/Loop/Scan bodies). An empty
string in `Node.inputs` marks an omitted optional input, as in ONNX.

Readers build graphs with `GraphBuilder`:

```python
b = GraphBuilder(opset=21)
x = b.input("x", np.float32, ("N", 3))
w = b.initializer("w", np.ones((3, 2), np.float32))
y = b.node("MatMul", [x, w])
b.output(y, name="y")
graph = b.build()
```
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Dim = int | str | None
"""A dimension: a fixed size, a symbolic name, or unknown."""

ONNX_DOMAIN = ""
ML_DOMAIN = "ai.onnx.ml"


@dataclass
class ValueInfo:
    """Name, element type and (possibly symbolic) shape of a graph input or output.

    `kind` is "tensor" for plain tensors; sequences and optionals carry "sequence" or
    "optional" (their `dtype`/`shape` then describe the elements).
    """

    name: str
    dtype: np.dtype | None = None
    shape: tuple[Dim, ...] | None = None
    kind: str = "tensor"

    def __post_init__(self) -> None:
        if self.dtype is not None:
            self.dtype = np.dtype(self.dtype)
        if self.shape is not None:
            self.shape = tuple(self.shape)

    def describe(self) -> str:
        """A short human-readable description: `x: float32[N,3,224,224]`."""
        dtype = self.dtype.name if self.dtype is not None else "?"
        shape = "?" if self.shape is None else ",".join("?" if d is None else str(d) for d in self.shape)
        core = f"{dtype}[{shape}]"
        if self.kind != "tensor":
            core = f"{self.kind}<{core}>"
        return f"{self.name}: {core}"


@dataclass
class Node:
    """One operator application with ONNX semantics."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ONNX_DOMAIN
    name: str = ""

    def subgraphs(self) -> Iterator[Graph]:
        """The subgraphs held in this node's attributes (If branches, Loop/Scan bodies)."""
        for value in self.attrs.values():
            if isinstance(value, Graph):
                yield value
            elif isinstance(value, list):
                yield from (v for v in value if isinstance(v, Graph))


@dataclass
class Graph:
    """A computation graph with ONNX semantics.

    **Attributes:**

    - `nodes`: nodes in topological order.
    - `inputs`, `outputs`: the graph's interface, in order (initializers are not inputs).
    - `initializers`: named constant tensors (weights), as NumPy arrays.
    - `opsets`: domain -> opset version (`""` is the default ONNX domain).
    - `name`, `doc`: free text kept for export.
    - `metadata`: producer information and format-specific notes (e.g. the source format).
    - `value_info`: optional type/shape annotations of intermediate values, by name.
    """

    nodes: list[Node] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    opsets: dict[str, int] = field(default_factory=lambda: {ONNX_DOMAIN: 21})
    name: str = "graph"
    doc: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    value_info: dict[str, ValueInfo] = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.outputs]

    def walk(self) -> Iterator[Node]:
        """Every node, including those inside subgraphs (depth first)."""
        for node in self.nodes:
            yield node
            for sub in node.subgraphs():
                yield from sub.walk()

    def op_histogram(self) -> dict[tuple[str, str], int]:
        """Count of nodes per (domain, op_type), subgraphs included."""
        counts: dict[tuple[str, str], int] = {}
        for node in self.walk():
            key = (node.domain or ONNX_DOMAIN, node.op_type)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def opset_for(self, domain: str) -> int:
        """The opset version this graph imports for `domain` (1 if unspecified)."""
        if domain in ("ai.onnx", ONNX_DOMAIN):
            return self.opsets.get(ONNX_DOMAIN, self.opsets.get("ai.onnx", 1))
        return self.opsets.get(domain, 1)

    def producers(self) -> dict[str, Node]:
        """Map each value name produced by a node to that node."""
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        """Map each value name to the nodes that read it (top level only)."""
        result: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    result.setdefault(name, []).append(node)
        return result


class GraphBuilder:
    """Incremental construction of a `Graph` by format readers.

    Names are made unique automatically; `node` returns the output name(s) so calls
    chain naturally.
    """

    def __init__(self, opset: int = 21, name: str = "graph", extra_opsets: dict[str, int] | None = None):
        self.graph = Graph(name=name, opsets={ONNX_DOMAIN: opset, **(extra_opsets or {})})
        self._used: set[str] = set()
        self._counter = itertools.count()

    def unique(self, base: str) -> str:
        """Return `base`, or `base_N` if the name is already taken."""
        base = base or "v"
        name = base
        while name in self._used:
            name = f"{base}_{next(self._counter)}"
        self._used.add(name)
        return name

    def input(self, name: str, dtype: Any, shape: Sequence[Dim] | None) -> str:
        name = self.unique(name)
        self.graph.inputs.append(ValueInfo(name, np.dtype(dtype), None if shape is None else tuple(shape)))
        return name

    def initializer(self, name: str, value: Any) -> str:
        name = self.unique(name)
        self.graph.initializers[name] = np.asarray(value)
        return name

    def node(
        self,
        op_type: str,
        inputs: Iterable[str],
        attrs: dict[str, Any] | None = None,
        *,
        outputs: int | Sequence[str] = 1,
        domain: str = ONNX_DOMAIN,
        name: str | None = None,
    ) -> Any:
        """Append a node; returns its output name, or a list of names if it has several."""
        node_name = self.unique(name or op_type)
        if isinstance(outputs, int):
            out_names = [self.unique(f"{node_name}_out{i}" if outputs > 1 else node_name + "_out") for i in range(outputs)]
        else:
            out_names = [self.unique(o) for o in outputs]
        clean_attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        self.graph.nodes.append(Node(op_type, list(inputs), out_names, clean_attrs, domain, node_name))
        return out_names[0] if len(out_names) == 1 else out_names

    def output(self, value: str, name: str | None = None, dtype: Any = None, shape: Sequence[Dim] | None = None) -> str:
        """Mark `value` as a graph output (renamed through an Identity if `name` differs)."""
        if name is not None and name != value:
            value = self.node("Identity", [value], outputs=[name])
        self.graph.outputs.append(
            ValueInfo(value, None if dtype is None else np.dtype(dtype), None if shape is None else tuple(shape))
        )
        return value

    def build(self) -> Graph:
        return self.graph


def reachable(roots: Iterable[Any], predecessors: Any) -> set[Any]:
    """Every key reachable from `roots` through `predecessors(key)` (roots included).

    Readers use it to keep only the source nodes that the chosen outputs depend on;
    `predecessors` may return keys that are not nodes (they are kept as well, harmlessly).
    """
    seen: set[Any] = set()
    stack = list(roots)
    while stack:
        key = stack.pop()
        if key not in seen:
            seen.add(key)
            stack.extend(predecessors(key))
    return seen
