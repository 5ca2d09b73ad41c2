"""Serve small files in the real upstream formats from a local server and point the real
declarations at it through the documented URL override (``SCIMLKIT_URL_REWRITE``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from scimlkit.data import DataDep, clear_mirrors, get, register
from tests.helpers.http_server import FileServer


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, dict[str, bytes]], FileServer]:
    """`upstream(name, {filename: bytes})` serves those bytes at the declared URLs' paths.

    The declaration keeps its URLs; its hashes are swapped for the served files' (the real
    upstream files are too large to ship), and restored afterwards.
    """
    monkeypatch.setenv("SCIMLKIT_ACCEPT_TERMS", "1")
    monkeypatch.setenv("SCIMLKIT_BACKOFF", "0.01")
    monkeypatch.setenv("SCIMLKIT_MIRROR_ONLY", "1")
    server = FileServer().start()
    originals: list[DataDep] = []
    rules: list[str] = []

    def serve(name: str, files: dict[str, bytes]) -> FileServer:
        dep = get(name)
        originals.append(dep)
        hashes = {}
        for remote in dep.files:
            if remote.filename not in files:
                continue
            for url in remote.urls:
                parts = urlsplit(url)
                server.add(parts.path, files[remote.filename])
                prefix = f"{parts.scheme}://{parts.netloc}/"
                rule = f"{prefix}={server.base_url.rstrip('/')}/"
                if rule not in rules:
                    rules.append(rule)
            hashes[remote.filename] = "sha256:" + hashlib.sha256(files[remote.filename]).hexdigest()
        urls = {f.filename: list(f.urls) for f in dep.files}
        register(
            DataDep(name, urls=urls, hashes=hashes, message=dep.message, unpack=dep.unpack,
                    post_fetch=dep.post_fetch, headers=dep.headers, description=dep.description,
                    licence=dep.licence, citation=dep.citation, size=dep.size,
                    keep_archives=dep.keep_archives, max_unpack_size=dep.max_unpack_size),
            replace=True,
        )
        monkeypatch.setenv("SCIMLKIT_URL_REWRITE", ";".join(rules))
        return server

    yield serve
    for dep in originals:
        register(dep, replace=True)
    clear_mirrors()
    server.stop()
