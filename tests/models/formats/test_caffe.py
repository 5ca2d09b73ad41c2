"""Caffe reader: deploy prototxts and caffemodels written from caffe.proto (tests/fixtures/models/caffe/make_caffe.py),
compared with OpenCV's independent Caffe importer (the `.npz` references) and, for layers OpenCV lacks or
ignores, with NumPy implementations of Caffe's own formulas written here."""

from __future__ import annotations

import shutil

import jax
import numpy as np
import pytest
from _format_helpers import FIXTURES, max_rel_err, reference, run_ort, run_ours

import scimlkit.models as sm
from scimlkit.models.errors import ModelFormatError, UnsupportedOperatorError
from scimlkit.models.formats import detect_format
from scimlkit.models.formats.caffe import read_caffe

CAFFE = FIXTURES / "caffe"
OPENCV = ["lenet", "lenet_v1", "alexnet", "inception", "resnet", "mobilenet", "misc"]


def _as_list(y):
    return [np.asarray(v) for v in (y if isinstance(y, tuple) else (y,))]


@pytest.mark.parametrize("name", OPENCV)
def test_nets_match_opencv(name):
    model = sm.load(CAFFE / f"{name}.prototxt", weights=CAFFE / f"{name}.caffemodel")
    ins, outs = reference(CAFFE / f"{name}.npz")
    got = _as_list(model(*ins))
    assert [g.shape for g in got] == [o.shape for o in outs]
    for g, o in zip(got, outs, strict=True):
        assert max_rel_err(g, o) < 1e-4


@pytest.mark.parametrize("name", OPENCV)
def test_exported_nets_match_in_onnxruntime(name):
    graph = sm.load_graph(CAFFE / f"{name}.prototxt", weights=CAFFE / f"{name}.caffemodel")
    ins, outs = reference(CAFFE / f"{name}.npz")
    for g, o in zip(run_ort(graph, ins), outs, strict=True):
        assert max_rel_err(g, o) < 1e-4


def test_jit_and_grad():
    model = sm.load(CAFFE / "resnet.prototxt")
    ins, outs = reference(CAFFE / "resnet.npz")
    y = jax.jit(lambda x: model(x))(ins[0])
    assert max_rel_err(np.asarray(y), outs[0]) < 1e-4
    g = jax.grad(lambda x: model(x).sum())(ins[0])
    assert np.all(np.isfinite(np.asarray(g)))


def test_interface_names_and_shapes():
    graph = read_caffe(CAFFE / "misc.prototxt")
    assert [(v.name, v.shape) for v in graph.inputs] == [("data", (1, 4, 5, 5))]
    # in-place layers rebind a blob; the outputs are the blobs nothing consumes, under their Caffe names
    assert graph.output_names == [
        "sig",
        "up_out",
        "s2l_out",
        "cat2_out",
        "crop_out",
        "normsp_out",
        "reshaped_out",
        "soft_out",
    ]
    v1 = read_caffe(CAFFE / "lenet_v1.prototxt")
    assert v1.output_names == ["prob"] and v1.inputs[0].shape == (2, 1, 16, 16)
    alex = read_caffe(CAFFE / "alexnet.prototxt")  # declared by an Input layer
    assert alex.inputs[0].name == "data" and alex.inputs[0].shape == (1, 3, 35, 35)


def test_format_detection_and_default_weights(tmp_path):
    assert detect_format(CAFFE / "lenet.prototxt").name == "caffe"
    assert detect_format(CAFFE / "lenet.caffemodel").name == "caffe"
    ins, outs = reference(CAFFE / "lenet.npz")
    by_prototxt = sm.load(CAFFE / "lenet.prototxt")  # lenet.caffemodel found beside it
    by_caffemodel = sm.load(CAFFE / "lenet.caffemodel")  # lenet.prototxt found beside it
    for model in (by_prototxt, by_caffemodel):
        assert max_rel_err(np.asarray(model(ins[0])), outs[0]) < 1e-4
    # deploy.prototxt beside a differently named caffemodel
    shutil.copy(CAFFE / "lenet.prototxt", tmp_path / "deploy.prototxt")
    shutil.copy(CAFFE / "lenet.caffemodel", tmp_path / "weights.caffemodel")
    assert max_rel_err(np.asarray(sm.load(tmp_path / "weights.caffemodel")(ins[0])), outs[0]) < 1e-4


def test_content_sniffing_past_comments(tmp_path):
    text = b"# deploy net\n# " + b"x" * 100 + b"\n" + (CAFFE / "lenet.prototxt").read_bytes()
    (tmp_path / "net.txt").write_bytes(text)
    assert detect_format(tmp_path / "net.txt").name == "caffe"
    assert (
        detect_format(b"# deploy\n" + (CAFFE / "lenet.prototxt").read_bytes()).name == "caffe"
    )  # 64 bytes seen
    model = sm.load(tmp_path / "net.txt", weights=CAFFE / "lenet.caffemodel")
    ins, outs = reference(CAFFE / "lenet.npz")
    assert max_rel_err(np.asarray(model(ins[0])), outs[0]) < 1e-4


def test_bytes_sources():
    proto = (CAFFE / "lenet.prototxt").read_bytes()
    weights = (CAFFE / "lenet.caffemodel").read_bytes()
    ins, outs = reference(CAFFE / "lenet.npz")
    graph = read_caffe(proto, weights=weights)
    assert max_rel_err(run_ours(graph, ins)[0], outs[0]) < 1e-4
    with pytest.raises(ModelFormatError, match="pass weights="):
        read_caffe(proto)


def test_missing_weights_are_named(tmp_path):
    shutil.copy(CAFFE / "lenet.prototxt", tmp_path / "net.prototxt")
    with pytest.raises(
        ModelFormatError, match=r"no weights file net\.caffemodel beside it.*weights="
    ):
        sm.load(tmp_path / "net.prototxt")
    with pytest.raises(ModelFormatError, match="no such file"):
        sm.load(tmp_path / "net.prototxt", weights=tmp_path / "other.caffemodel")
    (tmp_path / "empty.caffemodel").write_bytes(b"")  # a caffemodel without the layer's blobs
    with pytest.raises(ModelFormatError, match=r"layer 'conv1' \(Convolution\) has 0 blobs"):
        sm.load(tmp_path / "net.prototxt", weights=tmp_path / "empty.caffemodel")


def test_python_and_unknown_layers_in_one_error():
    with pytest.raises(UnsupportedOperatorError) as info:
        sm.load(CAFFE / "unsupported.prototxt")
    message = str(info.value)
    assert "2 unsupported" in message
    assert "caffe::Python" in message and "at py" in message and "never executes" in message
    assert "caffe::FancyNewLayer" in message and "at mystery" in message
    assert {u.op_type for u in info.value.unsupported} == {"Python", "FancyNewLayer"}


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.999])
def test_truncated_caffemodel(tmp_path, cut):
    data = (CAFFE / "alexnet.caffemodel").read_bytes()
    (tmp_path / "alexnet.caffemodel").write_bytes(data[: int(len(data) * cut)])
    shutil.copy(CAFFE / "alexnet.prototxt", tmp_path / "alexnet.prototxt")
    with pytest.raises(ModelFormatError):
        sm.load(tmp_path / "alexnet.prototxt")


def test_garbage_caffemodel(tmp_path):
    shutil.copy(CAFFE / "lenet.prototxt", tmp_path / "lenet.prototxt")
    (tmp_path / "lenet.caffemodel").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelFormatError):
        sm.load(tmp_path / "lenet.prototxt")


@pytest.mark.parametrize(
    "text, match",
    [
        ('name: "x"\nlayer {\n  name: "a"\n', "missing '}'"),
        (
            'input: "data"\ninput_shape { dim: 1 dim: 2 }\nlayer { name: "a" type: "ReLU" bottom: "data" top: "b" } }',
            "line 3",
        ),
        ('input: "data" input_shape { dim: 1 dim: "x" }', "number"),
        ('input: "data"\nlayer { name: "r" type: "ReLU" bottom: "nope" top: "r" }', "shapes|nope"),
        ('layer { name: "r" type: "ReLU" bottom: "data" top: "r" }', "no inputs"),
        ("\x00\x01garbage\xff", "parse|UTF-8"),
    ],
)
def test_broken_prototxt(text, match):
    weights = (CAFFE / "lenet.caffemodel").read_bytes()
    with pytest.raises(ModelFormatError, match=match):
        read_caffe(text.encode("latin-1"), weights=weights)


def test_text_format_details_and_phases():
    text = b"""
    # a comment
    name: 'quirky'  input: "data"
    input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3
    layer { name: "train_only" type: "Dropout" bottom: "data" top: "data" include { phase: TRAIN } }
    layer < name: "act" type: "Power" bottom: "data" top: "y"
            power_param: { power: 2 scale: -1.5e0 shift: 0x1 } >
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "y" top: "loss" exclude { phase: TEST } }
    """
    graph = read_caffe(text, weights=b"")
    x = np.random.default_rng(1).normal(size=(1, 2, 3, 3)).astype(np.float32)
    (y,) = run_ours(graph, [x])
    np.testing.assert_allclose(y, (1 - 1.5 * x) ** 2, rtol=1e-5)
    assert graph.output_names == ["y"]


# ---------------------------------------------------------------- layers checked against NumPy
def _caffe_within_channel_lrn(x, size, alpha, beta):
    """Caffe's WITHIN_CHANNEL LRN: x * (1 + alpha/size^2 * window sum of x^2, zero padded)^-beta."""
    half = (size - 1) // 2
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (0, 0), (half, half), (half, half)))
    h, w = x.shape[2:]
    total = sum(sq[:, :, i : i + h, j : j + w] for i in range(size) for j in range(size))
    return x * (1 + alpha / size**2 * total) ** -beta


def _caffe_across_channel_lrn(x, size, alpha, beta, k):
    half = (size - 1) // 2
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (half, half), (0, 0), (0, 0)))
    total = sum(sq[:, i : i + x.shape[1]] for i in range(size))
    return x * (k + alpha / size * total) ** -beta


def _bilinear_align_corners(x, out_h, out_w):
    h, w = x.shape[2:]
    ys = np.arange(out_h) * (h - 1) / (out_h - 1)
    xs = np.arange(out_w) * (w - 1) / (out_w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = x[:, :, y0][:, :, :, x0], x[:, :, y0][:, :, :, x1]
    c, d = x[:, :, y1][:, :, :, x0], x[:, :, y1][:, :, :, x1]
    return (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d)


def test_layers_opencv_lacks_match_caffe_formulas():
    graph = read_caffe(CAFFE / "numpy_checked.prototxt")
    x = np.random.default_rng(7).normal(size=(2, 3, 4, 5)).astype(np.float32)
    got = dict(zip(graph.output_names, run_ours(graph, [x]), strict=True))
    ort = dict(zip(graph.output_names, run_ort(graph, [x]), strict=True))
    flat = x.reshape(2, -1)
    top2 = np.argsort(-flat, axis=1)[:, :2]
    want = {
        "argmax": top2.reshape(2, 1, 2, 1).astype(
            np.float32
        ),  # Caffe: (N, 1, top_k, 1) indices as floats
        "argmax_axis": x.max(axis=1, keepdims=True),  # with axis and out_max_val: the values
        "interp": _bilinear_align_corners(x, 7, 9),  # zoom_factor 2: 4 -> 4 + 3, 5 -> 5 + 4
        "upsample": x.repeat(2, axis=2).repeat(2, axis=3),
        "lrn": _caffe_within_channel_lrn(x, 3, 0.9, 0.75),
        "lrn_k": _caffe_across_channel_lrn(x, 3, 0.5, 0.6, 2.0),
        "log": np.log2(0.5 + 2 * np.abs(x)),
    }
    assert sorted(got) == sorted(want)
    for name, expected in want.items():
        for result in (got[name], ort[name]):
            assert result.shape == expected.shape, name
            assert max_rel_err(result, expected) < 1e-5, name


def test_more_layer_parameters_match_numpy(tmp_path):
    """InnerProduct axis/transpose, Reshape axis/num_axes, even Slice, Tile, Threshold, Bias, batch-stat BatchNorm."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_caffe", CAFFE / "make_caffe.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)  # its protobuf classes, not our reader, write the caffemodel
    rng = np.random.default_rng(3)
    w_ip, b_ip, bias = rng.normal(size=(12, 6)), rng.normal(size=6), rng.normal(size=(4, 3))
    p = 'input: "data"\ninput_shape { dim: 2 dim: 4 dim: 3 dim: 4 }\n'
    p += make.lay(
        "ip",
        "InnerProduct",
        "data",
        "ip",
        "inner_product_param { num_output: 6 axis: 2 transpose: true }",
    )
    p += make.lay(
        "rs",
        "Reshape",
        "data",
        "rs",
        "reshape_param { shape { dim: 2 dim: -1 } axis: 1 num_axes: 1 }",
    )
    p += make.lay("sl", "Slice", "data", ["sl0", "sl1"], "slice_param { axis: -1 }")
    p += make.lay("tile", "Tile", "sl1", "tile", "tile_param { axis: 2 tiles: 2 }")
    p += make.lay("thr", "Threshold", "data", "thr", "threshold_param { threshold: 0.3 }")
    p += make.lay("bias", "Bias", "sl0", "bias", "bias_param { axis: 1 num_axes: 2 }")
    p += make.lay(
        "bn", "BatchNorm", "data", "bn", "batch_norm_param { use_global_stats: false eps: 0.01 }"
    )
    (tmp_path / "net.prototxt").write_text(p)
    make.save_caffemodel(
        tmp_path / "net.caffemodel",
        [("ip", "InnerProduct", [w_ip, b_ip]), ("bias", "Bias", [bias])],
    )
    graph = read_caffe(tmp_path / "net.prototxt")
    x = rng.normal(size=(2, 4, 3, 4)).astype(np.float32)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    want = {
        "ip": x.reshape(2, 4, 12) @ w_ip.astype(np.float32) + b_ip.astype(np.float32),
        "rs": x.reshape(2, 2, 2, 3, 4),  # only axis 1 (size 4) becomes (2, -1)
        "tile": np.concatenate([x[..., 2:]] * 2, axis=2),
        "thr": (x > 0.3).astype(np.float32),
        "bias": x[..., :2] + bias.astype(np.float32)[:, :, None],
        "bn": (x - mean) / np.sqrt(var + 0.01),
    }
    got = dict(zip(graph.output_names, run_ours(graph, [x]), strict=True))
    assert sorted(got) == sorted(want)
    for name, expected in want.items():
        assert got[name].shape == expected.shape, name
        assert max_rel_err(got[name], expected) < 1e-5, name
