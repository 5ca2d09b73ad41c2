"""Errors are typed (one hierarchy under ScimlkitError) and each message says what to do next."""

from __future__ import annotations

import inspect
import io
import tarfile

import pytest

import scimlkit.data.errors as data_errors
import scimlkit.datasets.errors as dataset_errors
from scimlkit.data import (
    ChecksumMismatch,
    DataDep,
    DataError,
    DownloadError,
    NotInStore,
    StoreError,
    TermsNotAccepted,
    UnknownDataset,
    UnsafeArchive,
    fetch,
    get,
)
from scimlkit.datasets import DatasetFormatError, parse_idx
from scimlkit.errors import ScimlkitError


def test_every_error_class_is_in_the_hierarchy():
    classes = [c for m in (data_errors, dataset_errors) for _, c in inspect.getmembers(m, inspect.isclass)
               if issubclass(c, BaseException) and c.__module__ == m.__name__]
    assert len(classes) >= 11
    for cls in classes:
        assert issubclass(cls, DataError) and issubclass(cls, ScimlkitError), cls


def _evil_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../x")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_messages_say_what_to_do(server, tmp_path, monkeypatch):
    server.add("/f.csv", b"a,b\n")
    server.add("/evil.tar", _evil_tar())
    cases = [
        (UnknownDataset, lambda: get("Nope-Nothing"), "`scimlkit data list`"),
        (TermsNotAccepted, lambda: fetch(DataDep("T", server.url("/f.csv"), message="cite me")),
         "SCIMLKIT_ACCEPT_TERMS=1"),
        (DownloadError, lambda: fetch(DataDep("Gone", server.url("/missing.csv"))), "SCIMLKIT_URL_REWRITE"),
        (ChecksumMismatch, lambda: fetch(DataDep("Bad", server.url("/f.csv"), sha256="0" * 64)),
         "update the declared hash"),
        (UnsafeArchive, lambda: fetch(DataDep("Evil", server.url("/evil.tar"), unpack=True)),
         "do not unpack it by hand"),
        (DatasetFormatError, lambda: parse_idx(b"\0\0\x08\x01\0\0\0\x05abc"), "fetch again"),
    ]
    for cls, call, advice in cases:
        with pytest.raises(cls) as err:
            call()
        assert advice in str(err.value), (cls.__name__, str(err.value))

    monkeypatch.setenv("SCIMLKIT_OFFLINE", "1")
    with pytest.raises(NotInStore, match="Unset SCIMLKIT_OFFLINE"):
        fetch(DataDep("Offline", server.url("/f.csv")))
    monkeypatch.delenv("SCIMLKIT_OFFLINE")

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SCIMLKIT_DATA", str(blocker / "store"))
    with pytest.raises(StoreError, match="Point SCIMLKIT_DATA at a writable folder"):
        fetch(DataDep("Nowhere", server.url("/f.csv")))
