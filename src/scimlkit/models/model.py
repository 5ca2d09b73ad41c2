"""`Model`: a loaded graph as an Equinox module whose trainable parameters are pytree leaves.

Float initializers (and large float `Constant` tensors) become `model.params`, a dict of JAX
arrays that `jax.grad`, optax and `equinox` see as leaves. Integer, boolean and small
constants stay NumPy inside the static part of the module, so shape arithmetic folds away
while tracing. Calling the model runs the graph with `scimlkit.models.runtime`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .dtypes import NARROW, narrow_dtype, warn_64bit_once, x64_enabled
from .errors import DynamicShapeError, ModelInputError
from .graph import Graph, Node, ValueInfo
from .runtime import run_graph

__all__ = ["Model"]

#: (op_type, input index) slots whose value decides an output *shape*: a float initializer
#: feeding one stays a trace-time constant instead of becoming a trainable parameter.
SHAPE_SLOTS: frozenset[tuple[str, int]] = frozenset(
    {("Resize", 1), ("Resize", 2), ("Upsample", 1), ("Range", 0), ("Range", 1), ("Range", 2)}
)
#: Float `Constant` nodes with at least this many elements become parameters.
LARGE_CONSTANT = 16


def _is_trainable_dtype(dtype: np.dtype) -> bool:
    return dtype.name in ("float16", "float32", "float64", "bfloat16")


def _shape_slot_values(graph: Graph) -> set[str]:
    names: set[str] = set()
    for node in graph.walk():
        for i, name in enumerate(node.inputs):
            if (node.op_type, i) in SHAPE_SLOTS:
                names.add(name)
    return names


def split_params(
    graph: Graph, trainable: Callable[[str, np.ndarray], bool] | None = None
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Split `graph`'s top-level constants into (graph with static constants, trainable params)."""
    keep_static = _shape_slot_values(graph)

    def default_rule(name: str, value: np.ndarray) -> bool:
        return _is_trainable_dtype(value.dtype) and name not in keep_static

    rule = trainable or default_rule
    params: dict[str, np.ndarray] = {}
    static: dict[str, np.ndarray] = {}
    for name, value in graph.initializers.items():
        value = np.asarray(value)
        (params if rule(name, value) else static)[name] = value
    nodes: list[Node] = []
    for node in graph.nodes:
        value = node.attrs.get("value")
        if (
            node.op_type == "Constant"
            and not node.domain
            and len(node.attrs) == 1
            and isinstance(value, np.ndarray)
            and value.size >= LARGE_CONSTANT
            and rule(node.outputs[0], value)
        ):
            params[node.outputs[0]] = value
            continue
        nodes.append(node)
    return dataclasses.replace(graph, nodes=nodes, initializers=static), params


class _Static:
    """The static part of a Model (graph and trace-time constants); hashed by identity.

    It also caches the compiled whole-graph function that eager calls use, and whether the
    graph must run op by op (data-dependent shapes).
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.eager_only = False
        self.compiled = jax.jit(self.run)

    def run(self, params: Mapping[str, Any], inputs: list[Any]) -> list[Any]:
        return run_graph(self.graph, inputs, params=params)


class Model(eqx.Module):
    """A model loaded from a file (or built from a `Graph`), callable on NumPy or JAX arrays.

    **Arguments:**

    - `graph`: the `Graph` to run.
    - `trainable`: optional rule `(name, array) -> bool` choosing which top-level constants
      are parameters (default: float initializers and float Constants of >= 16 elements,
      except those that decide output shapes, such as Resize scales).

    **Example:**

    ```python
    import jax, numpy as np
    import scimlkit.models as sm
    model = sm.load("resnet.onnx")
    y = model(np.zeros((1, 3, 224, 224), np.float32))
    fast = jax.jit(model.__call__)         # params are leaves, so also eqx.filter_jit(model)
    grads = jax.grad(lambda m: m(x).sum())(model)
    ```
    """

    params: dict[str, jax.Array]
    _static: _Static = eqx.field(static=True)

    def __init__(self, graph: Graph, *, trainable: Callable[[str, np.ndarray], bool] | None = None) -> None:
        static_graph, params = split_params(graph, trainable)
        if not x64_enabled() and _uses_64bit(static_graph, params):
            warn_64bit_once(f"model '{graph.name}'")
        self.params = {name: jnp.asarray(value, dtype=narrow_dtype(value.dtype)) for name, value in params.items()}
        self._static = _Static(static_graph)

    # Identity semantics, so `jax.jit(model)` works (it hashes the function it compiles; the
    # parameters are then compile-time constants). `eqx.filter_jit(model)` traces them instead.
    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    # -- description -------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The model's `Graph`, with the current parameter values as initializers (NumPy)."""
        g = self._static.graph
        inits = dict(g.initializers)
        inits.update({k: np.asarray(v) for k, v in self.params.items()})
        return dataclasses.replace(g, initializers=inits)

    @property
    def inputs(self) -> list[ValueInfo]:
        """Graph inputs: names, dtypes and (possibly symbolic) shapes, in call order."""
        return list(self._static.graph.inputs)

    @property
    def outputs(self) -> list[ValueInfo]:
        """Graph outputs: names, dtypes and (possibly symbolic) shapes, in return order."""
        return list(self._static.graph.outputs)

    @property
    def num_params(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(np.prod(np.shape(v), dtype=np.int64) for v in self.params.values()))

    def summary(self, *, show: bool = True) -> str:
        """A text summary (inputs, outputs, op histogram, parameter count); printed unless `show=False`."""
        g = self._static.graph
        lines = [f"Model '{g.name}'" + (f" ({g.metadata['format']})" if "format" in g.metadata else "")]
        opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(g.opsets.items()))
        lines.append(f"  opsets:     {opsets}")
        lines.append("  inputs:")
        lines += [f"    {v.describe()}" for v in g.inputs]
        lines.append("  outputs:")
        lines += [f"    {v.describe()}" for v in g.outputs]
        n_const = sum(int(np.size(v)) for v in g.initializers.values())
        lines.append(f"  parameters: {self.num_params:,} in {len(self.params)} arrays; constants: {n_const:,} values")
        lines.append("  ops:")
        hist = g.op_histogram()
        width = max((len(op) for (_, op) in hist), default=4)
        for (domain, op), count in hist.items():
            dom = f"  [{domain}]" if domain else ""
            lines.append(f"    {op:<{width}}  {count:5d}{dom}")
        text = "\n".join(lines)
        if show:
            print(text)
        return text

    # -- execution -----------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the model: inputs positionally in graph-input order, or by name.

        Returns one JAX array for a single-output model, a tuple otherwise.
        """
        values = self._bind(args, kwargs)
        outputs = self._execute(values)
        outputs = [_as_jax(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
        infos = self._static.graph.inputs
        names = [v.name for v in infos]
        if len(args) > len(infos):
            raise ModelInputError(
                f"the model takes {len(infos)} input(s) {names}, but {len(args)} were given positionally"
            )
        bound: dict[str, Any] = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise ModelInputError(f"the model has no input named '{key}'; its inputs are {names}")
            if key in bound:
                raise ModelInputError(f"input '{key}' was given both positionally and by name")
            bound[key] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise ModelInputError(f"missing input(s) {missing}; the model takes {[v.describe() for v in infos]}")
        return [_check_input(info, bound[info.name]) for info in infos]

    def _execute(self, values: list[Any]) -> list[Any]:
        """Outside JAX transformations, run the whole graph compiled (cached per input
        signature); inside them (or for data-dependent shapes, strings), op by op."""
        static = self._static
        leaves = jax.tree_util.tree_leaves((self.params, values))
        traced = any(isinstance(v, jax.core.Tracer) for v in leaves)
        host_only = any(isinstance(v, np.ndarray) and v.dtype == object for v in leaves)
        if traced or host_only or static.eager_only:
            return static.run(self.params, values)
        try:
            return static.compiled(self.params, values)
        except DynamicShapeError:
            static.eager_only = True  # e.g. NonZero/Unique: output shapes depend on the data
            return static.run(self.params, values)

    def save_onnx(self, path: Any, **kwargs: Any) -> None:
        """Write the model (current parameter values) as an ONNX file; see `scimlkit.models.export.save_onnx`."""
        from .export import save_onnx

        save_onnx(self.graph, path, **kwargs)


def _uses_64bit(graph: Graph, params: Mapping[str, np.ndarray]) -> bool:
    """Float64 parameters or 64-bit inputs/outputs (static int64 constants stay exact in NumPy)."""
    infos = graph.inputs + graph.outputs
    return any(a.dtype in NARROW for a in params.values()) or any(v.dtype in NARROW for v in infos)


def _as_jax(value: Any) -> Any:
    if value is None or isinstance(value, jax.Array):
        return value
    if isinstance(value, list):
        return [_as_jax(v) for v in value]
    arr = np.asarray(value)
    if arr.dtype == object:
        return arr
    return jnp.asarray(arr)


def _check_input(info: ValueInfo, value: Any) -> Any:
    if info.kind.startswith("sequence"):
        if not isinstance(value, list | tuple):
            raise ModelInputError(f"input '{info.name}' is a sequence: pass a list of arrays")
        return [_to_array(info, v, check_shape=False) for v in value]
    if info.kind.startswith("optional") and value is None:
        return None
    return _to_array(info, value, check_shape=True)


def _to_array(info: ValueInfo, value: Any, *, check_shape: bool) -> Any:
    if not isinstance(value, jax.Array | np.ndarray):
        if value is None:
            raise ModelInputError(f"input '{info.name}' is None; expected {info.describe()}")
        value = np.asarray(value)
    shape = tuple(value.shape)
    dtype = np.dtype(value.dtype)
    if check_shape and info.shape is not None:
        if len(shape) != len(info.shape):
            raise ModelInputError(
                f"input '{info.name}' expects rank {len(info.shape)} ({info.describe()}), got shape {shape}"
            )
        bad = [i for i, (want, got) in enumerate(zip(info.shape, shape)) if isinstance(want, int) and want != got]
        if bad:
            raise ModelInputError(
                f"input '{info.name}' expects shape {info.describe()}, got {shape} (dimension {bad[0]} differs)"
            )
    if info.dtype is not None and narrow_dtype(dtype) != narrow_dtype(info.dtype):
        castable = np.can_cast(dtype, info.dtype, "same_kind") and dtype != np.bool_ and info.dtype != object
        if not castable:
            raise ModelInputError(f"input '{info.name}' expects dtype {info.dtype.name}, got {dtype.name}")
        value = value.astype(narrow_dtype(info.dtype))
    if isinstance(value, np.ndarray) and value.dtype != object:
        value = jnp.asarray(value)
    return value
