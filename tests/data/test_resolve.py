"""Resolution and installation: datadep/fetch, load path, stamps, terms, offline, purge."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import scimlkit.data.store as store_mod
from scimlkit.data import (
    ChecksumMismatch,
    DataDep,
    DataError,
    NotInStore,
    TermsNotAccepted,
    UnsafeArchive,
    datadep,
    fetch,
    purge,
    register,
    unregister,
    verify,
)

CSV = b"sepal,petal\n5.1,1.4\n4.9,1.4\n"


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def iris(server):
    archive = _targz({"iris/iris.csv": CSV, "iris/README": b"Fisher 1936"})
    url = server.add("/iris.tar.gz", archive)
    dep = register(DataDep(
        "Iris-Test", url, sha256=hashlib.sha256(archive).hexdigest(),
        message="Fisher (1936). Licence: CC BY 4.0.", unpack=True,
    ), replace=True)
    yield dep
    unregister("Iris-Test")


def test_datadep_fetches_unpacks_and_returns_paths(iris, server, monkeypatch):
    monkeypatch.setenv("SCIMLKIT_ACCEPT_TERMS", "1")
    csv = datadep("Iris-Test/iris/iris.csv")
    assert csv.read_bytes() == CSV
    folder = datadep("Iris-Test")
    assert csv == folder / "iris" / "iris.csv"
    assert folder.parent == Path(os.environ["SCIMLKIT_DATA"])
    assert not (folder / "iris.tar.gz").exists()  # archives are not kept by default
    assert len(server.gets("/iris.tar.gz")) == 1
    datadep("Iris-Test/iris/README")
    assert len(server.gets("/iris.tar.gz")) == 1  # cached
    with pytest.raises(NotInStore, match=r"iris/iris\.csv"):
        datadep("Iris-Test/nope.csv")


def test_installed_files_follow_the_umask(iris, monkeypatch):
    monkeypatch.setenv("SCIMLKIT_ACCEPT_TERMS", "1")
    old = os.umask(0o022)
    try:
        folder = fetch("Iris-Test")
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "iris" / "iris.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                     (0o002, 0o664, 0o775)])
def test_downloaded_and_unpacked_files_follow_any_umask(server, umask, file_mode, dir_mode):
    """Plain downloads, unpacked members and folders get exactly what the umask allows (never a
    fixed 0600 from a temporary file)."""
    server.add("/plain.csv", CSV)
    server.add("/tree.tar.gz", _targz({"sub/member.csv": CSV}))
    old = os.umask(umask)
    try:
        folder = fetch(DataDep("Modes", {"plain.csv": server.url("/plain.csv"),
                                         "tree.tar.gz": server.url("/tree.tar.gz")}, unpack=["tree.tar.gz"]))
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "plain.csv").stat().st_mode) == file_mode
    assert stat.S_IMODE((folder / "sub" / "member.csv").stat().st_mode) == file_mode
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    assert stat.S_IMODE((folder / "sub").stat().st_mode) == dir_mode


def test_terms_without_terminal_raise_a_clear_error(iris, server):
    proc = subprocess.run(
        [sys.executable, "-c", "import scimlkit.data as d, sys; d.register(d.DataDep('T', sys.argv[1], "
         "message='Please cite X.')); d.datadep('T')", server.url("/iris.tar.gz")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "TermsNotAccepted" in proc.stderr and "SCIMLKIT_ACCEPT_TERMS=1" in proc.stderr
    assert "Please cite X." in proc.stderr
    assert server.requests == []  # nothing was downloaded
    with pytest.raises(TermsNotAccepted, match="SCIMLKIT_ACCEPT_TERMS"):
        fetch("Iris-Test")


def test_terms_are_remembered_once_accepted(iris, server, monkeypatch, capsys):
    fetch("Iris-Test", accept_terms=True)
    assert "Fisher (1936)" in capsys.readouterr().err
    purge("Iris-Test")
    fetch("Iris-Test")  # accepted before: no variable, no prompt needed
    assert len(server.gets("/iris.tar.gz")) == 2


def test_changed_terms_must_be_accepted_again(iris, monkeypatch):
    fetch("Iris-Test", accept_terms=True)
    purge("Iris-Test")
    changed = DataDep("Iris-Test", iris.files[0].urls[0], hashes=iris.files[0].hash,
                      message="New licence: CC BY-NC.", unpack=True)
    with pytest.raises(TermsNotAccepted, match="CC BY-NC"):
        fetch(changed)


def test_offline_resolves_from_stores_only(iris, server, monkeypatch):
    monkeypatch.setenv("SCIMLKIT_OFFLINE", "1")
    with pytest.raises(NotInStore, match="SCIMLKIT_OFFLINE"):
        datadep("Iris-Test/iris/iris.csv")
    assert server.requests == []
    monkeypatch.delenv("SCIMLKIT_OFFLINE")
    fetch("Iris-Test", accept_terms=True)
    monkeypatch.setenv("SCIMLKIT_OFFLINE", "1")
    assert datadep("Iris-Test/iris/iris.csv").read_bytes() == CSV


def test_read_only_load_path_is_searched_first(iris, server, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setenv("SCIMLKIT_DATA", str(shared))
    fetch("Iris-Test", accept_terms=True)  # an admin fills the shared store
    private = tmp_path / "private"
    monkeypatch.setenv("SCIMLKIT_DATA", str(private))
    monkeypatch.setenv("SCIMLKIT_DATA_PATH", os.pathsep.join([str(tmp_path / "absent"), str(shared)]))
    os.chmod(shared / "Iris-Test", 0o555)
    try:
        assert datadep("Iris-Test/iris/iris.csv") == shared / "Iris-Test" / "iris" / "iris.csv"
        assert verify("Iris-Test").ok
    finally:
        os.chmod(shared / "Iris-Test", 0o755)
    assert len(server.gets("/iris.tar.gz")) == 1
    assert not (private / "Iris-Test").exists()


def test_cache_hit_does_not_rehash(iris, monkeypatch):
    fetch("Iris-Test", accept_terms=True)

    def boom(*args, **kwargs):
        raise AssertionError("a cache hit must not hash files")

    monkeypatch.setattr(store_mod, "file_hash", boom)
    assert datadep("Iris-Test/iris/iris.csv").read_bytes() == CSV


def test_modified_file_is_caught_on_cache_hit_and_by_verify(iris):
    folder = fetch("Iris-Test", accept_terms=True)
    csv = folder / "iris" / "iris.csv"
    csv.write_bytes(CSV.replace(b"5.1", b"9.9"))
    report = verify("Iris-Test")
    assert not report.ok and report.problems[0].startswith("iris/iris.csv")
    with pytest.raises(ChecksumMismatch, match="fetch --force Iris-Test"):
        datadep("Iris-Test")
    fetch("Iris-Test", force=True)
    assert csv.read_bytes() == CSV and verify("Iris-Test").ok


def test_touched_but_unchanged_file_passes(iris):
    folder = fetch("Iris-Test", accept_terms=True)
    os.utime(folder / "iris" / "iris.csv", (1, 1))
    assert datadep("Iris-Test/iris/iris.csv").read_bytes() == CSV


def test_purge_removes_everything_of_the_dataset(iris):
    folder = fetch("Iris-Test", accept_terms=True)
    assert purge("Iris-Test") is True
    assert not folder.exists()
    assert not store_mod.stamp_path(folder.parent, "Iris-Test").exists()
    assert purge("Iris-Test") is False


def test_post_fetch_runs_before_install_and_its_failure_installs_nothing(server):
    server.add("/raw.csv", CSV)

    def add_index(folder: Path) -> None:
        (folder / "index.txt").write_text(str(len((folder / "raw.csv").read_bytes())))

    folder = fetch(DataDep("Hooked", server.url("/raw.csv"), post_fetch=add_index))
    assert (folder / "index.txt").read_text() == str(len(CSV))
    assert verify("Hooked").checked == 2

    def fail(folder: Path) -> None:
        raise RuntimeError("converter crashed")

    with pytest.raises(DataError, match="converter crashed"):
        fetch(DataDep("Hooked2", server.url("/raw.csv"), post_fetch=fail))
    root = Path(os.environ["SCIMLKIT_DATA"])
    assert not (root / "Hooked2").exists()
    assert list((root / ".scimlkit" / "staging").iterdir()) == []


def test_unsafe_archive_installs_nothing(server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    server.add("/evil.tar", buf.getvalue())
    with pytest.raises(UnsafeArchive):
        fetch(DataDep("Evil", server.url("/evil.tar"), unpack=True))
    root = Path(os.environ["SCIMLKIT_DATA"])
    assert not (root / "Evil").exists() and not (root.parent / "escape.txt").exists()
    assert list((root / ".scimlkit" / "staging").iterdir()) == []


def test_missing_hash_prints_the_line_to_pin(server, capsys):
    server.add("/t.csv", CSV)
    fetch(DataDep("Unpinned", server.url("/t.csv")))
    err = capsys.readouterr().err
    assert f'sha256="{hashlib.sha256(CSV).hexdigest()}",' in err


def test_keep_archives_and_unpack_selected_files(server):
    archive = _targz({"a.txt": b"A"})
    server.add("/a.tar.gz", archive)
    server.add("/b.tar.gz", archive)
    folder = fetch(DataDep(
        "Selective", {"a.tar.gz": server.url("/a.tar.gz"), "b.tar.gz": server.url("/b.tar.gz")},
        unpack=["a.tar.gz"], keep_archives=True,
    ))
    assert sorted(p.name for p in folder.iterdir()) == ["a.tar.gz", "a.txt", "b.tar.gz"]


def test_updated_declaration_replaces_an_outdated_copy(server):
    server.add("/v.csv", b"version 1\n")
    v1 = DataDep("Versioned", server.url("/v.csv"), sha256=hashlib.sha256(b"version 1\n").hexdigest())
    assert (fetch(v1) / "v.csv").read_bytes() == b"version 1\n"
    server.change("/v.csv", b"version 2\n")
    assert (fetch(v1) / "v.csv").read_bytes() == b"version 1\n"  # cached: no request
    assert len(server.gets("/v.csv")) == 1
    v2 = DataDep("Versioned", server.url("/v.csv"), sha256=hashlib.sha256(b"version 2\n").hexdigest())
    assert (fetch(v2) / "v.csv").read_bytes() == b"version 2\n"
    assert len(server.gets("/v.csv")) == 2


def test_terminal_prompt_accepts_terms(server, tmp_path):
    """On a real terminal (a pty) the user is asked and a 'y' answer is remembered."""
    import pty
    import select

    server.add("/t.csv", CSV)
    code = ("import scimlkit.data as d, sys; "
            "print(d.fetch(d.DataDep('Prompted', sys.argv[1], message='Please cite Y.')))")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code, server.url("/t.csv")],
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while b"[y/N]" not in seen:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, f"no prompt; got {seen!r}"
        seen += os.read(master, 4096)
    assert b"Please cite Y." in seen
    os.write(master, b"y\n")
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert (Path(out.decode().strip()) / "t.csv").read_bytes() == CSV
    # remembered: a second, non-interactive run needs no variable
    again = subprocess.run([sys.executable, "-c", code, server.url("/t.csv")], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert again.returncode == 0, again.stderr


def test_fetch_hashes_in_one_pass_and_never_rereads(iris, server, monkeypatch):
    """The stamp is built from the hashes computed while downloading and unpacking: nothing
    installed is read back to hash it again."""
    import scimlkit.data.checksum as checksum_mod

    def boom(*args, **kwargs):
        raise AssertionError("a fetch must not re-read files to hash them")

    monkeypatch.setattr(store_mod, "file_hash", boom)
    monkeypatch.setattr(checksum_mod, "file_hash", boom)
    server.add("/plain.csv", CSV)
    fetch("Iris-Test", accept_terms=True)
    fetch(DataDep("Plain", server.url("/plain.csv"), sha256=hashlib.sha256(CSV).hexdigest()))
