"""Signal kernels (DFT, STFT, windows, mel matrix) against NumPy/SciPy and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from _node_check import Static, check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

rng = np.random.default_rng(5)


def _complex(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1)


def _run(op, args, attrs=None, opset=20):
    model = node_model(op, args, attrs=attrs, opset=opset)
    return np.asarray(ours(model, args)[0])


def test_dft_real_and_onesided_against_numpy() -> None:
    x = rng.normal(size=(2, 8, 3, 1))
    got = _run("DFT", [x, None, Static(np.array(1, np.int64))])
    np.testing.assert_allclose(got, _complex(np.fft.fft(x[..., 0], axis=1)), atol=1e-12)
    got = _run("DFT", [x, Static(np.array(10, np.int64)), Static(np.array(1, np.int64))], attrs={"onesided": 1})
    np.testing.assert_allclose(got, _complex(np.fft.rfft(x[..., 0], n=10, axis=1)), atol=1e-12)


def test_dft_inverse_complex_and_opset17_axis_attribute() -> None:
    z = rng.normal(size=(3, 6)) + 1j * rng.normal(size=(3, 6))
    x = _complex(z)
    got = _run("DFT", [x], attrs={"inverse": 1, "axis": 1}, opset=17)
    np.testing.assert_allclose(got, _complex(np.fft.ifft(z, axis=1)), atol=1e-12)
    half = _complex(np.fft.rfft(rng.normal(size=(2, 8)), axis=-1))
    got = _run("DFT", [half, None, Static(np.array(-2, np.int64))], attrs={"inverse": 1, "onesided": 1})
    np.testing.assert_allclose(got[..., 0], np.fft.irfft(half[..., 0] + 1j * half[..., 1], axis=-1), atol=1e-12)


def test_dft_float32_against_onnxruntime() -> None:
    x = rng.normal(size=(1, 16, 1)).astype(np.float32)
    check("DFT", [x, None, Static(np.array(1, np.int64))], opset=20, ref="ort", rtol=1e-4, atol=1e-4)


def test_stft_against_scipy() -> None:
    signal = rng.normal(size=(2, 64, 1))
    window = scipy.signal.get_window("hann", 16)
    got = _run("STFT", [signal, Static(np.array(8, np.int64)), Static(window), Static(np.array(16, np.int64))],
               opset=17)
    frames = 1 + (64 - 16) // 8
    for b in range(2):
        for f in range(frames):
            expected = np.fft.rfft(signal[b, f * 8 : f * 8 + 16, 0] * window)
            np.testing.assert_allclose(got[b, f], _complex(expected), atol=1e-12)


@pytest.mark.parametrize(("op", "name"), [("HannWindow", "hann"), ("HammingWindow", "hamming"),
                                          ("BlackmanWindow", "blackman")])
@pytest.mark.parametrize("periodic", [0, 1])
def test_windows_against_scipy(op: str, name: str, periodic: int) -> None:
    size = Static(np.array(11, np.int64))
    got = _run(op, [size], attrs={"periodic": periodic, "output_datatype": 11}, opset=17)
    expected = scipy.signal.get_window(name, 11, fftbins=bool(periodic))
    if name == "hamming":  # ONNX uses the exact 25/46 coefficients, SciPy 0.54/0.46
        expected = scipy.signal.get_window(("general_hamming", 25 / 46), 11, fftbins=bool(periodic))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_mel_weight_matrix_against_reference() -> None:
    args = [Static(np.array(v, np.int64)) for v in (8, 64, 8000)]
    args += [Static(np.array(100.0, np.float32)), Static(np.array(3500.0, np.float32))]
    check("MelWeightMatrix", args, opset=17, jit=False)
