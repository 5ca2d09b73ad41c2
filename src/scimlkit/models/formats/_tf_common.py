"""Lowerings shared by the TensorFlow and TFLite readers (both follow TensorFlow op semantics)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelFormatError
from ..graph import GraphBuilder
from ._nhwc import const

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def strided_slice(
    b: GraphBuilder,
    x: str,
    rank: int,
    begin: Sequence[int],
    end: Sequence[int],
    strides: Sequence[int],
    *,
    begin_mask: int = 0,
    end_mask: int = 0,
    ellipsis_mask: int = 0,
    new_axis_mask: int = 0,
    shrink_axis_mask: int = 0,
    name: str | None = None,
) -> str:
    """TensorFlow's StridedSlice (constant begin/end/strides, all five masks) as ONNX Slice/Unsqueeze/Squeeze."""
    n = len(begin)
    # Expand the ellipsis and new axes into a full per-dimension spec.
    specs: list[
        tuple[str, int, int, int, bool, bool, bool]
    ] = []  # kind, b, e, s, bmask, emask, shrink
    consumed = sum(
        1 for i in range(n) if not (ellipsis_mask >> i) & 1 and not (new_axis_mask >> i) & 1
    )
    for i in range(n):
        if (ellipsis_mask >> i) & 1:
            specs.extend(("full", 0, 0, 1, True, True, False) for _ in range(rank - consumed))
        elif (new_axis_mask >> i) & 1:
            specs.append(("new", 0, 0, 1, False, False, False))
        else:
            specs.append(
                (
                    "slice",
                    int(begin[i]),
                    int(end[i]),
                    int(strides[i]),
                    bool((begin_mask >> i) & 1),
                    bool((end_mask >> i) & 1),
                    bool((shrink_axis_mask >> i) & 1),
                )
            )
    axes, starts, ends, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = 0
    for out_pos, (kind, bg, en, st, bm, em, shrink) in enumerate(specs):
        if kind == "new":
            unsqueeze.append(out_pos)
            continue
        if kind == "slice":
            if st == 0:
                raise ModelFormatError("StridedSlice with a zero stride")
            if shrink:
                start, stop, st = bg, (bg + 1 if bg != -1 else INT64_MAX), 1
                squeeze.append(dim)
            else:
                start = (0 if st > 0 else INT64_MAX) if bm else bg
                stop = (INT64_MAX if st > 0 else INT64_MIN) if em else en
            if not (start == 0 and stop == INT64_MAX and st == 1):
                axes.append(dim)
                starts.append(start)
                ends.append(stop)
                steps.append(st)
        dim += 1
    y = x
    if axes:
        y = b.node(
            "Slice",
            [
                y,
                const(b, "starts", starts),
                const(b, "ends", ends),
                const(b, "axes", axes),
                const(b, "steps", steps),
            ],
            name=name if not (squeeze or unsqueeze) else None,
        )
    if squeeze:
        y = b.node("Squeeze", [y, const(b, "axes", squeeze)])
    if unsqueeze:
        # positions counted in the output after shrinking; recompute against the squeezed rank
        kept = [p for p in range(len(specs)) if p not in unsqueeze]
        shrunk_positions = {kept[d] for d in squeeze}
        out_axes = []
        pos = 0
        for p in range(len(specs)):
            if p in shrunk_positions:
                continue
            if p in unsqueeze:
                out_axes.append(pos)
            pos += 1
        y = b.node("Unsqueeze", [y, const(b, "axes", out_axes)])
    if y == x:
        y = b.node("Identity", [x], name=name)
    return y


def conv_transpose_pads(
    in_sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    out_sizes: Sequence[int],
    dilations=None,
) -> dict:
    """ONNX ConvTranspose pads/output_padding giving `out_sizes` (TensorFlow puts the odd pad at the end)."""
    dilations = dilations or [1] * len(kernel)
    begins, ends, extra = [], [], []
    for size, k, s, out, d in zip(in_sizes, kernel, strides, out_sizes, dilations, strict=True):
        total = (size - 1) * s + (k - 1) * d + 1 - out
        extra.append(max(-total, 0))
        total = max(total, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    attrs: dict = {"pads": begins + ends}
    if any(extra):
        attrs["output_padding"] = extra
    return attrs


def fused_activation(b: GraphBuilder, x: str, kind: str) -> str:
    """Apply a fused activation by name: NONE, RELU, RELU6, RELU_N1_TO_1, TANH."""
    if kind in ("NONE", ""):
        return x
    if kind == "RELU":
        return b.node("Relu", [x])
    if kind == "RELU6":
        return b.node("Clip", [x, const(b, "zero", np.float32(0)), const(b, "six", np.float32(6))])
    if kind == "RELU_N1_TO_1":
        return b.node(
            "Clip", [x, const(b, "minus_one", np.float32(-1)), const(b, "one", np.float32(1))]
        )
    if kind == "TANH":
        return b.node("Tanh", [x])
    raise ModelFormatError(f"unsupported fused activation {kind}")
