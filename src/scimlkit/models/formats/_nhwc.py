"""Channels-last helpers shared by the Keras, TensorFlow and TFLite readers.

Those formats keep tensors channels-last (NHWC) while ONNX's Conv, pooling and
BatchNormalization work channels-first (NCHW). Readers wrap each tensor in a `Value`
that remembers its *logical* (source, channels-last) shape and whether it is currently
stored channels-first. `first()`/`last()` insert a Transpose only when a consumer needs
the other layout, and cache it, so chains of convolutions, normalisations and
activations stay channels-first without transposes in between; graph inputs and
outputs keep the source layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..graph import GraphBuilder

Shape = tuple[int | None, ...]


def to_first_perm(rank: int) -> list[int]:
    """Permutation NHWC... -> NCHW... for a tensor of `rank`."""
    return [0, rank - 1, *range(1, rank - 1)]


def to_last_perm(rank: int) -> list[int]:
    """Permutation NCHW... -> NHWC... for a tensor of `rank`."""
    return [0, *range(2, rank), 1]


@dataclass
class Value:
    """A tensor of the source model: its graph name(s), logical shape and dtype.

    `shape` is always the source (channels-last) shape, `None` for unknown dims.
    `name` holds the tensor as stored: channels-first when `is_first` is set.
    """

    name: str
    shape: Shape | None
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    is_first: bool = False
    _other: str | None = None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def last(self, b: GraphBuilder) -> str:
        """The tensor's name in the source (channels-last) layout."""
        if not self.is_first:
            return self.name
        if self._other is None:
            self._other = b.node(
                "Transpose", [self.name], {"perm": to_last_perm(self._need_rank())}
            )
        return self._other

    def first(self, b: GraphBuilder) -> str:
        """The tensor's name in channels-first layout (NCHW...)."""
        if self.is_first:
            return self.name
        if self._other is None:
            self._other = b.node(
                "Transpose", [self.name], {"perm": to_first_perm(self._need_rank())}
            )
        return self._other

    def in_layout(self, b: GraphBuilder, first: bool) -> str:
        return self.first(b) if first else self.last(b)

    def stored(self) -> str:
        """The name as stored (layout given by `is_first`)."""
        return self.name

    def _need_rank(self) -> int:
        if self.shape is None:
            raise ValueError(f"rank of {self.name} is unknown")
        return len(self.shape)

    def like(self, name: str, shape: Shape | None = None, dtype: np.dtype | None = None) -> Value:
        """A new value in the same layout as this one (for elementwise results)."""
        return Value(
            name,
            self.shape if shape is None else shape,
            self.dtype if dtype is None else dtype,
            self.is_first,
        )


def common_layout(values: Sequence[Value]) -> bool:
    """Whether elementwise ops over `values` should run channels-first.

    Channels-first when every operand of rank >= 3 is already stored channels-first and
    all operands have the same rank (so broadcasting is unaffected by the layout).
    """
    ranks = {v.rank for v in values}
    if len(ranks) != 1 or None in ranks or next(iter(ranks)) < 3:
        return False
    return all(v.is_first for v in values)


def same_pads(
    in_sizes: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int] | None:
    """Explicit ONNX pads (begins then ends) reproducing TensorFlow's SAME padding.

    Returns None when a spatial size is unknown (use `auto_pad="SAME_UPPER"` then).
    """
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations, strict=True):
        if size is None:
            return None
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def conv_out_size(size: int | None, k: int, s: int, d: int, pad_total: int) -> int | None:
    if size is None:
        return None
    return (size + pad_total - ((k - 1) * d + 1)) // s + 1


def conv_attrs(
    in_sizes: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    padding: str,
) -> tuple[dict, list[int | None]]:
    """ONNX Conv/pool attributes for TF-style padding ("same"/"valid"/"causal") and the output sizes."""
    n = len(kernel)
    padding = padding.lower()
    attrs: dict = {"kernel_shape": list(kernel), "strides": list(strides)}
    if any(d != 1 for d in dilations):
        attrs["dilations"] = list(dilations)
    if padding == "valid":
        pads = [0] * (2 * n)
    elif padding == "same":
        pads = same_pads(in_sizes, kernel, strides, dilations)
        if pads is None:
            attrs["auto_pad"] = "SAME_UPPER"
            return attrs, [
                None if sz is None else math.ceil(sz / s)
                for sz, s in zip(in_sizes, strides, strict=True)
            ]
    elif padding == "causal":
        pads = [(k - 1) * d for k, d in zip(kernel, dilations, strict=True)] + [0] * n
    else:
        raise ValueError(f"unknown padding {padding!r}")
    if any(pads):
        attrs["pads"] = pads
    outs = [
        conv_out_size(sz, k, s, d, pads[i] + pads[i + n])
        for i, (sz, k, s, d) in enumerate(zip(in_sizes, kernel, strides, dilations, strict=True))
    ]
    return attrs, outs


def const(b: GraphBuilder, name: str, value: np.ndarray | Sequence[int] | float, dtype=None) -> str:
    """Add a constant initializer (ints default to int64, as ONNX shape inputs need)."""
    arr = np.asarray(value, dtype=dtype)
    if dtype is None and arr.dtype.kind == "i":
        arr = arr.astype(np.int64)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return b.initializer(name, arr)


def set_outputs(
    b: GraphBuilder, values: Sequence[tuple[str, str, np.dtype | None, Shape | None]]
) -> None:
    """Declare graph outputs `(value, wanted_name, dtype, shape)` under the source model's names.

    The producing node's output is renamed in place when the wanted name is free among
    value names (node names do not count); otherwise an Identity carries the name.
    """
    graph = b.graph
    taken = {v.name for v in graph.inputs} | set(graph.initializers)
    taken |= {n for node in graph.nodes for n in (*node.inputs, *node.outputs)}
    producers = graph.producers()
    for value, wanted, dtype, shape in values:
        if value == wanted:
            graph.outputs.append(_vi(value, dtype, shape))
            continue
        if (
            wanted not in taken
            and value in producers
            and value not in {o.name for o in graph.outputs}
        ):
            for node in graph.nodes:
                node.inputs = [wanted if n == value else n for n in node.inputs]
                node.outputs = [wanted if n == value else n for n in node.outputs]
            b._used.add(wanted)
            taken.add(wanted)
            graph.outputs.append(_vi(wanted, dtype, shape))
            continue
        b.output(value, name=wanted if wanted not in taken else None, dtype=dtype, shape=shape)
        taken.add(graph.outputs[-1].name)


def _vi(name, dtype, shape):
    from ..graph import ValueInfo

    return ValueInfo(
        name, None if dtype is None else np.dtype(dtype), None if shape is None else tuple(shape)
    )
