"""scimlkit.data: declare, fetch, verify, unpack and cache datasets (DataDeps for Python; no JAX).

Declare a dataset once, then ask for its path; the first call downloads, verifies, unpacks and
installs it atomically, later calls only look it up:

```python
from scimlkit.data import DataDep, register, datadep
register(DataDep(
    "UCI-Iris",
    urls=["https://example.org/iris.zip", "https://mirror.example.net/iris.zip"],  # mirrors
    sha256="...",                        # or hashes={"file": "alg:hex"} for many files
    message="Fisher (1936). Licence: CC BY 4.0. Please cite ...",
    unpack=True,
))
path = datadep("UCI-Iris/iris.data")
```

**Environment variables**

- ``SCIMLKIT_DATA``: the primary, writable store (default: ``<user cache>/scimlkit/data``).
- ``SCIMLKIT_DATA_PATH``: read-only stores searched first (``os.pathsep``-separated).
- ``SCIMLKIT_ACCEPT_TERMS=1``: accept datasets' terms without asking (CI, batch jobs).
- ``SCIMLKIT_OFFLINE=1``: never download; resolve from the stores only.
- ``SCIMLKIT_URL_REWRITE``: URL rewriting for mirrors, see below.
- ``SCIMLKIT_MIRROR_ONLY=1``: do not fall back to declared URLs that a rule rewrote.
- ``SCIMLKIT_REGISTRY``: TOML registry files to load (``os.pathsep``-separated).
- ``SCIMLKIT_HEADERS_<NAME>``: extra HTTP headers for one dataset (a JSON object or
  ``Name: value`` lines; ``UCI-Iris`` reads ``SCIMLKIT_HEADERS_UCI_IRIS``), e.g. a token.
- ``SCIMLKIT_PROGRESS=0``: no progress bars (they only ever show on a terminal).
- ``SCIMLKIT_RETRIES``, ``SCIMLKIT_BACKOFF``, ``SCIMLKIT_TIMEOUT``, ``SCIMLKIT_CONNECT_TIMEOUT``,
  ``SCIMLKIT_MAX_PARALLEL``, ``SCIMLKIT_MAX_UNPACK_SIZE``: transfer and unpacking limits.

**URL overrides (institutional mirrors, caches, test servers)**

A rule ``PREFIX=REPLACEMENT`` makes every declared URL starting with ``PREFIX`` be tried first
as ``REPLACEMENT + rest``; the declared URLs remain fallbacks (unless
``SCIMLKIT_MIRROR_ONLY=1``). Hashes are checked the same way whatever served the file. Set
rules in the environment (several separated by ``;``)::

    SCIMLKIT_URL_REWRITE="https://ossci-datasets.s3.amazonaws.com/mnist/=http://127.0.0.1:8000/mnist/"

or in Python with ``add_mirror(prefix, replacement)`` (``clear_mirrors()`` forgets them).

**Third-party datasets** register through the entry-point group ``scimlkit.datasets`` (a
callable that calls `register`, or the path of a TOML registry file); `catalogue` loads them,
and imports ``scimlkit.datasets`` when it is installed.
"""

from .checksum import file_hash
from .errors import (
    ChecksumMismatch,
    DataError,
    DownloadError,
    NotInStore,
    RegistryError,
    StoreError,
    TermsNotAccepted,
    UnknownDataset,
    UnpackError,
    UnsafeArchive,
)
from .mirrors import add_mirror, clear_mirrors
from .resolve import datadep, fetch, locate, purge, verify
from .spec import (
    DataDep,
    RemoteFile,
    catalogue,
    get,
    load_pooch_registry,
    load_registry,
    parse_registry,
    register,
    unregister,
)
from .store import load_path, primary_store
from .unpack import unpack as unpack_archive

__all__ = [
    "ChecksumMismatch",
    "DataDep",
    "DataError",
    "DownloadError",
    "NotInStore",
    "RegistryError",
    "RemoteFile",
    "StoreError",
    "TermsNotAccepted",
    "UnknownDataset",
    "UnpackError",
    "UnsafeArchive",
    "add_mirror",
    "catalogue",
    "clear_mirrors",
    "datadep",
    "fetch",
    "file_hash",
    "get",
    "load_path",
    "load_pooch_registry",
    "load_registry",
    "locate",
    "parse_registry",
    "primary_store",
    "purge",
    "register",
    "unpack_archive",
    "unregister",
    "verify",
]
