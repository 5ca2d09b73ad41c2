"""Shared pytest configuration.

Tests never touch the user's real cache: SCIMLKIT_DATA points at a per-session temp dir,
terms are not auto-accepted unless a test says so, and progress bars are off.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["SCIMLKIT_PROGRESS"] = "0"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("SCIMLKIT_DATA", str(store))
    monkeypatch.delenv("SCIMLKIT_DATA_PATH", raising=False)
    monkeypatch.delenv("SCIMLKIT_ACCEPT_TERMS", raising=False)
    monkeypatch.delenv("SCIMLKIT_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared/` next to the repo (PEtab problems etc.); skips where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (a fresh clone outside the workspace)")
    return SHARED
