"""MNIST and its drop-in relatives (Fashion-MNIST, KMNIST, EMNIST), from the IDX files.

Every loader returns `(images, labels)`: `images` uint8 `(N, 28, 28)` (row-major, upright),
`labels` int64 `(N,)`. Checksums are the ones the authors (or torchvision, for MNIST and
EMNIST) publish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ..data import DataDep, datadep, register
from .errors import DatasetFormatError, UnknownDatasetError
from .idx import parse_idx

Split = Literal["train", "test"]
_PREFIX = {"train": "train", "test": "t10k"}


def _idx_files(bases: list[str], md5: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    urls = {name: [base + name for base in bases] for name in md5}
    hashes = {name: f"md5:{digest}" for name, digest in md5.items()}
    return urls, hashes


_MNIST_CITATION = (
    "Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998). Gradient-based learning applied to "
    "document recognition. Proceedings of the IEEE 86(11):2278-2324."
)
_urls, _hashes = _idx_files(
    [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)
register(
    DataDep(
        "MNIST",
        urls=_urls,
        hashes=_hashes,
        message=(
            "MNIST handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges).\n"
            "Licence: CC BY-SA 3.0 (as stated by the authors' mirror).\n"
            f"Citation: {_MNIST_CITATION}"
        ),
        description="70,000 28x28 greyscale handwritten digits, 10 classes",
        licence="CC BY-SA 3.0",
        citation=_MNIST_CITATION,
        size=11594722,
    )
)

_FASHION_CITATION = (
    "H. Xiao, K. Rasul and R. Vollgraf (2017). Fashion-MNIST: a Novel Image Dataset for "
    "Benchmarking Machine Learning Algorithms. arXiv:1708.07747."
)
_urls, _hashes = _idx_files(
    [
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
)
register(
    DataDep(
        "Fashion-MNIST",
        urls=_urls,
        hashes=_hashes,
        message=f"Fashion-MNIST, Zalando Research.\nLicence: MIT.\nCitation: {_FASHION_CITATION}",
        description="70,000 28x28 greyscale images of clothing, 10 classes",
        licence="MIT",
        citation=_FASHION_CITATION,
        size=30878645,
    )
)

_KMNIST_CITATION = (
    "T. Clanuwat, M. Bober-Irizar, A. Kitamoto, A. Lamb, K. Yamamoto and D. Ha (2018). "
    "Deep Learning for Classical Japanese Literature. arXiv:1812.01718."
)
_urls, _hashes = _idx_files(
    ["https://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
)
register(
    DataDep(
        "KMNIST",
        urls=_urls,
        hashes=_hashes,
        message=(
            "Kuzushiji-MNIST ('KMNIST Dataset' created by CODH, adapted from the 'Kuzushiji Dataset' "
            "created by NIJL and others).\nLicence: CC BY-SA 4.0.\n"
            f"Citation: {_KMNIST_CITATION}"
        ),
        description="70,000 28x28 greyscale cursive Japanese (Kuzushiji) characters, 10 classes",
        licence="CC BY-SA 4.0",
        citation=_KMNIST_CITATION,
    )
)

_EMNIST_CITATION = (
    "G. Cohen, S. Afshar, J. Tapson and A. van Schaik (2017). EMNIST: an extension of MNIST to "
    "handwritten letters. arXiv:1702.05373."
)
register(
    DataDep(
        "EMNIST",
        urls=[
            "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
            "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip",
        ],
        hashes="md5:58c8d27c78d21e728a6bc7b3cc06412e",
        message=(
            "EMNIST (Extended MNIST), NIST Special Database 19 converted to the MNIST format.\n"
            "Licence: NIST data, public domain in the United States (17 U.S.C. 105); cite the paper.\n"
            f"Citation: {_EMNIST_CITATION}"
        ),
        unpack=True,
        description="Handwritten digits and letters in the MNIST format; six subsets",
        licence="Public domain (NIST, US)",
        citation=_EMNIST_CITATION,
    )
)

EMNIST_SUBSETS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


def _check_split(split: str, dataset: str) -> None:
    if split not in _PREFIX:
        raise UnknownDatasetError(f"{dataset} has splits 'train' and 'test', not {split!r}")


def load_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse an images/labels pair of IDX files and check they agree.

    **Returns:** `(images, labels)`: images as stored (uint8 `(N, H, W)`), labels int64 `(N,)`.

    **Raises:** `DatasetFormatError` on malformed files or mismatched counts.

    **Example:**

    ```python
    images, labels = load_idx_pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    ```
    """
    images = parse_idx(images_path)
    labels = parse_idx(labels_path)
    if images.ndim != 3:
        raise DatasetFormatError(f"{images_path}: expected images of rank 3 (N, H, W), got shape {images.shape}")
    if labels.ndim != 1:
        raise DatasetFormatError(f"{labels_path}: expected labels of rank 1, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DatasetFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images, labels.astype(np.int64)


def _load_mnist_like(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    _check_split(split, dataset)
    folder = Path(datadep(dataset))
    prefix = _PREFIX[split]
    images, labels = load_idx_pair(
        folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetFormatError(f"{dataset} labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return images, labels


def mnist(split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """The MNIST handwritten digits.

    **Returns:** `(images, labels)`: uint8 `(N, 28, 28)`, int64 `(N,)` in 0..9;
    N = 60,000 (`"train"`) or 10,000 (`"test"`).

    **Example:**

    ```python
    from scimlkit.datasets import mnist
    x_train, y_train = mnist("train")
    ```
    """
    return _load_mnist_like("MNIST", split)


def fashion_mnist(split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando): same shapes and dtypes as `mnist`.

    **Example:**

    ```python
    from scimlkit.datasets import fashion_mnist
    x_test, y_test = fashion_mnist("test")
    ```
    """
    return _load_mnist_like("Fashion-MNIST", split)


def kmnist(split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """Kuzushiji-MNIST: same shapes and dtypes as `mnist`.

    **Example:**

    ```python
    from scimlkit.datasets import kmnist
    x, y = kmnist("train")
    ```
    """
    return _load_mnist_like("KMNIST", split)


def emnist(split: Split = "train", subset: str = "balanced") -> tuple[np.ndarray, np.ndarray]:
    """EMNIST, one of its six subsets (`EMNIST_SUBSETS`).

    Images are returned upright (the IDX files store them transposed; this loader
    transposes them back), uint8 `(N, 28, 28)`; labels int64 `(N,)` as stored (the
    `letters` subset numbers its classes 1..26).

    **Example:**

    ```python
    from scimlkit.datasets import emnist
    x, y = emnist("test", subset="letters")
    ```
    """
    _check_split(split, "EMNIST")
    if subset not in EMNIST_SUBSETS:
        raise UnknownDatasetError(f"EMNIST subsets are {EMNIST_SUBSETS}, not {subset!r}")
    folder = Path(datadep("EMNIST")) / "gzip"
    images, labels = load_idx_pair(
        folder / f"emnist-{subset}-{split}-images-idx3-ubyte.gz",
        folder / f"emnist-{subset}-{split}-labels-idx1-ubyte.gz",
    )
    return np.ascontiguousarray(images.transpose(0, 2, 1)), labels
