"""The data demo runs offline and installs the real Iris data (checked against scikit-learn's copy)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from scimlkit.data._demo import FILES, run


def test_shipped_hash_matches_the_archive():
    digest, name = (FILES / "iris.tar.gz.sha256").read_text().split()
    assert name == "iris.tar.gz"
    assert hashlib.sha256((FILES / "iris.tar.gz").read_bytes()).hexdigest() == digest


def test_demo_installs_iris(tmp_path, capsys):
    run(tmp_path)
    out = capsys.readouterr().out
    assert "cache hit" in out and "explicit verify: ok (2 files re-hashed)" in out
    table = tmp_path / "store" / "Iris-Demo" / "iris" / "iris.csv"
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 150
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_iris()
    got = [[float(r[k]) for k in ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")]
           for r in rows]
    assert got == ref.data.tolist()
    assert [r["species"] for r in rows] == [str(ref.target_names[t]) for t in ref.target]
    assert not any(Path(tmp_path / "store" / ".scimlkit" / "staging").iterdir())
