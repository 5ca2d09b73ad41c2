"""MXNet reader: Gluon and Symbol-API nets exported by MXNet 1.9.1
(tests/fixtures/models/mxnet/make_mxnet.py), compared with MXNet's own inference outputs."""

from __future__ import annotations

import json
import shutil
import struct

import jax
import numpy as np
import pytest
from _format_helpers import FIXTURES, max_rel_err, reference, run_ort, run_ours

import scimlkit.models as sm
from scimlkit.models.errors import ModelFormatError, UnsupportedOperatorError
from scimlkit.models.formats import detect_format
from scimlkit.models.formats._mxnet_params import read_params
from scimlkit.models.formats.mxnet import read_mxnet

MX = FIXTURES / "mxnet"
NETS = [
    "resnet",
    "mobilenet",
    "pool_full",
    "batchnorm",
    "ops",
    "ops2",
    "softmax_output",
    "seq",
    "rnn_states",
]
INPUTS = {"rnn_states": ["data", "h0", "c0"]}  # others: "data"
# nets whose ops need no input sizes: they load from the two files alone (pool_full needs
# the sizes for pooling_convention="full"; seq the token rank for its SwapAxis; ops2 a
# squeeze without axes)
SHAPELESS = ["resnet", "mobilenet", "batchnorm", "ops", "softmax_output", "rnn_states"]


def _files(name):
    return MX / f"{name}-symbol.json", MX / f"{name}-0000.params"


def _shapes(name, ins):
    return dict(zip(INPUTS.get(name, ["data"]), (x.shape for x in ins), strict=True))


def _read(name, **kwargs):
    symbol, params = _files(name)
    return read_mxnet(symbol, weights=params, **kwargs)


def _close(got, want):
    got = np.asarray(got)
    assert got.shape == want.shape
    assert max_rel_err(got, want) < 1e-4
    # small outputs: also relative to their own scale
    scale = float(np.max(np.abs(want))) or 1.0
    assert float(np.max(np.abs(got.astype(np.float64) - want))) / scale < 1e-4


@pytest.mark.parametrize("name", NETS)
def test_nets_match_mxnet(name):
    symbol, params = _files(name)
    ins, outs = reference(MX / f"{name}.npz")
    graph = sm.load_graph(symbol, weights=params, input_shapes=_shapes(name, ins))
    assert graph.metadata["format"] == "mxnet"
    got = run_ours(graph, ins)
    assert len(got) == len(outs)
    for g, o in zip(got, outs, strict=True):
        _close(g, o)


@pytest.mark.parametrize("name", NETS)
def test_exported_nets_match_in_onnxruntime(name):
    symbol, params = _files(name)
    ins, outs = reference(MX / f"{name}.npz")
    graph = sm.load_graph(symbol, weights=params, input_shapes=_shapes(name, ins))
    for g, o in zip(run_ort(graph, ins), outs, strict=True):
        _close(g, o)


@pytest.mark.parametrize("name", NETS)
def test_load_and_jit(name):
    symbol, params = _files(name)
    ins, outs = reference(MX / f"{name}.npz")
    shapes = {} if name in SHAPELESS else {"input_shapes": _shapes(name, ins)}
    model = sm.load(symbol, weights=params, **shapes)
    assert model.graph.input_names == INPUTS.get(name, ["data"])
    got = model(*ins)
    got = list(got) if isinstance(got, tuple) else [got]
    jitted = jax.jit(lambda *xs: model(*xs))(*ins)
    jitted = list(jitted) if isinstance(jitted, tuple) else [jitted]
    for g, j, o in zip(got, jitted, outs, strict=True):
        _close(g, o)
        _close(j, o)


def test_batch_size_is_symbolic_without_input_shapes():
    symbol, params = _files("resnet")
    graph = read_mxnet(symbol, weights=params)
    assert graph.inputs[0].shape == ("N", None, None, None)
    ins, outs = reference(MX / "resnet.npz")
    (one,) = run_ours(graph, [ins[0][:1]])
    _close(one, outs[0][:1])


def test_label_inputs_are_dropped():
    graph = _read("softmax_output")
    assert graph.input_names == ["data"]


def test_fix_gamma_ignores_the_stored_gamma():
    params = read_params(_files("batchnorm")[1].read_bytes())
    assert np.all(params["arg:bn_fixed_gamma"] >= 2)  # stored, but MXNet treats it as 1
    test_nets_match_mxnet("batchnorm")


@pytest.mark.parametrize("name", ["pool_full", "seq", "ops2"])
def test_ops_that_need_sizes_say_so(name):
    with pytest.raises(ModelFormatError, match="input_shapes"):
        _read(name)


def test_format_detection(tmp_path):
    symbol, params = _files("resnet")
    assert detect_format(symbol).name == "mxnet"
    renamed = tmp_path / "model.json"
    shutil.copy(symbol, renamed)
    assert detect_format(renamed).name == "mxnet"
    assert detect_format(symbol.read_bytes()).name == "mxnet"
    graph = sm.load_graph(renamed, format="mxnet", weights=params)
    assert graph.input_names == ["data"]


def test_params_found_beside_the_symbol_highest_epoch(tmp_path):
    symbol, params = _files("resnet")
    shutil.copy(symbol, tmp_path / "net-symbol.json")
    shutil.copy(params, tmp_path / "net-0012.params")
    (tmp_path / "net-0003.params").write_bytes(b"not params")
    ins, outs = reference(MX / "resnet.npz")
    model = sm.load(tmp_path / "net-symbol.json")
    _close(model(*ins), outs[0])


def test_missing_params_is_a_clear_error(tmp_path):
    symbol, _ = _files("resnet")
    shutil.copy(symbol, tmp_path / "net-symbol.json")
    with pytest.raises(ModelFormatError, match=r"net-NNNN\.params.*weights="):
        sm.load(tmp_path / "net-symbol.json")
    with pytest.raises(ModelFormatError, match="no such MXNet params file"):
        sm.load(tmp_path / "net-symbol.json", weights=tmp_path / "nope.params")
    with pytest.raises(ModelFormatError, match="weights="):
        read_mxnet(symbol.read_bytes())


def test_damaged_params(tmp_path):
    symbol, params = _files("resnet")
    blob = params.read_bytes()
    cases = {
        "empty": b"",
        "garbage": b"\x00" * 7 + b"garbage" * 20,
        "truncated": blob[: len(blob) // 2],
        "truncated_names": blob[:-3],
        "trailing": blob + b"\x01",
        "wrong_magic": struct.pack("<Q", 0x113) + blob[8:],
        "huge_count": blob[:16] + struct.pack("<Q", 1 << 60) + blob[24:],
        "bad_array_magic": blob[:24] + struct.pack("<I", 0x12345678) + blob[28:],
    }
    ndim = struct.unpack_from("<i", blob, 32)[0]  # first array: magic, stype, shape, context, dtype
    flag_at = 36 + 8 * ndim + 8
    cases["bad_dtype"] = blob[:flag_at] + struct.pack("<i", 99) + blob[flag_at + 4 :]
    for label, data in cases.items():
        path = tmp_path / f"{label}.params"
        path.write_bytes(data)
        with pytest.raises(
            ModelFormatError, match="dtype flag 99" if label == "bad_dtype" else None
        ):
            read_mxnet(symbol, weights=path)


def test_sparse_arrays_are_rejected(tmp_path):
    symbol, params = _files("resnet")
    blob = bytearray(params.read_bytes())
    assert struct.unpack_from("<I", blob, 24)[0] == 0xF993FAC9  # first array, V2
    struct.pack_into("<i", blob, 28, 1)  # storage type: row_sparse
    path = tmp_path / "sparse.params"
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError, match="row_sparse"):
        read_mxnet(symbol, weights=path)


def _ndarray_list(arrays: list[bytes], names: list[str]) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays)) + b"".join(arrays)
    out += struct.pack("<Q", len(names))
    return out + b"".join(struct.pack("<Q", len(n)) + n.encode() for n in names)


def test_params_versions_written_by_hand():
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    ctx_dtype = struct.pack("<iii", 1, 0, 0)  # cpu(0), float32
    v3 = (
        struct.pack("<Ii", 0xF993FACA, 0)
        + struct.pack("<iqq", 2, 2, 3)
        + ctx_dtype
        + value.tobytes()
    )
    v2 = (
        struct.pack("<Ii", 0xF993FAC9, 0)
        + struct.pack("<iqq", 2, 2, 3)
        + ctx_dtype
        + value.tobytes()
    )
    v1 = struct.pack("<I", 0xF993FAC8) + struct.pack("<iqq", 2, 2, 3) + ctx_dtype + value.tobytes()
    legacy = struct.pack("<III", 2, 2, 3) + ctx_dtype + value.tobytes()  # the magic is the rank
    ints = np.array([1, -2, 3], np.int64)
    v2_int = (
        struct.pack("<Ii", 0xF993FAC9, 0) + struct.pack("<iq", 1, 3) + struct.pack("<iii", 1, 0, 6)
    )
    v2_int += ints.tobytes()
    empty = struct.pack("<Ii", 0xF993FAC9, 0) + struct.pack("<i", 0)  # a none array: skipped
    blob = _ndarray_list([v3, v2, v1, legacy, v2_int, empty], ["a", "b", "c", "d", "e", "f"])
    got = read_params(blob)
    assert sorted(got) == ["a", "b", "c", "d", "e"]
    for key in "abcd":
        np.testing.assert_array_equal(got[key], value)
    assert got["e"].dtype == np.int64
    np.testing.assert_array_equal(got["e"], ints)


def _edited_symbol(tmp_path, edit):
    symbol, params = _files("resnet")
    data = json.loads(symbol.read_text())
    edit(data)
    path = tmp_path / "edited-symbol.json"
    path.write_text(json.dumps(data))
    return path, params


def test_unknown_ops_are_listed_together(tmp_path):
    def edit(data):
        ops = [n for n in data["nodes"] if n["op"] == "Activation"]
        ops[0]["op"] = "MyInventedOp"
        ops[1]["op"] = "Custom"
        ops[1]["attrs"] = {"op_type": "myop"}
        ops[2]["op"] = "Custom"

    path, params = _edited_symbol(tmp_path, edit)
    with pytest.raises(UnsupportedOperatorError) as info:
        sm.load(path, weights=params)
    found = {u.op_type: u.nodes for u in info.value.unsupported}
    assert set(found) == {"MyInventedOp", "Custom"}
    assert len(found["Custom"]) == 2
    assert "MyInventedOp" in str(info.value)


def test_broken_json(tmp_path):
    symbol, params = _files("resnet")
    text = symbol.read_text()
    cases = {
        "cut": text[: len(text) // 2],
        "not_json": "nodes: [",
        "not_symbol": json.dumps({"hello": 1}),
        "list": json.dumps([1, 2]),
        "bad_input": json.dumps(
            {
                "nodes": [
                    {"op": "null", "name": "x", "inputs": []},
                    {"op": "relu", "name": "y", "inputs": [[5, 0, 0]]},
                ],
                "arg_nodes": [0],
                "heads": [[1, 0, 0]],
            }
        ),
        "bad_attr": text.replace('"kernel": "(3, 3)"', '"kernel": "(3, x)"', 1),
        "bad_head": json.dumps(
            {"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[3, 0]]}
        ),
    }
    for label, content in cases.items():
        path = tmp_path / f"{label}-symbol.json"
        path.write_text(content)
        with pytest.raises(ModelFormatError):
            read_mxnet(path, weights=params)
    (tmp_path / "bin-symbol.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFormatError):
        read_mxnet(tmp_path / "bin-symbol.json", weights=params)


def test_old_attribute_keys(tmp_path):
    def edit(data):
        for n in data["nodes"]:
            if "attrs" in n:
                n["param" if n["op"] == "Convolution" else "attr"] = n.pop("attrs")

    path, params = _edited_symbol(tmp_path, edit)
    ins, outs = reference(MX / "resnet.npz")
    (got,) = run_ours(read_mxnet(path, weights=params), ins)
    _close(got, outs[0])


def test_symbol_and_weights_as_bytes():
    symbol, params = _files("resnet")
    ins, outs = reference(MX / "resnet.npz")
    graph = read_mxnet(symbol.read_bytes(), weights=params.read_bytes())
    _close(run_ours(graph, ins)[0], outs[0])
    # a symbol without parameters needs no weights
    symbol, _ = _files("pool_full")
    ins, outs = reference(MX / "pool_full.npz")
    graph = read_mxnet(symbol.read_bytes(), input_shapes={"data": ins[0].shape})
    for g, o in zip(run_ours(graph, ins), outs, strict=True):
        _close(g, o)


def test_unsupported_variants_of_known_ops(tmp_path):
    def edit(data):
        conv = next(n for n in data["nodes"] if n["op"] == "Convolution")
        conv["attrs"]["layout"] = "NHWC"

    path, params = _edited_symbol(tmp_path, edit)
    with pytest.raises(UnsupportedOperatorError, match="layout NHWC") as info:
        read_mxnet(path, weights=params)
    assert [u.op_type for u in info.value.unsupported] == ["Convolution"]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_params_files_written_by_mxnet(version):
    # every dtype MXNet saves; V3 (NumPy shape semantics) includes a 0-d array
    got = read_params((MX / f"formats_{version}.params").read_bytes())
    want = np.load(MX / f"formats_{version}.npz")
    assert sorted(got) == sorted(k.replace("__", ":") for k in want.files)
    for key in want.files:
        value = got[key.replace("__", ":")]
        assert value.dtype == want[key].dtype
        np.testing.assert_array_equal(value, want[key])
