"""Classic time series for fitting dynamical models.

- `lynx_hare`: Hudson's Bay Company lynx and snowshoe hare pelts, 1900-1920 (thousands),
  the standard predator-prey (Lotka-Volterra) data set.
- `canadian_lynx`: annual Canadian lynx trappings, 1821-1934 (Elton and Nicholson, 1942).
- `sunspots`: yearly mean relative sunspot numbers, 1700-1988.
- `mauna_loa_co2`: monthly atmospheric CO2 at Mauna Loa, 1959-1997 (ppm).

Each loader returns `(t, y)` NumPy arrays (float64 times in years, float64 values) or a
DataFrame with `as_frame=True`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import DataDep, datadep, register
from ._tabular import read_table
from .errors import DatasetFormatError
from .rdatasets import _raw

_STAN = (
    "https://raw.githubusercontent.com/stan-dev/example-models/"
    "3057930df98f3fe54ee32b1d6736a97ac0012ab6/knitr/lotka-volterra/hudson-bay-lynx-hare.csv"
)
_LH_CITATION = (
    "D. A. MacLulich (1937). Fluctuations in the numbers of the varying hare (Lepus americanus). "
    "University of Toronto Studies, Biological Series 43; as tabulated by E. P. Odum (1953), "
    "Fundamentals of Ecology, and used in B. Carpenter (2018), Predator-Prey Population Dynamics: "
    "the Lotka-Volterra model in Stan."
)
register(
    DataDep(
        "Lynx-Hare",
        urls={"hudson-bay-lynx-hare.csv": [_STAN]},
        hashes={"hudson-bay-lynx-hare.csv": "sha256:66d3b24d30221a5654ab48cc461ea1d3f725f8f5719016f702cfb56610b4ee63"},
        message=(
            "Hudson's Bay Company lynx and hare pelts 1900-1920 (historical public-domain records), "
            f"as distributed with the Stan example models (BSD-3-Clause).\nCitation: {_LH_CITATION}"
        ),
        description="Lynx and snowshoe hare pelts (thousands), Hudson's Bay Company, 1900-1920",
        licence="Public domain data; file BSD-3-Clause",
        citation=_LH_CITATION,
        size=470,
    )
)

_ELTON = (
    "C. Elton and M. Nicholson (1942). The ten-year cycle in numbers of the lynx in Canada. "
    "Journal of Animal Ecology 11:215-244. Via R's datasets package and Rdatasets."
)
register(
    DataDep(
        "Canadian-Lynx",
        urls={"lynx.csv": [_raw("csv/datasets/lynx.csv")]},
        hashes={"lynx.csv": "sha256:0766d4043eb8a20ac83afefff1c78063beff3891571c59e8e38d72503ca86cf1"},
        message=f"Annual numbers of lynx trappings in Canada, 1821-1934.\nLicence: GPL-2 or GPL-3 (R datasets).\nCitation: {_ELTON}",
        description="Annual Canadian lynx trappings, 1821-1934",
        licence="GPL-2 or GPL-3 (R datasets package)",
        citation=_ELTON,
        size=1438,
    )
)

# These two come from Rdatasets too; their SHA-256 is recorded on first fetch (see rdatasets.py).
_SUNSPOT_CITATION = "Yearly sunspot data 1700-1988, R datasets package (sunspot.year); WDC-SILSO, Royal Observatory of Belgium."
register(
    DataDep(
        "Sunspots",
        urls={"sunspot.year.csv": [_raw("csv/datasets/sunspot.year.csv")]},
        message=f"Yearly mean relative sunspot numbers 1700-1988.\nLicence: GPL-2 or GPL-3 (R datasets).\nCitation: {_SUNSPOT_CITATION}",
        description="Yearly mean relative sunspot numbers, 1700-1988",
        licence="GPL-2 or GPL-3 (R datasets package)",
        citation=_SUNSPOT_CITATION,
    )
)
_CO2_CITATION = (
    "C. D. Keeling and T. P. Whorf, Scripps Institution of Oceanography: atmospheric CO2 at Mauna Loa, "
    "R datasets package (co2)."
)
register(
    DataDep(
        "Mauna-Loa-CO2",
        urls={"co2.csv": [_raw("csv/datasets/co2.csv")]},
        message=f"Monthly Mauna Loa atmospheric CO2 concentration 1959-1997 (ppm).\nLicence: GPL-2 or GPL-3 (R datasets).\nCitation: {_CO2_CITATION}",
        description="Monthly Mauna Loa CO2 (ppm), 1959-1997",
        licence="GPL-2 or GPL-3 (R datasets package)",
        citation=_CO2_CITATION,
    )
)

UNPINNED = {
    "Rdatasets-index": "Rdatasets publishes no checksums; the SHA-256 is recorded on first fetch",
    "Sunspots": "from Rdatasets (no published checksum); recorded on first fetch",
    "Mauna-Loa-CO2": "from Rdatasets (no published checksum); recorded on first fetch",
}
"""Datasets of this package declared without a hash, and why (checked by the test suite)."""


def lynx_hare(*, as_frame: bool = False):
    """Hudson's Bay Company lynx and hare pelts, 1900-1920, in thousands.

    **Returns:** `(t, y)`: `t` float64 `(21,)` years, `y` float64 `(21, 2)` with columns
    (hare, lynx) — prey first, as a Lotka-Volterra model orders its states; or a DataFrame
    with columns `year, hare, lynx`.

    **Example:**

    ```python
    from scimlkit.datasets import lynx_hare
    t, y = lynx_hare()
    ```
    """
    path = Path(datadep("Lynx-Hare")) / "hudson-bay-lynx-hare.csv"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or [c.strip() for c in lines[0].split(",")] != ["Year", "Lynx", "Hare"]:
        raise DatasetFormatError(f"{path}: expected a header 'Year, Lynx, Hare'")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        fields = [f.strip() for f in line.split(",")]
        try:
            year, lynx, hare = (float(f) for f in fields)
        except ValueError as exc:
            raise DatasetFormatError(f"{path}: data line {n} is not three numbers: {line!r}") from exc
        rows.append((year, hare, lynx))
    table = np.array(rows, dtype=np.float64)
    if table.shape != (21, 3):
        raise DatasetFormatError(f"{path}: expected 21 years of data, found {len(table)}")
    if as_frame:
        import pandas as pd

        return pd.DataFrame({"year": table[:, 0].astype(np.int64), "hare": table[:, 1], "lynx": table[:, 2]})
    return table[:, 0], table[:, 1:]


def _rdatasets_series(name: str, filename: str, expected_rows: int, as_frame: bool):
    path = Path(datadep(name)) / filename
    frame = read_table(path, ["rownames", "time", "value"], header=False, numeric=[], expected_rows=None)
    # The first line is the header ("rownames,time,value" or '"","time","value"').
    header = [c.strip().strip('"') for c in frame.iloc[0]]
    if header[1:] != ["time", "value"]:
        raise DatasetFormatError(f"{path}: expected columns time,value; found {header}")
    body = frame.iloc[1:]
    try:
        t = body["time"].str.strip('" ').astype(np.float64).to_numpy()
        y = body["value"].str.strip('" ').astype(np.float64).to_numpy()
    except ValueError as exc:
        raise DatasetFormatError(f"{path}: non-numeric time or value ({exc})") from exc
    if len(t) != expected_rows:
        raise DatasetFormatError(f"{path}: expected {expected_rows} rows, found {len(t)}")
    if as_frame:
        import pandas as pd

        return pd.DataFrame({"time": t, "value": y})
    return t, y


def canadian_lynx(*, as_frame: bool = False):
    """Annual Canadian lynx trappings, 1821-1934: `t` (114,) years, `y` (114,) counts.

    **Example:**

    ```python
    from scimlkit.datasets import canadian_lynx
    t, y = canadian_lynx()
    ```
    """
    return _rdatasets_series("Canadian-Lynx", "lynx.csv", 114, as_frame)


def sunspots(*, as_frame: bool = False):
    """Yearly mean relative sunspot numbers, 1700-1988: `t` (289,), `y` (289,).

    **Example:**

    ```python
    from scimlkit.datasets import sunspots
    t, y = sunspots()
    ```
    """
    return _rdatasets_series("Sunspots", "sunspot.year.csv", 289, as_frame)


def mauna_loa_co2(*, as_frame: bool = False):
    """Monthly Mauna Loa CO2, 1959-1997: `t` (468,) decimal years, `y` (468,) ppm.

    **Example:**

    ```python
    from scimlkit.datasets import mauna_loa_co2
    t, y = mauna_loa_co2()
    ```
    """
    return _rdatasets_series("Mauna-Loa-CO2", "co2.csv", 468, as_frame)
