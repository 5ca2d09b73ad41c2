"""IDX parsing and the MNIST-family loaders, against files written in the published format."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

from scimlkit.datasets import (
    DatasetFormatError,
    UnknownDatasetError,
    emnist,
    fashion_mnist,
    kmnist,
    mnist,
    parse_idx,
)


def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    """Write IDX by hand from the format description (independent of scimlkit's writer)."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return {
        "train": (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5).astype(np.uint8)),
        "test": (rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), rng.integers(0, 10, 3).astype(np.uint8)),
    }


def mnist_files(digits) -> dict[str, bytes]:
    files = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = digits[split]
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images, 0x08))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels, 0x08))
    return files


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_parse_idx_every_type(dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    parsed = parse_idx(idx_bytes(array, code))
    assert parsed.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(parsed, array)
    np.testing.assert_array_equal(parse_idx(gzip.compress(idx_bytes(array, code))), array)


def test_truncated_idx_is_rejected():
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    with pytest.raises(DatasetFormatError, match="truncated"):
        parse_idx(data[:-1])
    with pytest.raises(DatasetFormatError, match="trailing"):
        parse_idx(data + b"\0")
    with pytest.raises(DatasetFormatError, match="magic"):
        parse_idx(b"\x01\x02" + data[2:])
    with pytest.raises(DatasetFormatError, match="type code"):
        parse_idx(b"\0\0\x07\x01" + data[4:])
    with pytest.raises(DatasetFormatError, match="gzip"):
        parse_idx(gzip.compress(data)[:-20])


@pytest.mark.parametrize(("name", "loader"), [("MNIST", mnist), ("Fashion-MNIST", fashion_mnist), ("KMNIST", kmnist)])
def test_mnist_family_loaders_fetch_and_parse_exactly(upstream, digits, name, loader):
    server = upstream(name, mnist_files(digits))
    for split in ("train", "test"):
        images, labels = loader(split)
        assert images.dtype == np.uint8 and images.shape == digits[split][0].shape
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images, digits[split][0])
        np.testing.assert_array_equal(labels, digits[split][1])
    assert len(server.requests) == 4  # each file fetched once, then served from the store
    mnist_again = loader("test")
    assert len(server.requests) == 4
    np.testing.assert_array_equal(mnist_again[0], digits["test"][0])


def test_mismatched_image_and_label_counts(upstream, digits):
    files = mnist_files(digits)
    files["t10k-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(2, np.uint8), 0x08))
    upstream("MNIST", files)
    with pytest.raises(DatasetFormatError, match="3 images but"):
        mnist("test")


def test_unknown_split():
    with pytest.raises(UnknownDatasetError, match="splits"):
        mnist("validation")


def test_emnist_subset_from_zip_archive_is_transposed_upright(upstream):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    labels = np.array([1, 26, 3, 4], np.uint8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split in ("train", "test"):
            archive.writestr(f"gzip/emnist-letters-{split}-images-idx3-ubyte.gz", gzip.compress(idx_bytes(stored, 0x08)))
            archive.writestr(f"gzip/emnist-letters-{split}-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels, 0x08)))
    upstream("EMNIST", {"gzip.zip": buffer.getvalue()})
    images, y = emnist("test", subset="letters")
    np.testing.assert_array_equal(images, stored.transpose(0, 2, 1))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(UnknownDatasetError, match="subsets"):
        emnist("test", subset="greek")
