"""CIFAR-10 and CIFAR-100 from their binary distributions (never unpickled).

Binary record layout (Krizhevsky, 2009):

- CIFAR-10: 1 label byte, then 3072 pixel bytes (1024 red, 1024 green, 1024 blue; each a
  32x32 image in row-major order). Files `data_batch_1.bin` ... `data_batch_5.bin`,
  `test_batch.bin`, label names in `batches.meta.txt`.
- CIFAR-100: 1 coarse-label byte, 1 fine-label byte, then 3072 pixel bytes. Files
  `train.bin`, `test.bin`, names in `coarse_label_names.txt`, `fine_label_names.txt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..data import DataDep, datadep, register
from .errors import DatasetFormatError, UnknownDatasetError

PIXELS = 32 * 32 * 3
_CITATION = (
    "Alex Krizhevsky (2009). Learning Multiple Layers of Features from Tiny Images. "
    "Technical report, University of Toronto."
)
_LICENCE = "No licence stated by the authors; cite the technical report when you use the data."

register(
    DataDep(
        "CIFAR-10",
        urls=["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"],
        hashes={"cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530"},
        message=f"CIFAR-10: 60,000 32x32 colour images in 10 classes.\n{_LICENCE}\nCitation: {_CITATION}",
        unpack=True,
        description="60,000 32x32 colour images in 10 classes (binary version)",
        licence="unspecified (cite the technical report)",
        citation=_CITATION,
        size=170052171,
    )
)
register(
    DataDep(
        "CIFAR-100",
        urls=["https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"],
        hashes={"cifar-100-binary.tar.gz": "md5:03b5dce01913d631647c71ecec9e9cb8"},
        message=f"CIFAR-100: 60,000 32x32 colour images in 100 classes.\n{_LICENCE}\nCitation: {_CITATION}",
        unpack=True,
        description="60,000 32x32 colour images in 100 fine / 20 coarse classes (binary version)",
        licence="unspecified (cite the technical report)",
        citation=_CITATION,
        size=168513733,
    )
)


def parse_cifar_records(
    source: str | os.PathLike[str] | bytes, label_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR binary file into images (N, 32, 32, 3) uint8 and labels (N, label_bytes) uint8.

    **Raises:** `DatasetFormatError` if the file is not a whole number of records.

    **Example:**

    ```python
    >>> import numpy as np
    >>> from scimlkit.datasets.cifar import parse_cifar_records
    >>> record = bytes([7]) + bytes(3072)
    >>> images, labels = parse_cifar_records(record * 2, label_bytes=1)
    >>> images.shape, labels[:, 0].tolist()
    ((2, 32, 32, 3), [7, 7])

    ```
    """
    if isinstance(source, bytes | bytearray | memoryview):
        raw, name = bytes(source), "<bytes>"
    else:
        raw, name = Path(source).read_bytes(), str(source)
    record = label_bytes + PIXELS
    if len(raw) == 0 or len(raw) % record:
        raise DatasetFormatError(
            f"{name}: {len(raw)} bytes is not a whole number of {record}-byte CIFAR records "
            f"({label_bytes} label byte(s) + {PIXELS} pixels); the file is truncated or not a "
            "CIFAR binary file. Purge the dataset and fetch it again."
        )
    table = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    labels = table[:, :label_bytes].copy()
    images = table[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, labels


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def cifar10(split: Literal["train", "test"] = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images and labels.

    **Returns:** `(images, labels)`: uint8 `(N, 32, 32, 3)` (HWC, RGB) and int64 `(N,)` in 0..9;
    N = 50,000 for `"train"`, 10,000 for `"test"`. Class names: `cifar10_classes()`.

    **Example:**

    ```python
    from scimlkit.datasets import cifar10
    x, y = cifar10("test")   # fetched and verified on first use
    ```
    """
    folder = Path(datadep("CIFAR-10")) / "cifar-10-batches-bin"
    if split == "train":
        files = [folder / f"data_batch_{i}.bin" for i in range(1, 6)]
    elif split == "test":
        files = [folder / "test_batch.bin"]
    else:
        raise UnknownDatasetError(f"CIFAR-10 has splits 'train' and 'test', not {split!r}")
    parts = [parse_cifar_records(f, label_bytes=1) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1][:, 0] for p in parts]).astype(np.int64)
    if labels.max(initial=0) > 9:
        raise DatasetFormatError(f"CIFAR-10 labels must be 0..9, found {labels.max()}")
    return images, labels


def cifar10_classes() -> list[str]:
    """The ten CIFAR-10 class names, in label order (read from `batches.meta.txt`).

    **Example:**

    ```python
    from scimlkit.datasets import cifar10, cifar10_classes
    x, y = cifar10("test")
    names = cifar10_classes()   # names[y[0]] is the first test image's class, e.g. "cat"
    ```
    """
    return _read_names(Path(datadep("CIFAR-10")) / "cifar-10-batches-bin" / "batches.meta.txt")


def cifar100(
    split: Literal["train", "test"] = "train", label: Literal["fine", "coarse", "both"] = "fine"
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 images and labels.

    **Arguments:** `split` ("train": 50,000, "test": 10,000); `label`: "fine" (0..99),
    "coarse" (0..19) or "both" (an `(N, 2)` array of coarse, fine).

    **Returns:** uint8 images `(N, 32, 32, 3)` and int64 labels.

    **Example:**

    ```python
    from scimlkit.datasets import cifar100
    x, y = cifar100("train", label="coarse")
    ```
    """
    if split not in ("train", "test"):
        raise UnknownDatasetError(f"CIFAR-100 has splits 'train' and 'test', not {split!r}")
    if label not in ("fine", "coarse", "both"):
        raise UnknownDatasetError(f"CIFAR-100 labels are 'fine', 'coarse' or 'both', not {label!r}")
    images, labels = parse_cifar_records(
        Path(datadep("CIFAR-100")) / "cifar-100-binary" / f"{split}.bin", label_bytes=2
    )
    labels = labels.astype(np.int64)
    if labels[:, 0].max(initial=0) > 19 or labels[:, 1].max(initial=0) > 99:
        raise DatasetFormatError("CIFAR-100 labels out of range (coarse must be < 20, fine < 100)")
    chosen = {"coarse": labels[:, 0], "fine": labels[:, 1], "both": labels}[label]
    return images, chosen


def cifar100_classes(label: Literal["fine", "coarse"] = "fine") -> list[str]:
    """CIFAR-100 class names in label order (`label="fine"`: 100 names, `"coarse"`: 20).

    **Example:**

    ```python
    from scimlkit.datasets import cifar100, cifar100_classes
    x, y = cifar100("train", label="coarse")
    names = cifar100_classes("coarse")   # names[y[0]], e.g. "vehicles_1"
    ```
    """
    return _read_names(Path(datadep("CIFAR-100")) / "cifar-100-binary" / f"{label}_label_names.txt")
