"""Fixtures of the scimlkit.data tests: a real local HTTP server, fast retries, clean mirrors."""

from __future__ import annotations

import pytest

from scimlkit.data import clear_mirrors
from tests.helpers.http_server import FileServer


@pytest.fixture(autouse=True)
def _fast_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIMLKIT_BACKOFF", "0.01")
    monkeypatch.setenv("SCIMLKIT_RETRIES", "4")
    monkeypatch.setenv("SCIMLKIT_TIMEOUT", "5")
    for var in ("SCIMLKIT_URL_REWRITE", "SCIMLKIT_MIRROR_ONLY", "SCIMLKIT_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    clear_mirrors()
    yield
    clear_mirrors()


@pytest.fixture
def server():
    """A started `FileServer` on 127.0.0.1 (stopped after the test)."""
    with FileServer() as s:
        yield s


@pytest.fixture
def server2():
    """A second, independent server (a mirror)."""
    with FileServer() as s:
        yield s
