"""CIFAR binary parsing and loaders, against archives written in the published layout."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from scimlkit.datasets import (
    DatasetFormatError,
    cifar10,
    cifar10_classes,
    cifar100,
    cifar100_classes,
    parse_cifar_records,
)


def records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Layout per the CIFAR page: label byte(s), then 1024 R, 1024 G, 1024 B bytes (row-major)."""
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out += bytes(np.atleast_1d(label).astype(np.uint8).tolist())
        for channel in range(3):
            out += image[:, :, channel].tobytes()
    return bytes(out)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_cifar10_loader_reads_every_batch_exactly(upstream):
    rng = np.random.default_rng(0)
    batches = {i: (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 2)) for i in range(1, 7)}
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": records(*batches[i]) for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = records(*batches[6])
    members["cifar-10-batches-bin/batches.meta.txt"] = ("\n".join(CIFAR10_NAMES) + "\n\n").encode()
    upstream("CIFAR-10", {"cifar-10-binary.tar.gz": tar_gz(members)})

    x, y = cifar10("train")
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, np.concatenate([batches[i][0] for i in range(1, 6)]))
    np.testing.assert_array_equal(y, np.concatenate([batches[i][1] for i in range(1, 6)]))
    x_test, y_test = cifar10("test")
    np.testing.assert_array_equal(x_test, batches[6][0])
    np.testing.assert_array_equal(y_test, batches[6][1])
    assert cifar10_classes() == CIFAR10_NAMES


def test_cifar100_coarse_and_fine(upstream):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    labels = np.array([[0, 99], [19, 5], [7, 42]])
    members = {
        "cifar-100-binary/train.bin": records(images, labels),
        "cifar-100-binary/test.bin": records(images[:1], labels[:1]),
        "cifar-100-binary/fine_label_names.txt": "\n".join(f"fine{i}" for i in range(100)).encode(),
        "cifar-100-binary/coarse_label_names.txt": "\n".join(f"coarse{i}" for i in range(20)).encode(),
    }
    upstream("CIFAR-100", {"cifar-100-binary.tar.gz": tar_gz(members)})
    x, fine = cifar100("train")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(fine, labels[:, 1])
    _, coarse = cifar100("train", label="coarse")
    np.testing.assert_array_equal(coarse, labels[:, 0])
    _, both = cifar100("test", label="both")
    np.testing.assert_array_equal(both, labels[:1])
    assert cifar100_classes("coarse")[19] == "coarse19"


def test_record_of_wrong_length_is_rejected():
    good = records(np.zeros((2, 32, 32, 3), np.uint8), np.array([1, 2]))
    with pytest.raises(DatasetFormatError, match="whole number"):
        parse_cifar_records(good[:-1], label_bytes=1)
    with pytest.raises(DatasetFormatError, match="whole number"):
        parse_cifar_records(good, label_bytes=2)  # a CIFAR-10 file read as CIFAR-100
    with pytest.raises(DatasetFormatError):
        parse_cifar_records(b"", label_bytes=1)
