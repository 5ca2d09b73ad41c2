"""Shared reading of small delimited text tables with strict shape checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import DatasetFormatError


def read_table(
    path: str | Path,
    columns: Sequence[str],
    *,
    header: bool = False,
    numeric: Sequence[str] = (),
    expected_rows: int | None = None,
):
    """Read a comma-separated table into a pandas DataFrame, checking its shape strictly.

    **Arguments:**

    - `columns`: the column names the file must have (in order).
    - `header`: whether the file's first line is a header (it must then name `columns`).
    - `numeric`: columns that must parse as numbers (a non-number raises).
    - `expected_rows`: the exact row count the published data set has, if known.

    **Raises:** `DatasetFormatError` naming the file and what is wrong.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(
            path,
            header=0 if header else None,
            names=None if header else list(columns),
            skip_blank_lines=True,
            skipinitialspace=True,
            comment=None,
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetFormatError(f"{path}: cannot be read as a comma-separated table ({exc})") from exc
    if header:
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DatasetFormatError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
        frame = frame[list(columns)]
    else:
        # pandas pads short rows with NaN and lets long rows spill: check every row's width.
        short = frame.isna().any(axis=1)
        if short.any():
            row = int(np.flatnonzero(short.to_numpy())[0])
            raise DatasetFormatError(
                f"{path}: row {row + 1} has fewer than the {len(columns)} expected columns {list(columns)}"
            )
        with path.open(encoding="utf-8", errors="replace") as handle:
            for lineno, line in enumerate(handle, 1):
                if line.strip() and line.count(",") + 1 != len(columns):
                    raise DatasetFormatError(
                        f"{path}: line {lineno} has {line.count(',') + 1} fields, expected {len(columns)} "
                        f"({', '.join(columns)})"
                    )
    for column in numeric:
        converted = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        bad = converted.isna() & (frame[column].str.strip() != "NA")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetFormatError(
                f"{path}: column {column!r} row {row + 1} is not a number: {frame[column].iloc[row]!r}"
            )
        frame[column] = converted
    if expected_rows is not None and len(frame) != expected_rows:
        raise DatasetFormatError(
            f"{path}: expected {expected_rows} rows, found {len(frame)}; the file is truncated or a "
            "different version. Purge it (`scimlkit data purge NAME`) and fetch again."
        )
    return frame.reset_index(drop=True)
