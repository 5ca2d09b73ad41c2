"""The Rdatasets collection: ~2,000 data sets from R packages as CSV files (like RDatasets.jl).

`rdatasets_index()` lists every package and data set; `rdataset("datasets", "mtcars")`
returns one as a pandas DataFrame. Files come from a fixed commit of the collection's
repository (`RDATASETS_COMMIT`, override with ``SCIMLKIT_RDATASETS_REF``), so a name always
means the same bytes. The collection publishes no checksums and has too many files to pin
by hand: each file's SHA-256 is recorded in the store on first fetch and checked by
`scimlkit data verify` afterwards (a documented exception to "every file has a declared hash").
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from ..data import DataDep, datadep, get, register
from ..data.errors import UnknownDataset
from .errors import DatasetFormatError, UnknownDatasetError

RDATASETS_COMMIT = "17f096af74a73c1b182dbe634f5aadb20bdefdff"
_CITATION = "V. Arel-Bundock. Rdatasets: a collection of datasets originally distributed in R packages."
_LICENCE = "Per data set: that of the R package it comes from (GPL for most); see the package documentation."
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _raw(path: str) -> str:
    ref = os.environ.get("SCIMLKIT_RDATASETS_REF", RDATASETS_COMMIT)
    return f"https://raw.githubusercontent.com/vincentarelbundock/Rdatasets/{ref}/{path}"


register(
    DataDep(
        "Rdatasets-index",
        urls={"datasets.csv": [_raw("datasets.csv")]},
        message=f"The Rdatasets index.\nLicence: {_LICENCE}\nCitation: {_CITATION}",
        description="Index of the Rdatasets collection (package, item, title, size)",
        licence="per data set (mostly GPL)",
        citation=_CITATION,
    )
)


def rdatasets_index():
    """The index of the collection as a DataFrame with columns Package, Item, Title, Rows, Cols.

    **Example:**

    ```python
    from scimlkit.datasets import rdatasets_index
    index = rdatasets_index()
    index[index.Package == "datasets"].head()
    ```
    """
    import pandas as pd

    path = Path(datadep("Rdatasets-index")) / "datasets.csv"
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetFormatError(f"{path}: not a readable CSV index ({exc})") from exc
    missing = [c for c in ("Package", "Item", "Title", "Rows", "Cols") if c not in frame.columns]
    if missing:
        raise DatasetFormatError(f"{path}: index lacks column(s) {missing}; found {list(frame.columns)}")
    return frame[["Package", "Item", "Title", "Rows", "Cols"]]


def _declare(package: str, item: str) -> str:
    name = f"Rdatasets-{package}-{item}"
    try:
        get(name)
    except UnknownDataset:
        register(
            DataDep(
                name,
                urls={f"{item}.csv": [_raw(f"csv/{package}/{item}.csv")]},
                message=(
                    f"Data set {item!r} of R package {package!r}, via Rdatasets.\n"
                    f"Licence: {_LICENCE}\nCitation: {_CITATION} And the R package {package}."
                ),
                description=f"{package}::{item} from Rdatasets",
                licence="per R package",
                citation=_CITATION,
            )
        )
    return name


def rdataset(package: str, item: str, *, check_index: bool = True):
    """One data set of the Rdatasets collection as a pandas DataFrame.

    R's row names, when they carry information (e.g. car models in `mtcars`), become the
    index; plain row numbers are dropped.

    **Arguments:**

    - `package`, `item`: as in the index (`rdatasets_index()`), e.g. `("datasets", "mtcars")`.
    - `check_index`: look the pair up in the index first, so a typo gets suggestions
      instead of a failed download.

    **Example:**

    ```python
    from scimlkit.datasets import rdataset
    mtcars = rdataset("datasets", "mtcars")
    ```
    """
    import pandas as pd

    if not (_SAFE.match(package) and _SAFE.match(item)):
        raise UnknownDatasetError(f"invalid Rdatasets name {package!r}/{item!r}")
    if check_index:
        index = rdatasets_index()
        known = set(zip(index["Package"], index["Item"], strict=True))
        if (package, item) not in known:
            candidates = [f"{p}/{i}" for p, i in known if p == package] or sorted({p for p, _ in known})
            close = difflib.get_close_matches(f"{package}/{item}" if any("/" in c for c in candidates) else package, candidates, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownDatasetError(f"Rdatasets has no data set {package}/{item}.{hint}")
    name = _declare(package, item)
    path = Path(datadep(name)) / f"{item}.csv"
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetFormatError(f"{path}: not a readable CSV file ({exc})") from exc
    first = frame.columns[0]
    if first in ("rownames", "Unnamed: 0", ""):
        labels = frame[first]
        trivial = labels.astype(str).tolist() == [str(i) for i in range(1, len(frame) + 1)]
        frame = frame.drop(columns=first)
        if not trivial:
            frame.index = labels.rename(None)
    return frame
