"""MXNet's fused `RNN` operator (modes `lstm`, `gru`, `rnn_tanh`, `rnn_relu`) as ONNX LSTM/GRU/RNN nodes.

The op takes `data` (T, N, C), one flat parameter vector (all weights layer by layer and
direction by direction, `i2h` then `h2h`, followed by all biases in the same order; as
Gluon's `_rnn_param_concat` builds it), the initial state(s) (L*D, N, H) and returns
the sequence (T, N, D*H) and the final states. Gates are reordered from MXNet's (cuDNN's)
`i f g o` / `r z n` to ONNX's `i o f c` / `z r h`; MXNet's GRU applies the reset gate
after the recurrent product (`linear_before_reset=1`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from .mxnet_ops import LowerContext, MxNode, MxValue, op, unsupported

_MODES = {"lstm": ("LSTM", 4, [0, 3, 1, 2]), "gru": ("GRU", 3, [1, 0, 2]),
          "rnn_tanh": ("RNN", 1, [0]), "rnn_relu": ("RNN", 1, [0])}  # fmt: skip


def _split_params(
    flat: np.ndarray, layers: int, dirs: int, gates: int, hidden: int, inp: int, node: MxNode
):
    """[(W, R, Wb, Rb) per layer and direction] from MXNet's flat parameter vector."""
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        if pos + n > flat.size:
            raise ModelFormatError(
                f"RNN {node.name!r}: parameter vector too short ({flat.size} values)"
            )
        out = flat[pos : pos + n]
        pos += n
        return out

    weights = []
    for layer in range(layers):
        size = inp if layer == 0 else dirs * hidden
        for _ in range(dirs):
            w = take(gates * hidden * size).reshape(gates * hidden, size)
            r = take(gates * hidden * hidden).reshape(gates * hidden, hidden)
            weights.append([w, r])
    for entry in weights:
        entry.extend([take(gates * hidden), take(gates * hidden)])
    if pos != flat.size:
        raise ModelFormatError(
            f"RNN {node.name!r}: parameter vector has {flat.size - pos} values too many"
        )
    return weights


def _reorder(a: np.ndarray, order: list[int], hidden: int) -> np.ndarray:
    return np.concatenate([a[g * hidden : (g + 1) * hidden] for g in order], axis=0)


@op("RNN")
def _rnn(ctx: LowerContext, node: MxNode, ins: list[MxValue]):
    mode = node.get("mode", "lstm")
    if mode not in _MODES:
        raise ModelFormatError(f"RNN {node.name!r}: unknown mode {mode!r}")
    if node.bool("use_sequence_length") or node.get("projection_size") is not None:
        raise unsupported(node, "use_sequence_length / projection_size")
    onnx_op, gates, order = _MODES[mode]
    x, params = ins[0], ins[1]
    states = ins[2:]
    if params.const is None:
        raise ModelFormatError(f"RNN {node.name!r}: its parameters must be stored (constant)")
    hidden = node.int("state_size")
    layers = node.int("num_layers", 1)
    dirs = 2 if node.bool("bidirectional") else 1
    flat = params.const.reshape(-1)
    # the input size follows from the parameter count
    per_rest = (
        sum(dirs * gates * hidden * (dirs * hidden + hidden) for _ in range(layers - 1))
        + layers * dirs * 2 * gates * hidden
    )
    first = flat.size - per_rest
    if first <= 0 or first % (dirs * gates * hidden):
        raise ModelFormatError(
            f"RNN {node.name!r}: parameter count {flat.size} does not fit the attributes"
        )
    inp = first // (dirs * gates * hidden) - hidden
    weights = _split_params(flat, layers, dirs, gates, hidden, inp, node)
    dtype = x.dtype
    seq = ctx.tensor(x)
    final_h, final_c = [], []
    for layer in range(layers):
        group = weights[layer * dirs : (layer + 1) * dirs]
        w = np.stack([_reorder(g[0], order, hidden) for g in group]).astype(dtype)
        r = np.stack([_reorder(g[1], order, hidden) for g in group]).astype(dtype)
        bias = np.stack([np.concatenate([_reorder(g[2], order, hidden), _reorder(g[3], order, hidden)])
                         for g in group]).astype(dtype)  # fmt: skip
        inputs = [seq, ctx.const(w, name=f"{node.name}_W{layer}"), ctx.const(r, name=f"{node.name}_R{layer}"),
                  ctx.const(bias, name=f"{node.name}_B{layer}"), ""]  # fmt: skip
        for s in states[: 2 if mode == "lstm" else 1]:
            if s.const is None and not s.name:  # zeros of an inferred size: ONNX's default
                inputs.append("")
            else:
                start = layer * dirs
                part = ctx.node(
                    "Slice", [s, ctx.const([start]), ctx.const([start + dirs]), ctx.const([0])]
                )
                inputs.append(part)
        while inputs and inputs[-1] == "":
            inputs.pop()
        attrs: dict = {
            "hidden_size": hidden,
            "direction": "bidirectional" if dirs == 2 else "forward",
        }
        if onnx_op == "GRU":
            attrs["linear_before_reset"] = 1
        if onnx_op == "RNN":
            attrs["activations"] = ["Relu" if mode == "rnn_relu" else "Tanh"] * dirs
        n_out = 3 if onnx_op == "LSTM" else 2
        outs = ctx.b.node(onnx_op, inputs, attrs, outputs=n_out, name=f"{node.name}_l{layer}")
        y = ctx.b.node("Transpose", [outs[0]], {"perm": [0, 2, 1, 3]})
        seq = ctx.b.node("Reshape", [y, ctx.const([0, 0, -1])])
        final_h.append(outs[1])
        if onnx_op == "LSTM":
            final_c.append(outs[2])
    t, n = (None, None) if x.shape is None else x.shape[:2]
    results = [MxValue(seq, (t, n, dirs * hidden), dtype)]
    for finals in (final_h, final_c) if mode == "lstm" else (final_h,):
        h = finals[0] if len(finals) == 1 else ctx.b.node("Concat", finals, {"axis": 0})
        results.append(MxValue(h, (layers * dirs, n, hidden), dtype))
    return results
