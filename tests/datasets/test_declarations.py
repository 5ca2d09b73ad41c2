"""Keep the real upstream declarations honest: https, hashes, licence and citation for each."""

from __future__ import annotations

import pytest

import scimlkit.datasets  # noqa: F401  (registers the catalogue)
from scimlkit.data import catalogue
from scimlkit.datasets.timeseries import UNPINNED

OURS = [
    "MNIST", "Fashion-MNIST", "KMNIST", "EMNIST", "CIFAR-10", "CIFAR-100", "UCI-Iris", "UCI-Wine",
    "UCI-Breast-Cancer-Wisconsin", "Rdatasets-index", "Lynx-Hare", "Canadian-Lynx", "Sunspots",
    "Mauna-Loa-CO2",
]


@pytest.mark.parametrize("name", OURS)
def test_declaration_is_complete(name):
    dep = catalogue()[name]
    for remote in dep.files:
        assert remote.urls, f"{name}/{remote.filename} has no URL"
        for url in remote.urls:
            assert url.startswith("https://"), f"{name}: {url} is not https"
        if name not in UNPINNED:
            assert remote.hash, f"{name}/{remote.filename} has no hash"
            alg, digest = remote.hash.split(":")
            assert alg in ("md5", "sha256") and len(digest) == {"md5": 32, "sha256": 64}[alg]
    assert dep.licence, f"{name} has no licence"
    assert dep.citation and len(dep.citation) > 20, f"{name} has no citation"
    assert dep.message and dep.citation.split(" ")[0] in dep.message


def test_unpinned_are_really_unpinned_and_explained():
    for name, reason in UNPINNED.items():
        assert not catalogue()[name].pinned
        assert "first fetch" in reason


def test_catalogue_page_is_current():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gen_dataset_catalogue.py"
    spec = importlib.util.spec_from_file_location("gen_dataset_catalogue", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PAGE.read_text() == module.render(), "run `python scripts/gen_dataset_catalogue.py`"
