"""UCI tables, Rdatasets and the time series, served from a local server in their published formats."""

from __future__ import annotations

import numpy as np
import pytest

from scimlkit.datasets import (
    DatasetFormatError,
    UnknownDatasetError,
    breast_cancer,
    canadian_lynx,
    iris,
    lynx_hare,
    mauna_loa_co2,
    rdataset,
    rdatasets_index,
    sunspots,
    wine,
)

IRIS_ROWS = [
    ("5.1", "3.5", "1.4", "0.2", "Iris-setosa"),
    ("7.0", "3.2", "4.7", "1.4", "Iris-versicolor"),
    ("6.3", "3.3", "6.0", "2.5", "Iris-virginica"),
]


def iris_file(n_rows: int = 150, drop_column: bool = False) -> bytes:
    lines = []
    for i in range(n_rows):
        row = list(IRIS_ROWS[i % 3])
        if drop_column and i == 7:
            row.pop(2)
        lines.append(",".join(row))
    return ("\n".join(lines) + "\n\n").encode()  # UCI's file ends with a blank line


def test_iris_arrays_and_frame(upstream):
    upstream("UCI-Iris", {"iris.data": iris_file()})
    X, y = iris()
    assert X.shape == (150, 4) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X[:3], [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]])
    np.testing.assert_array_equal(y[:6], [0, 1, 2, 0, 1, 2])
    frame = iris(as_frame=True)
    assert list(frame.columns) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    assert frame["target"].tolist()[:3] == [0, 1, 2]


def test_iris_with_missing_column_is_rejected(upstream):
    upstream("UCI-Iris", {"iris.data": iris_file(drop_column=True)})
    with pytest.raises(DatasetFormatError, match="line 8 has 4 fields, expected 5"):
        iris()


def test_iris_truncated_is_rejected(upstream):
    upstream("UCI-Iris", {"iris.data": iris_file(n_rows=149)})
    with pytest.raises(DatasetFormatError, match="expected 150 rows"):
        iris()


def test_wine_shifts_cultivars_to_zero(upstream):
    rows = [",".join([str(1 + i % 3)] + [f"{i}.{j}" for j in range(13)]) for i in range(178)]
    upstream("UCI-Wine", {"wine.data": ("\n".join(rows) + "\n").encode()})
    X, y = wine()
    assert X.shape == (178, 13)
    assert X[5, 12] == pytest.approx(5.12)
    np.testing.assert_array_equal(y[:4], [0, 1, 2, 0])


def test_breast_cancer_labels(upstream):
    rows = [",".join([str(842302 + i), "M" if i % 2 else "B"] + [str(i + j / 100) for j in range(30)]) for i in range(569)]
    upstream("UCI-Breast-Cancer-Wisconsin", {"wdbc.data": ("\n".join(rows) + "\n").encode()})
    X, y = breast_cancer()
    assert X.shape == (569, 30)
    np.testing.assert_array_equal(y[:4], [1, 0, 1, 0])  # 0 = malignant, 1 = benign
    frame = breast_cancer(as_frame=True)
    assert frame["id"].iloc[1] == 842303 and frame["worst_fractal_dimension"].iloc[0] == pytest.approx(0.29)


def test_breast_cancer_unknown_diagnosis(upstream):
    rows = [",".join(["1", "X"] + ["0"] * 30)] * 569
    upstream("UCI-Breast-Cancer-Wisconsin", {"wdbc.data": ("\n".join(rows) + "\n").encode()})
    with pytest.raises(DatasetFormatError, match="unexpected class"):
        breast_cancer()


LYNX_HARE = (
    "# Data from http://www.math.tamu.edu/~phoward/m442/modbasics.pdf\n"
    "# Downloaded 15 October 2017, 4:59 PM EDT\nYear, Lynx, Hare\n"
    + "\n".join(f"{1900 + i}, {4.0 + i}, {30.0 + 2 * i}" for i in range(21))
)


def test_lynx_hare_orders_prey_first(upstream):
    upstream("Lynx-Hare", {"hudson-bay-lynx-hare.csv": LYNX_HARE.encode()})
    t, y = lynx_hare()
    np.testing.assert_array_equal(t, np.arange(1900, 1921))
    np.testing.assert_array_equal(y[:, 0], 30.0 + 2 * np.arange(21))  # hare
    np.testing.assert_array_equal(y[:, 1], 4.0 + np.arange(21))  # lynx
    assert list(lynx_hare(as_frame=True).columns) == ["year", "hare", "lynx"]


def test_rdatasets_style_series(upstream):
    body = "rownames,time,value\n" + "".join(f"{i + 1},{1821 + i},{i * 10}\n" for i in range(114))
    upstream("Canadian-Lynx", {"lynx.csv": body.encode()})
    t, y = canadian_lynx()
    assert t[0] == 1821 and t[-1] == 1934 and y[-1] == 1130
    quoted = '"","time","value"\n' + "".join(f'"{i + 1}",{1959 + i / 12},{315 + i / 10}\n' for i in range(468))
    upstream("Mauna-Loa-CO2", {"co2.csv": quoted.encode()})
    t, y = mauna_loa_co2()
    assert len(t) == 468 and y[0] == pytest.approx(315.0) and t[12] == pytest.approx(1960.0)


INDEX = (
    '"Package","Item","Title","Rows","Cols","n_binary","n_character","n_factor","n_logical","n_numeric","CSV","Doc"\n'
    '"datasets","mtcars","Motor Trend Car Road Tests",3,3,0,0,0,0,3,"x","y"\n'
    '"datasets","women","Average Heights and Weights for American Women",2,2,0,0,0,0,2,"x","y"\n'
)
MTCARS = 'rownames,mpg,cyl,hp\nMazda RX4,21,6,110\nDatsun 710,22.8,4,93\nValiant,18.1,6,105\n'
WOMEN = "rownames,height,weight\n1,58,115\n2,59,117\n"


def test_rdataset_with_index_and_rownames(upstream):
    upstream("Rdatasets-index", {"datasets.csv": INDEX.encode()})
    index = rdatasets_index()
    assert index["Item"].tolist() == ["mtcars", "women"]
    from scimlkit.datasets.rdatasets import _declare

    upstream(_declare("datasets", "mtcars"), {"mtcars.csv": MTCARS.encode()})
    upstream(_declare("datasets", "women"), {"women.csv": WOMEN.encode()})
    mtcars = rdataset("datasets", "mtcars")
    assert list(mtcars.columns) == ["mpg", "cyl", "hp"]
    assert mtcars.loc["Datsun 710", "mpg"] == pytest.approx(22.8)
    women = rdataset("datasets", "women")
    assert women.index.tolist() == [0, 1] and women["weight"].tolist() == [115, 117]
    with pytest.raises(UnknownDatasetError, match="no data set datasets/mtcar"):
        rdataset("datasets", "mtcar")
    with pytest.raises(UnknownDatasetError, match="invalid"):
        rdataset("../etc", "passwd", check_index=False)


def test_sunspots_series(upstream):
    body = '"","time","value"\n' + "".join(f'"{i + 1}",{1700 + i},{(i * 7) % 190}.5\n' for i in range(289))
    upstream("Sunspots", {"sunspot.year.csv": body.encode()})
    t, y = sunspots()
    assert t.dtype == np.float64 and t.shape == (289,) and y.shape == (289,)
    assert t[0] == 1700 and t[-1] == 1988 and y[3] == 21.5
    frame = sunspots(as_frame=True)
    assert list(frame.columns) == ["time", "value"] and frame["value"].iloc[3] == 21.5


def test_series_with_missing_column_is_rejected(upstream):
    body = "rownames,time\n" + "".join(f"{i + 1},{1821 + i}\n" for i in range(114))
    upstream("Canadian-Lynx", {"lynx.csv": body.encode()})
    with pytest.raises(DatasetFormatError, match=r"fewer than the 3 expected columns|fields, expected 3"):
        canadian_lynx()


def test_wine_and_lynx_as_frame(upstream):
    rows = [",".join([str(1 + i % 3)] + [f"{i}.{j}" for j in range(13)]) for i in range(178)]
    upstream("UCI-Wine", {"wine.data": ("\n".join(rows) + "\n").encode()})
    frame = wine(as_frame=True)
    assert frame.shape == (178, 14) and frame.columns[-1] == "target"
    assert frame["proline"].iloc[2] == pytest.approx(2.12) and frame["target"].tolist()[:3] == [0, 1, 2]
    body = "rownames,time,value\n" + "".join(f"{i + 1},{1821 + i},{i * 10}\n" for i in range(114))
    upstream("Canadian-Lynx", {"lynx.csv": body.encode()})
    lynx = canadian_lynx(as_frame=True)
    assert lynx.shape == (114, 2) and lynx["value"].iloc[-1] == 1130


def test_rdatasets_index_without_required_columns_is_rejected(upstream):
    upstream("Rdatasets-index", {"datasets.csv": b'"Package","Item"\n"datasets","mtcars"\n'})
    with pytest.raises(DatasetFormatError, match=r"lacks column\(s\) \['Title', 'Rows', 'Cols'\]"):
        rdatasets_index()
