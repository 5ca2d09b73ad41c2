"""Execution of a `Graph` on JAX: walk the nodes in topological order over an environment of values.

Values are JAX arrays, or NumPy arrays when they are known at trace time (initializers that
are not trainable, shapes, constants). A node whose inputs are all NumPy runs eagerly under
`jax.ensure_compile_time_eval()` and its outputs are turned back into NumPy: constant
folding, so shape arithmetic (`Shape -> Gather -> Concat -> Reshape`) never produces tracers
under `jax.jit`. Sequences are Python lists; an empty optional is `None`.

Control-flow kernels run their bodies with `ctx.run_graph(subgraph, inputs)`; a subgraph
sees every value of the scopes around it (outer-scope capture), as ONNX specifies.

**Example:**

```python
from scimlkit.models.formats.onnx import read_onnx
from scimlkit.models.runtime import run_graph
graph = read_onnx("model.onnx")
(y,) = run_graph(graph, [x])
```
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import jax
import numpy as np

from .errors import (
    DynamicShapeError,
    ModelError,
    OpExecutionError,
    UnsupportedOp,
    UnsupportedOperatorError,
)
from .graph import Graph, Node
from .ops import _registry as registry

__all__ = ["check_supported", "find_unsupported", "is_static_value", "run_graph", "to_numpy"]

_TRACER_ERRORS: tuple[type[BaseException], ...] = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerBoolConversionError,
)


def is_static_value(value: Any) -> bool:
    """True if a runtime value (tensor, sequence, optional) is fully known at trace time."""
    if value is None:
        return True
    if isinstance(value, list | tuple):
        return all(is_static_value(v) for v in value)
    return registry.is_static(value) or isinstance(value, str | bytes)


def to_numpy(value: Any) -> Any:
    """Convert a runtime value (array, list of arrays, None) to NumPy."""
    if value is None:
        return None
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_numpy(v) for v in value)
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(value)


def find_unsupported(graph: Graph, opsets: Mapping[str, int] | None = None) -> list[UnsupportedOp]:
    """Every (op, domain, opset) in `graph` (subgraphs included) without a kernel, with node names."""
    found: dict[tuple[str, str, int], list[str]] = {}

    def visit(g: Graph, inherited: Mapping[str, int]) -> None:
        scope = {**inherited, **g.opsets}
        for node in g.nodes:
            domain = node.domain or ""
            opset = _opset(scope, domain)
            if registry.lookup(node.op_type, domain, opset) is None:
                found.setdefault((node.op_type, domain, opset), []).append(node.name or node.outputs[0])
            for sub in node.subgraphs():
                visit(sub, scope)

    visit(graph, dict(opsets or {}))
    return [UnsupportedOp(op, dom, opset, tuple(names)) for (op, dom, opset), names in found.items()]


def check_supported(graph: Graph, source: str = "model") -> None:
    """Raise one `UnsupportedOperatorError` listing every op of `graph` that has no kernel."""
    missing = find_unsupported(graph)
    if missing:
        raise UnsupportedOperatorError(missing, source)


def _opset(scope: Mapping[str, int], domain: str) -> int:
    if domain in ("", "ai.onnx"):
        return scope.get("", scope.get("ai.onnx", 1))
    return scope.get(domain, 1)


def run_graph(
    graph: Graph,
    inputs: Sequence[Any] | Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    outer: Mapping[str, Any] | None = None,
    opsets: Mapping[str, int] | None = None,
    extras: dict[str, Any] | None = None,
    observer: Callable[[Node, tuple[Any, ...]], None] | None = None,
) -> list[Any]:
    """Run `graph` and return its outputs, in order.

    **Arguments:**

    - `inputs`: values for `graph.inputs`, positionally or by name.
    - `params`: values that replace initializers of the same name (e.g. the trainable
      parameters of a `Model`, as JAX arrays or tracers).
    - `outer`: values of enclosing scopes (for subgraphs of control-flow ops).
    - `opsets`: opset imports inherited from an enclosing graph.
    - `extras`: passed to every kernel as `ctx.extras`.
    - `observer`: called as `observer(node, outputs)` after each top-level node (debugging:
      find the first node whose output differs from a reference).

    **Returns:** a list with one value per graph output (array, list for sequences, None
    for empty optionals).
    """
    scope = {**(opsets or {}), **graph.opsets}
    local: dict[str, Any] = dict(graph.initializers)
    if params:
        local.update(params)
    if isinstance(inputs, Mapping):
        for info in graph.inputs:
            if info.name in inputs:
                local[info.name] = inputs[info.name]
            elif info.name not in local:
                raise ModelError(f"graph '{graph.name}': missing input '{info.name}'")
    else:
        if len(inputs) > len(graph.inputs):
            raise ModelError(f"graph '{graph.name}' takes {len(graph.inputs)} inputs, got {len(inputs)}")
        for info, value in zip(graph.inputs, inputs):
            local[info.name] = value
    env: MutableMapping[str, Any] = ChainMap(local, outer) if outer is not None else local
    extras = extras if extras is not None else {}

    for node in graph.nodes:
        _run_node(node, env, local, scope, extras)
        if observer is not None:
            observer(node, tuple(env.get(o) if o else None for o in node.outputs))

    try:
        return [env[info.name] for info in graph.outputs]
    except KeyError as exc:
        raise ModelError(f"graph '{graph.name}': output {exc} was never computed") from None


def _run_node(
    node: Node, env: MutableMapping[str, Any], local: dict[str, Any], scope: Mapping[str, int], extras: dict[str, Any]
) -> None:
    domain = node.domain or ""
    opset = _opset(scope, domain)
    found = registry.lookup(node.op_type, domain, opset)
    if found is None:
        raise UnsupportedOperatorError([UnsupportedOp(node.op_type, domain, opset, (node.name,))])
    kernel, version = found
    try:
        args = [env[name] if name else None for name in node.inputs]
    except KeyError as exc:
        raise ModelError(f"node '{node.name}' ({node.op_type}) reads {exc}, which is not defined") from None
    while args and args[-1] is None and not node.inputs[len(args) - 1]:
        args.pop()  # trailing omitted optionals: let the kernel's defaults apply

    def run_sub(subgraph: Graph, sub_inputs: Sequence[Any]) -> list[Any]:
        return run_graph(subgraph, list(sub_inputs), outer=env, opsets=scope, extras=extras)

    ctx = registry.OpContext(
        node=node,
        version=version,
        opset=opset,
        num_outputs=len(node.outputs),
        run_graph=run_sub,
        extras=extras,
    )
    fold = all(is_static_value(a) for a in args)
    try:
        if fold:
            with jax.ensure_compile_time_eval():
                result = kernel(ctx, *args, **node.attrs)
                result = _to_static(result)
        else:
            result = kernel(ctx, *args, **node.attrs)
    except ModelError:
        raise
    except _TRACER_ERRORS as exc:
        raise DynamicShapeError(
            f"{ctx.describe()}: needs a value that depends on the input data while being traced "
            "(jax.jit, jax.vmap, jax.grad): its output shape is not known in advance. Run the model "
            "eagerly (without jit), or export it with static shapes."
        ) from exc
    except Exception as exc:
        raise OpExecutionError(f"{ctx.describe()} failed: {type(exc).__name__}: {exc}") from exc

    outputs = result if isinstance(result, tuple) else (result,)
    names = node.outputs
    if len(outputs) < len(names) and any(names[len(outputs) :]):
        raise OpExecutionError(
            f"{ctx.describe()} produced {len(outputs)} output(s) but the node asks for {len(names)}"
        )
    for name, value in zip(names, outputs):
        if name:
            local[name] = value


def _to_static(result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(_to_static(r) for r in result)
    if isinstance(result, list):
        return [_to_static(r) for r in result]
    if result is None or isinstance(result, np.ndarray | str | bytes):
        return result
    if isinstance(result, jax.core.Tracer):
        # a control-flow op with static inputs whose subgraph reads traced outer values
        return result
    if isinstance(result, jax.Array):
        return np.asarray(result)
    if isinstance(result, np.generic | int | float | bool):
        return np.asarray(result)
    return result
