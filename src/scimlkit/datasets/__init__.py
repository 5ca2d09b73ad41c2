"""scimlkit.datasets: real data packages built on `scimlkit.data`.

Importing this package registers every declaration, so `scimlkit data list` shows the
catalogue. Loaders fetch on first use and return NumPy arrays (or pandas DataFrames with
`as_frame=True` where the data are tabular).

| family | loaders |
|---|---|
| MNIST-like (IDX) | `mnist`, `fashion_mnist`, `kmnist`, `emnist` |
| CIFAR (binary) | `cifar10`, `cifar100` |
| UCI tables | `iris`, `wine`, `breast_cancer` |
| Rdatasets | `rdatasets_index`, `rdataset` |
| time series | `lynx_hare`, `canadian_lynx`, `sunspots`, `mauna_loa_co2` |

Point the declared URLs at a mirror with ``SCIMLKIT_URL_REWRITE`` (see `scimlkit.data`).
"""

from .cifar import cifar10, cifar10_classes, cifar100, cifar100_classes, parse_cifar_records
from .errors import DatasetFormatError, UnknownDatasetError
from .idx import parse_idx, write_idx
from .mnist import EMNIST_SUBSETS, emnist, fashion_mnist, kmnist, load_idx_pair, mnist
from .rdatasets import rdataset, rdatasets_index
from .timeseries import canadian_lynx, lynx_hare, mauna_loa_co2, sunspots
from .uci import breast_cancer, iris, wine

__all__ = [
    "EMNIST_SUBSETS",
    "DatasetFormatError",
    "UnknownDatasetError",
    "breast_cancer",
    "canadian_lynx",
    "cifar10",
    "cifar10_classes",
    "cifar100",
    "cifar100_classes",
    "emnist",
    "fashion_mnist",
    "iris",
    "kmnist",
    "load_idx_pair",
    "lynx_hare",
    "mauna_loa_co2",
    "mnist",
    "parse_cifar_records",
    "parse_idx",
    "rdataset",
    "rdatasets_index",
    "sunspots",
    "wine",
    "write_idx",
]
