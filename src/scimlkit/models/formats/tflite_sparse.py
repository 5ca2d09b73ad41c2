"""Densify TFLite sparse constant tensors (SparsityParameters: traversal order, block map, CSR levels)."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from . import _flatbuf as fb

_INDEX_VECTORS = {1: "<i4", 2: "<u2", 3: "u1"}


def _index_vector(dim: fb.Table, type_field: int, value_field: int) -> np.ndarray:
    kind = dim.scalar(type_field, "B", 0)
    table = dim.table(value_field)
    if kind not in _INDEX_VECTORS or table is None:
        raise ModelFormatError("sparse tensor with a missing or unknown index vector")
    return table.vector(0, _INDEX_VECTORS[kind]).astype(np.int64)


def densify(sparsity: fb.Table, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The dense array of a sparse constant stored as `values` with `sparsity` parameters."""
    order = [int(d) for d in sparsity.vector(0, "<i4")]
    block_map = [int(d) for d in sparsity.vector(1, "<i4")]
    levels = sparsity.tables(2)
    n = len(shape)
    if len(levels) != len(order):
        raise ModelFormatError("sparse tensor: traversal order and dimension metadata disagree")
    block_sizes = {}
    for level, d in zip(levels, order, strict=True):
        if d >= n:
            block_sizes[block_map[d - n]] = level.scalar(1, "i", 0)
    dense = np.zeros(shape, values.dtype)
    coord = [0] * n

    def walk(level: int, pos: int) -> None:
        if level == len(levels):
            if pos >= values.size:
                raise ModelFormatError("sparse tensor: index beyond its values")
            dense[tuple(coord)] = values[pos]
            return
        meta, d = levels[level], order[level]
        if d < n:
            target, stride = d, block_sizes.get(d, 1)
        else:
            target, stride = block_map[d - n], 1
        if meta.scalar(0, "b", 0) == 0:  # DENSE
            size = meta.scalar(1, "i", 0)
            items = [(i, pos * size + i) for i in range(size)]
        else:  # SPARSE_CSR
            segments = _index_vector(meta, 2, 3)
            indices = _index_vector(meta, 4, 5)
            if pos + 1 >= segments.size:
                raise ModelFormatError("sparse tensor: segment index out of range")
            items = [
                (int(indices[k]), k) for k in range(int(segments[pos]), int(segments[pos + 1]))
            ]
        for idx, child in items:
            coord[target] += idx * stride
            walk(level + 1, child)
            coord[target] -= idx * stride

    walk(0, 0)
    return dense
