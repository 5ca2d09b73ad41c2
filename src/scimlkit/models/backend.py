"""The ONNX backend API (`onnx.backend.base`) on top of scimlkit's runtime.

This lets ONNX's own test runner (`onnx.backend.test.BackendTest`) drive the op library
through its conformance suite, and lets any tool written against the backend API use
scimlkit.

Inputs are handed to the kernels as JAX arrays (strings stay NumPy `object` arrays, which
JAX cannot hold); the graph runs eagerly by default, so ops with data-dependent output shapes
work. `prepare(model, jit=True)` compiles the whole graph with `jax.jit` instead.

**Example:**

```python
import onnx
from scimlkit.models.backend import ScimlkitBackend
rep = ScimlkitBackend.prepare(onnx.load("model.onnx"))
outputs = rep.run([x])
```
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from onnx.backend.base import Backend, BackendRep

from .formats.onnx import read_onnx
from .graph import Graph
from .runtime import check_supported, run_graph, to_numpy

__all__ = ["ScimlkitBackend", "ScimlkitBackendRep", "prepare", "run_model", "run_node", "supports_device"]


def to_jax(value: Any) -> Any:
    """Turn a NumPy input into a JAX array where JAX can hold its dtype (lists/None recurse)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [to_jax(v) for v in value]
    if isinstance(value, dict):
        return value
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in "USV":
        return arr
    try:
        return jnp.asarray(arr)
    except (TypeError, ValueError):
        return arr


class ScimlkitBackendRep(BackendRep):
    """A prepared model: `run(inputs)` returns a tuple of NumPy outputs."""

    def __init__(self, graph: Graph, *, jit: bool = False) -> None:
        self.graph = graph
        self.jit = jit
        self._compiled = jax.jit(self._run) if jit else None

    def _run(self, inputs: list[Any]) -> list[Any]:
        return run_graph(self.graph, inputs)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            inputs = [inputs[v.name] for v in self.graph.inputs if v.name in inputs]
        elif not isinstance(inputs, list | tuple):
            inputs = [inputs]
        values = [to_jax(v) for v in inputs]
        outputs = self._compiled(values) if self._compiled is not None else self._run(values)
        return tuple(to_numpy(o) for o in outputs)


class ScimlkitBackend(Backend):
    """`onnx.backend.base.Backend` implementation running models with scimlkit."""

    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        return True

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> ScimlkitBackendRep:
        super().prepare(model, device, **kwargs)
        graph = read_onnx(model)
        check_supported(graph, "ONNX model")
        return ScimlkitBackendRep(graph, jit=bool(kwargs.get("jit", False)))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Any, device: str = "CPU", outputs_info: Any = None, **kwargs: Any):
        import onnx
        from onnx import helper

        values = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
        names = [n for n in node.input if n]
        graph_inputs = [
            helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.shape(v))
            for name, v in zip(names, values)
        ]
        graph_outputs = [helper.make_empty_tensor_value_info(o) for o in node.output]
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(
            helper.make_graph([node], "run_node", graph_inputs, graph_outputs),
            opset_imports=[helper.make_opsetid(node.domain or "", opset)],
        )
        return cls.prepare(model, device).run(values)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        kinds = {d.platform.upper() for d in jax.devices()}
        wanted = device.split(":")[0].upper()
        return wanted == "CPU" or (wanted == "CUDA" and "GPU" in kinds) or wanted in kinds


prepare = ScimlkitBackend.prepare
run_model = ScimlkitBackend.run_model
run_node = ScimlkitBackend.run_node
supports_device = ScimlkitBackend.supports_device
