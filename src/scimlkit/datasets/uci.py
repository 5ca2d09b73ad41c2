"""Classic tables from the UCI Machine Learning Repository: Iris, Wine, Breast Cancer Wisconsin.

Each loader returns `(X, y)` as NumPy arrays (float64 features, int64 class codes), or one
pandas DataFrame with a `target` column when `as_frame=True`. The SHA-256 checksums are
those of the files at the UCI repository's `machine-learning-databases` URLs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import DataDep, datadep, register
from ._tabular import read_table
from .errors import DatasetFormatError

_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
_UCI_CITATION = "D. Dua and C. Graff (2019). UCI Machine Learning Repository. University of California, Irvine."

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_CLASSES = ("Iris-setosa", "Iris-versicolor", "Iris-virginica")
WINE_FEATURES = (
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280_od315", "proline",
)
_WDBC_BASE = ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
              "concavity", "concave_points", "symmetry", "fractal_dimension")
WDBC_FEATURES = tuple(f"{stat}_{name}" for stat in ("mean", "se", "worst") for name in _WDBC_BASE)
WDBC_CLASSES = ("malignant", "benign")

_DECLARATIONS = {
    "UCI-Iris": (
        "iris/iris.data",
        "6f608b71a7317216319b4d27b4d9bc84e6abd734eda7872b71a458569e2656c0",
        "Fisher's Iris data: 150 flowers, 4 measurements, 3 species",
        "R. A. Fisher (1936). The use of multiple measurements in taxonomic problems. "
        "Annals of Eugenics 7(2):179-188.",
    ),
    "UCI-Wine": (
        "wine/wine.data",
        "6be6b1203f3d51df0b553a70e57b8a723cd405683958204f96d23d7cd6aea659",
        "Chemical analysis of 178 Italian wines from 3 cultivars, 13 features",
        "M. Forina et al. (1991). PARVUS: an extendable package of programs for data exploration. "
        "Institute of Pharmaceutical and Food Analysis and Technologies, Genoa.",
    ),
    "UCI-Breast-Cancer-Wisconsin": (
        "breast-cancer-wisconsin/wdbc.data",
        "d606af411f3e5be8a317a5a8b652b425aaf0ff38ca683d5327ffff94c3695f4a",
        "Breast Cancer Wisconsin (Diagnostic): 569 tumours, 30 features, malignant/benign",
        "W. N. Street, W. H. Wolberg and O. L. Mangasarian (1993). Nuclear feature extraction for "
        "breast tumor diagnosis. Proc. SPIE 1905:861-870.",
    ),
}

for _name, (_path, _sha, _desc, _cite) in _DECLARATIONS.items():
    register(
        DataDep(
            _name,
            urls=[_UCI + _path],
            sha256=_sha,
            message=(
                f"{_desc}.\nFrom the UCI Machine Learning Repository. Licence: CC BY 4.0.\n"
                f"Citation: {_cite}\nRepository: {_UCI_CITATION}"
            ),
            description=_desc,
            licence="CC BY 4.0",
            citation=_cite,
        )
    )


def _file(name: str) -> Path:
    return Path(datadep(name)) / Path(_DECLARATIONS[name][0]).name


def _split_xy(frame, features, target_codes, as_frame: bool):
    if as_frame:
        out = frame[list(features)].copy()
        out["target"] = target_codes
        return out
    return frame[list(features)].to_numpy(dtype=np.float64), np.asarray(target_codes, dtype=np.int64)


def _codes(values, classes: tuple[str, ...], path: Path) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise DatasetFormatError(f"{path}: unexpected class label(s) {unknown}; expected {list(classes)}")
    return np.array([lookup[v] for v in values], dtype=np.int64)


def iris(*, as_frame: bool = False):
    """Fisher's Iris data (the UCI file, which differs from Fisher's paper in samples 35 and 38).

    **Returns:** `X` float64 `(150, 4)` (`IRIS_FEATURES`, cm) and `y` int64 `(150,)` in 0..2
    (`IRIS_CLASSES`), or a DataFrame with a `target` column if `as_frame`.

    **Example:**

    ```python
    from scimlkit.datasets import iris
    X, y = iris()
    ```
    """
    path = _file("UCI-Iris")
    frame = read_table(path, [*IRIS_FEATURES, "species"], numeric=IRIS_FEATURES, expected_rows=150)
    return _split_xy(frame, IRIS_FEATURES, _codes(frame["species"], IRIS_CLASSES, path), as_frame)


def wine(*, as_frame: bool = False):
    """The UCI Wine recognition data.

    **Returns:** `X` float64 `(178, 13)` (`WINE_FEATURES`) and `y` int64 `(178,)` in 0..2
    (cultivars 1..3 of the file, shifted to start at 0), or a DataFrame if `as_frame`.

    **Example:**

    ```python
    from scimlkit.datasets import wine
    X, y = wine()
    ```
    """
    path = _file("UCI-Wine")
    frame = read_table(path, ["cultivar", *WINE_FEATURES], numeric=["cultivar", *WINE_FEATURES], expected_rows=178)
    cultivar = frame["cultivar"].to_numpy()
    if not np.isin(cultivar, (1, 2, 3)).all():
        raise DatasetFormatError(f"{path}: cultivar column must hold 1, 2 or 3")
    return _split_xy(frame, WINE_FEATURES, cultivar.astype(np.int64) - 1, as_frame)


def breast_cancer(*, as_frame: bool = False):
    """Breast Cancer Wisconsin (Diagnostic).

    **Returns:** `X` float64 `(569, 30)` (`WDBC_FEATURES`) and `y` int64 `(569,)` with
    0 = malignant, 1 = benign (`WDBC_CLASSES`), or a DataFrame (with an `id` column) if `as_frame`.

    **Example:**

    ```python
    from scimlkit.datasets import breast_cancer
    X, y = breast_cancer()
    ```
    """
    path = _file("UCI-Breast-Cancer-Wisconsin")
    frame = read_table(path, ["id", "diagnosis", *WDBC_FEATURES], numeric=["id", *WDBC_FEATURES], expected_rows=569)
    codes = _codes(frame["diagnosis"].map({"M": "malignant", "B": "benign"}).fillna(frame["diagnosis"]), WDBC_CLASSES, path)
    result = _split_xy(frame, WDBC_FEATURES, codes, as_frame)
    if as_frame:
        result.insert(0, "id", frame["id"].astype(np.int64))
    return result
