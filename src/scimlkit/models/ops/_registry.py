"""The op registry: JAX kernels keyed by (domain, op_type, since_version).

Kernels are registered with `register_op` in the family modules of this package
(`math.py`, `nn.py`, `tensor.py`, ...). The kernel contract:

```python
@register_op("Gemm")                       # all ONNX versions of Gemm
def gemm(ctx, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    ...
    return y                               # one array, or a tuple for several outputs
```

- Inputs arrive positionally, in ONNX order; an omitted optional input is `None`;
  variadic inputs arrive as `*args`. Values are JAX arrays, or NumPy arrays when they
  are known at trace time (constants, shapes): the runtime folds a node whose inputs are
  all NumPy by running its kernel eagerly, so kernels simply use `jax.numpy`.
- Attributes arrive as keyword arguments with their ONNX names; an attribute missing from
  the node is not passed, so the Python default is the ONNX default.
- `ctx` is an `OpContext`: the node, the resolved schema version (`ctx.version`), the
  number of requested outputs, `ctx.static(value, "what")` to demand a trace-time value
  (a `DynamicShapeError` if it is only known at run time), and `ctx.subgraph` for
  control flow.
- `since=None` registers the kernel for every schema version ONNX defines for the op;
  pass an explicit tuple where versions need different kernels. Registering the same key
  twice raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DynamicShapeError, ModelError
from ..graph import Graph, Node

Kernel = Callable[..., Any]
_REGISTRY: dict[tuple[str, str], dict[int, Kernel]] = {}


def _normalize_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


@functools.cache
def _schema_index() -> dict[tuple[str, str], tuple[int, ...]]:
    """(domain, op_type) -> sorted since_versions of every schema ONNX knows (built once)."""
    try:
        from onnx import defs
    except ImportError:  # pragma: no cover - onnx is a dependency of the models extra
        return {}
    index: dict[tuple[str, str], set[int]] = {}
    for s in defs.get_all_schemas_with_history():
        index.setdefault((_normalize_domain(s.domain), s.name), set()).add(s.since_version)
    return {key: tuple(sorted(v)) for key, v in index.items()}


def onnx_versions(op_type: str, domain: str = "") -> tuple[int, ...]:
    """All schema since_versions ONNX defines for an op (empty if ONNX does not know it)."""
    return _schema_index().get((_normalize_domain(domain), op_type), ())


@functools.cache
def schema_version(op_type: str, domain: str, opset: int) -> int | None:
    """The since_version of the schema that applies to `op_type` at `opset` (None if none)."""
    versions = [v for v in onnx_versions(op_type, domain) if v <= opset]
    return max(versions) if versions else None


def register_op(op_type: str, *, domain: str = "", since: Sequence[int] | None = None) -> Callable[[Kernel], Kernel]:
    """Register a kernel for `op_type` in `domain` for the given schema versions."""
    domain = _normalize_domain(domain)

    def decorator(fn: Kernel) -> Kernel:
        versions = tuple(since) if since is not None else (onnx_versions(op_type, domain) or (1,))
        table = _REGISTRY.setdefault((domain, op_type), {})
        for v in versions:
            if v in table:
                raise ValueError(f"kernel for {domain or 'ai.onnx'}::{op_type} version {v} registered twice")
            table[v] = fn
        return fn

    return decorator


def lookup(op_type: str, domain: str, opset: int) -> tuple[Kernel, int] | None:
    """Find the kernel and schema version for `op_type` at the model's `opset` of `domain`."""
    domain = _normalize_domain(domain)
    table = _REGISTRY.get((domain, op_type))
    if not table:
        return None
    version = schema_version(op_type, domain, opset)
    if version is None:  # op unknown to ONNX (custom domain) or newer than the installed onnx
        candidates = [v for v in table if v <= opset]
        if not candidates:
            return None
        version = max(candidates)
    kernel = table.get(version)
    return None if kernel is None else (kernel, version)


def registered() -> dict[tuple[str, str], tuple[int, ...]]:
    """Every registered (domain, op_type) with its covered schema versions."""
    return {key: tuple(sorted(table)) for key, table in sorted(_REGISTRY.items())}


def is_static(value: Any) -> bool:
    """True if `value` is known at trace time (a NumPy array or Python scalar)."""
    return isinstance(value, np.ndarray | np.generic | int | float | bool)


@dataclass
class OpContext:
    """What a kernel knows besides its inputs and attributes."""

    node: Node
    version: int
    opset: int
    num_outputs: int
    run_graph: Callable[[Graph, Sequence[Any]], list[Any]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def static(self, value: Any, what: str) -> np.ndarray:
        """Return `value` as a NumPy array, or raise if it is only known at run time."""
        if value is None:
            raise DynamicShapeError(f"{self.describe()}: {what} is missing")
        if is_static(value):
            return np.asarray(value)
        try:
            return np.asarray(value)  # a concrete JAX array outside of tracing
        except Exception as exc:  # jax raises TracerArrayConversionError (and friends) here
            raise DynamicShapeError(
                f"{self.describe()}: its {what} depends on the input data, so its output shape is "
                "not known while tracing (jax.jit, jax.vmap, jax.grad). Run the model eagerly, "
                "or export it with static shapes."
            ) from exc

    def subgraph(self, graph: Graph, inputs: Sequence[Any]) -> list[Any]:
        """Run a graph attribute (a branch, a loop body, a modifier) on `inputs`; its outputs."""
        if self.run_graph is None:
            raise ModelError(f"{self.describe()}: its subgraphs need a runtime that can run them")
        return list(self.run_graph(graph, list(inputs)))

    def describe(self) -> str:
        domain = self.node.domain or "ai.onnx"
        name = f" '{self.node.name}'" if self.node.name else ""
        return f"{domain}::{self.node.op_type}{name}"
