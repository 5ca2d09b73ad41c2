"""Converters for Keras recurrent layers (LSTM, GRU, SimpleRNN, Bidirectional) and MultiHeadAttention.

Recurrent layers lower to ONNX LSTM/GRU/RNN (time-major, gate order changed from
Keras's i,f,c,o to ONNX's i,o,f,c); attention lowers to MatMul/Softmax.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..graph import GraphBuilder
from ._nhwc import Value, const
from .keras_layers import LayerSpec, layer

_RNN_ACTS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def _act(name: str | None, layer_name: str) -> str:
    key = (name or "linear").lower()
    if key not in _RNN_ACTS:
        raise ModelFormatError(
            f"layer {layer_name!r}: recurrent activation {key!r} is not supported"
        )
    return _RNN_ACTS[key]


def _cell_params(
    cls: str, cfg: dict, arrays: list[np.ndarray], name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """ONNX W, R, B (one direction, without the leading axis) and attributes for a Keras RNN layer."""
    units = int(cfg["units"])
    kernel, recurrent = arrays[0], arrays[1]
    use_bias = cfg.get("use_bias", True)
    if cls == "LSTM":

        def reorder(m):  # columns i, f, c, o -> i, o, f, c
            i, f, c, o = np.split(m, 4, axis=-1)
            return np.concatenate([i, o, f, c], axis=-1)

        bias = arrays[2] if use_bias else np.zeros(4 * units, np.float32)
        b = np.concatenate([reorder(bias), np.zeros(4 * units, np.float32)])
        acts = [
            _act(cfg.get("recurrent_activation", "sigmoid"), name),
            _act(cfg.get("activation", "tanh"), name),
        ]
        return (
            reorder(kernel).T,
            reorder(recurrent).T,
            b,
            {"activations": [acts[0], acts[1], acts[1]]},
        )
    if cls == "GRU":
        reset_after = cfg.get("reset_after", True)
        if not use_bias:
            b = np.zeros(6 * units, np.float32)
        elif reset_after:
            b = arrays[2].reshape(-1)
        else:
            b = np.concatenate([arrays[2], np.zeros(3 * units, np.float32)])
        acts = [
            _act(cfg.get("recurrent_activation", "sigmoid"), name),
            _act(cfg.get("activation", "tanh"), name),
        ]
        return (
            kernel.T,
            recurrent.T,
            b,
            {"activations": acts, "linear_before_reset": int(bool(reset_after))},
        )
    bias = arrays[2] if use_bias else np.zeros(units, np.float32)
    b = np.concatenate([bias, np.zeros(units, np.float32)])
    return kernel.T, recurrent.T, b, {"activations": [_act(cfg.get("activation", "tanh"), name)]}


_ONNX_OP = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def _time_major(b: GraphBuilder, v: Value) -> str:
    return b.node("Transpose", [v.last(b)], {"perm": [1, 0, 2]})


def _run_rnn(b, name, cls, cfg, v, params, direction):
    """Emit the ONNX recurrent node; returns (Y, Y_h, Y_c or None)."""
    ws, rs, bs, attrs = zip(*params, strict=True)
    units = int(cfg["units"])
    n_out = 3 if cls == "LSTM" else 2
    outs = b.node(
        _ONNX_OP[cls],
        [
            _time_major(b, v),
            b.initializer(name + "_W", np.stack(ws).astype(np.float32)),
            b.initializer(name + "_R", np.stack(rs).astype(np.float32)),
            b.initializer(name + "_B", np.stack(bs).astype(np.float32)),
        ],
        {
            **attrs[0],
            "activations": [a for at in attrs for a in at["activations"]],
            "hidden_size": units,
            "direction": direction,
        },
        outputs=n_out,
        name=name,
    )
    return outs[0], outs[1], outs[2] if cls == "LSTM" else None


def _seq_shape(v: Value, units: int) -> tuple:
    return (v.shape[0], v.shape[1], units) if v.shape else (None, None, units)


@layer("LSTM", "GRU", "SimpleRNN")
def _rnn(b, spec: LayerSpec, inputs, kwargs):
    cfg, v = spec.config, inputs[0]
    if kwargs.get("initial_state") is not None or len(inputs) > 1:
        raise ModelFormatError(f"layer {spec.name!r}: initial_state inputs are not supported")
    units = int(cfg["units"])
    backwards = bool(cfg.get("go_backwards", False))
    params = [_cell_params(spec.cls, cfg, spec.weights(), spec.name)]
    y, y_h, y_c = _run_rnn(
        b, spec.name, spec.cls, cfg, v, params, "reverse" if backwards else "forward"
    )
    batch = v.shape[0] if v.shape else None
    if cfg.get("return_sequences"):
        seq = b.node("Squeeze", [y, const(b, "axes", [1])])
        if backwards:  # Keras returns the outputs in processing order
            seq = b.node(
                "Slice",
                [
                    seq,
                    const(b, "starts", [-1]),
                    const(b, "ends", [np.iinfo(np.int64).min]),
                    const(b, "axes", [0]),
                    const(b, "steps", [-1]),
                ],
            )
        main = Value(b.node("Transpose", [seq], {"perm": [1, 0, 2]}), _seq_shape(v, units), v.dtype)
    else:
        main = Value(b.node("Squeeze", [y_h, const(b, "axes", [0])]), (batch, units), v.dtype)
    results = [main]
    if cfg.get("return_state"):
        results.append(
            Value(b.node("Squeeze", [y_h, const(b, "axes", [0])]), (batch, units), v.dtype)
        )
        if y_c is not None:
            results.append(
                Value(b.node("Squeeze", [y_c, const(b, "axes", [0])]), (batch, units), v.dtype)
            )
    return results


@layer("Bidirectional")
def _bidirectional(b, spec: LayerSpec, inputs, kwargs):
    cfg, v = spec.config, inputs[0]
    fwd = cfg["layer"]
    bwd = cfg.get("backward_layer") or fwd
    cls = fwd["class_name"]
    if cls not in _ONNX_OP or bwd["class_name"] != cls:
        raise ModelFormatError(f"layer {spec.name!r}: Bidirectional over {cls} is not supported")
    fcfg, bcfg = fwd["config"], bwd["config"]
    if fcfg.get("return_state"):
        raise ModelFormatError(
            f"layer {spec.name!r}: Bidirectional with return_state is not supported"
        )
    arrays = spec.weights()
    half = len(arrays) // 2
    params = [
        _cell_params(cls, fcfg, arrays[:half], spec.name),
        _cell_params(cls, bcfg, arrays[half:], spec.name),
    ]
    units = int(fcfg["units"])
    y, y_h, _ = _run_rnn(b, spec.name, cls, fcfg, v, params, "bidirectional")
    mode = cfg.get("merge_mode", "concat")
    batch = v.shape[0] if v.shape else None
    if fcfg.get("return_sequences"):
        both = b.node("Transpose", [y], {"perm": [2, 0, 1, 3]})  # [B, T, 2, H]
        dir_axis, lead = 2, (batch, v.shape[1] if v.shape else None)
    else:
        both = b.node("Transpose", [y_h], {"perm": [1, 0, 2]})  # [B, 2, H]
        dir_axis, lead = 1, (batch,)
    if mode == "concat":
        shape = [0] * dir_axis + [-1]
        out = b.node("Reshape", [both, const(b, "shape", shape)], name=spec.name)
        return [Value(out, (*lead, 2 * units), v.dtype)]
    if mode in ("sum", "ave", "mul"):
        if mode == "mul":
            parts = b.node(
                "Split", [both, const(b, "split", [1, 1])], {"axis": dir_axis}, outputs=2
            )
            out = b.node(
                "Squeeze", [b.node("Mul", parts), const(b, "axes", [dir_axis])], name=spec.name
            )
        else:
            out = b.node(
                "ReduceSum" if mode == "sum" else "ReduceMean",
                [both, const(b, "axes", [dir_axis])],
                {"keepdims": 0},
                name=spec.name,
            )
        return [Value(out, (*lead, units), v.dtype)]
    raise ModelFormatError(f"layer {spec.name!r}: merge_mode={mode!r} is not supported")


@layer("MultiHeadAttention")
def _mha(b, spec: LayerSpec, inputs, kwargs):
    cfg = spec.config
    if kwargs.get("return_attention_scores"):
        raise ModelFormatError(
            f"layer {spec.name!r}: return_attention_scores=True is not supported"
        )
    if cfg.get("attention_axes") not in (None, [1], (1,)):
        raise ModelFormatError(
            f"layer {spec.name!r}: attention_axes={cfg['attention_axes']} is not supported"
        )
    query = inputs[0]
    value = (
        kwargs.get("value")
        if isinstance(kwargs.get("value"), Value)
        else (inputs[1] if len(inputs) > 1 else query)
    )
    key = (
        kwargs.get("key")
        if isinstance(kwargs.get("key"), Value)
        else (inputs[2] if len(inputs) > 2 else value)
    )
    if query.rank != 3:
        raise ModelFormatError(
            f"layer {spec.name!r}: MultiHeadAttention on rank-{query.rank} inputs is not supported"
        )
    heads, key_dim = int(cfg["num_heads"]), int(cfg["key_dim"])
    value_dim = int(cfg.get("value_dim") or key_dim)
    arrays = spec.weights()
    if cfg.get("use_bias", True):
        wq, bq, wk, bk, wv, bv, wo, bo = arrays
    else:
        wq, wk, wv, wo = arrays
        bq = bk = bv = bo = None

    def project(x: Value, w, bias, dim, tag):
        y = b.node(
            "MatMul",
            [x.last(b), b.initializer(f"{spec.name}_{tag}_kernel", w.reshape(w.shape[0], -1))],
        )
        if bias is not None:
            y = b.node("Add", [y, b.initializer(f"{spec.name}_{tag}_bias", bias.reshape(-1))])
        return b.node("Reshape", [y, const(b, "heads_shape", [0, 0, heads, dim])])  # [B, T, h, d]

    q = b.node("Transpose", [project(query, wq, bq, key_dim, "query")], {"perm": [0, 2, 1, 3]})
    q = b.node("Mul", [q, const(b, "scale", np.float32(1.0 / np.sqrt(key_dim)))])
    k = b.node("Transpose", [project(key, wk, bk, key_dim, "key")], {"perm": [0, 2, 3, 1]})
    vv = b.node("Transpose", [project(value, wv, bv, value_dim, "value")], {"perm": [0, 2, 1, 3]})
    scores = b.node("MatMul", [q, k])  # [B, h, Tq, Tk]
    mask = kwargs.get("attention_mask")
    if isinstance(mask, Value):
        m = b.node("Cast", [b.node("Unsqueeze", [mask.last(b), const(b, "axes", [1])])], {"to": 9})
        scores = b.node("Where", [m, scores, const(b, "neg", np.float32(-1e9))])
    if kwargs.get("use_causal_mask"):
        tq, tk = query.shape[1], key.shape[1]
        if tq is None or tk is None:
            raise ModelFormatError(
                f"layer {spec.name!r}: use_causal_mask needs static sequence lengths"
            )
        causal = np.tril(np.ones((tq, tk), bool), k=tk - tq)
        scores = b.node(
            "Where",
            [const(b, "causal", causal, dtype=bool), scores, const(b, "neg", np.float32(-1e9))],
        )
    probs = b.node("Softmax", [scores], {"axis": -1})
    att = b.node(
        "Transpose", [b.node("MatMul", [probs, vv])], {"perm": [0, 2, 1, 3]}
    )  # [B, Tq, h, dv]
    att = b.node("Reshape", [att, const(b, "merge_shape", [0, 0, heads * value_dim])])
    out = b.node(
        "MatMul",
        [att, b.initializer(spec.name + "_output_kernel", wo.reshape(heads * value_dim, -1))],
        name=spec.name,
    )
    if bo is not None:
        out = b.node("Add", [out, b.initializer(spec.name + "_output_bias", bo)])
    return [Value(out, (query.shape[0], query.shape[1], wo.shape[-1]), query.dtype)]
