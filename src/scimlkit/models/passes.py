"""Graph clean-up passes run at load time (`optimize`), each a pure function Graph -> Graph.

- `cancel_transposes`: merges chains of `Transpose` nodes and drops those that compose to
  the identity (format readers that keep NHWC at the interface produce such pairs);
- `remove_identities`: bypasses `Identity` nodes that are not graph outputs;
- `remove_dead_nodes`: drops nodes whose outputs nobody reads.

Values read by subgraphs (outer-scope capture) count as used. Constant folding happens at
trace time in the runtime, so no pass is needed for it.

**Example:**

```python
from scimlkit.models.passes import optimize
graph = optimize(graph)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .graph import Graph, Node

__all__ = ["cancel_transposes", "optimize", "remove_dead_nodes", "remove_identities"]

Pass = Callable[[Graph], Graph]


def optimize(graph: Graph, passes: tuple[Pass, ...] | None = None) -> Graph:
    """Run the default passes (or `passes`) in order."""
    for p in passes or (cancel_transposes, remove_identities, remove_dead_nodes):
        graph = p(graph)
    return graph


def _uses(graph: Graph) -> dict[str, int]:
    """How many times each value is read, by nodes at any depth and by graph outputs."""
    counts: dict[str, int] = {}

    def visit(g: Graph) -> None:
        for node in g.nodes:
            for name in node.inputs:
                if name:
                    counts[name] = counts.get(name, 0) + 1
            for sub in node.subgraphs():
                visit(sub)
        for out in g.outputs:
            counts[out.name] = counts.get(out.name, 0) + 1

    visit(graph)
    return counts


def _rename(graph: Graph, mapping: dict[str, str]) -> None:
    """Rewrite node inputs (at every depth) through `mapping`, in place."""
    if not mapping:
        return
    for node in graph.nodes:
        node.inputs = [mapping.get(n, n) if n else n for n in node.inputs]
        for sub in node.subgraphs():
            _rename(sub, mapping)
            for out in sub.outputs:
                if out.name in mapping:  # a subgraph output that is an outer value
                    out.name = mapping[out.name]


def _copy(graph: Graph) -> Graph:
    def copy_attr(value: object) -> object:
        if isinstance(value, Graph):
            return _copy(value)
        if isinstance(value, list):
            return [copy_attr(v) for v in value]
        return value

    def copy_node(n: Node) -> Node:
        attrs = {k: copy_attr(v) for k, v in n.attrs.items()}
        return dataclasses.replace(n, inputs=list(n.inputs), outputs=list(n.outputs), attrs=attrs)

    return dataclasses.replace(
        graph,
        nodes=[copy_node(n) for n in graph.nodes],
        inputs=[dataclasses.replace(v) for v in graph.inputs],
        outputs=[dataclasses.replace(v) for v in graph.outputs],
        initializers=dict(graph.initializers),
    )


def remove_identities(graph: Graph) -> Graph:
    """Bypass top-level `Identity` nodes whose output is not a graph output."""
    graph = _copy(graph)
    outputs = set(graph.output_names)
    mapping: dict[str, str] = {}
    nodes = []
    for node in graph.nodes:
        if node.op_type == "Identity" and not node.domain and node.outputs[0] not in outputs and node.inputs[0]:
            mapping[node.outputs[0]] = mapping.get(node.inputs[0], node.inputs[0])
            continue
        nodes.append(node)
    graph.nodes = nodes
    _rename(graph, mapping)
    return graph


def remove_dead_nodes(graph: Graph) -> Graph:
    """Drop top-level nodes none of whose outputs is read (repeats until nothing changes)."""
    graph = _copy(graph)
    while True:
        uses = _uses(graph)
        keep = [n for n in graph.nodes if any(uses.get(o, 0) for o in n.outputs if o)]
        if len(keep) == len(graph.nodes):
            return graph
        graph.nodes = keep


def cancel_transposes(graph: Graph) -> Graph:
    """Merge `Transpose -> Transpose` chains; drop merged pairs that are the identity."""
    graph = _copy(graph)
    uses = _uses(graph)
    producers = graph.producers()
    outputs = set(graph.output_names)
    mapping: dict[str, str] = {}
    for node in graph.nodes:
        if node.op_type != "Transpose" or node.domain or "perm" not in node.attrs:
            continue
        src = producers.get(node.inputs[0])
        if (
            src is None
            or src.op_type != "Transpose"
            or src.domain
            or "perm" not in src.attrs
            or uses.get(src.outputs[0], 0) != 1
            or src.outputs[0] in outputs
        ):
            continue
        p1, p2 = list(src.attrs["perm"]), list(node.attrs["perm"])
        if len(p1) != len(p2):
            continue
        merged = [p1[i] for i in p2]
        node.inputs = [src.inputs[0]]
        node.attrs = {**node.attrs, "perm": merged}
        if merged == list(range(len(merged))) and node.outputs[0] not in outputs:
            mapping[node.outputs[0]] = src.inputs[0]
    _rename(graph, mapping)
    return remove_dead_nodes(graph)
