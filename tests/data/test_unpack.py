"""Unpacking: every supported kind round-trips, every hostile archive is refused."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from scimlkit.data import UnpackError, UnsafeArchive
from scimlkit.data import unpack_archive as unpack
from scimlkit.data.unpack import archive_kind

FILES = {"table.csv": b"a,b\n1,2\n" * 500, "sub/notes.txt": os.urandom(5000)}


def _expected_hashes() -> dict[str, str]:
    return {k: "sha256:" + hashlib.sha256(v).hexdigest() for k, v in FILES.items()}


def _tar(path: Path, mode: str, members=FILES, fileobj=None) -> Path:
    with tarfile.open(path, mode, fileobj=fileobj) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _assert_tree(dest: Path) -> None:
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data


@pytest.mark.parametrize("suffix,mode", [
    ("tar", "w"), ("tar.gz", "w:gz"), ("tgz", "w:gz"), ("tar.bz2", "w:bz2"), ("tar.xz", "w:xz"),
])
def test_tar_kinds(tmp_path, suffix, mode):
    archive = _tar(tmp_path / f"a.{suffix}", mode)
    hashes = unpack(archive, tmp_path / "out")
    _assert_tree(tmp_path / "out")
    assert hashes == _expected_hashes()


def test_tar_zst(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    raw = io.BytesIO()
    _tar(tmp_path / "x", "w", fileobj=raw)
    (tmp_path / "a.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    unpack(tmp_path / "a.tar.zst", tmp_path / "out")
    _assert_tree(tmp_path / "out")


def test_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in FILES.items():
            zf.writestr(name, data)
    assert unpack(tmp_path / "a.zip", tmp_path / "out") == _expected_hashes()
    _assert_tree(tmp_path / "out")


def test_7z(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    src = tmp_path / "src"
    for name, data in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    with py7zr.SevenZipFile(tmp_path / "a.7z", "w") as zf:
        for name in FILES:
            zf.write(src / name, arcname=name)
    assert unpack(tmp_path / "a.7z", tmp_path / "out") == _expected_hashes()
    _assert_tree(tmp_path / "out")


@pytest.mark.parametrize("suffix,compress", [
    ("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress),
])
def test_single_file_compressors(tmp_path, suffix, compress):
    data = FILES["table.csv"]
    (tmp_path / f"table.csv.{suffix}").write_bytes(compress(data))
    assert unpack(tmp_path / f"table.csv.{suffix}", tmp_path / "out") == {
        "table.csv": "sha256:" + hashlib.sha256(data).hexdigest()
    }
    assert (tmp_path / "out" / "table.csv").read_bytes() == data


def test_zst_single_file(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    data = FILES["table.csv"]
    (tmp_path / "t.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    unpack(tmp_path / "t.csv.zst", tmp_path / "out")
    assert (tmp_path / "out" / "t.csv").read_bytes() == data


def test_kinds_by_name():
    assert archive_kind("x.TGZ") == "tar.gz" and archive_kind("x.tar.zst") == "tar.zst"
    assert archive_kind("x.csv") is None


def test_internal_links_are_kept(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("data/real.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("data/alias.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "real.txt"
        tf.addfile(link)
        hard = tarfile.TarInfo("data/copy.txt")
        hard.type, hard.linkname = tarfile.LNKTYPE, "data/real.txt"
        tf.addfile(hard)
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out/data/alias.txt").read_text() == "abc"
    assert os.readlink(tmp_path / "out/data/alias.txt") == "real.txt"
    assert (tmp_path / "out/data/copy.txt").read_text() == "abc"


# ---- hostile archives ------------------------------------------------------------------------


def _hostile_tar(path: Path, *entries: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tf:
        for info in entries:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def _reg(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


HOSTILE_TARS = {
    "absolute path": [_reg("/tmp/evil.txt")],
    "dot-dot": [_reg("ok/../../evil.txt")],
    "symlink out (absolute)": [_link("l", "/etc/passwd", tarfile.SYMTYPE)],
    "symlink out (relative)": [_link("a/l", "../../outside", tarfile.SYMTYPE)],
    "hardlink out": [_link("h", "/etc/passwd", tarfile.LNKTYPE)],
    "hardlink to a non-member": [_link("h", "not-in-archive", tarfile.LNKTYPE)],
    "write through an internal link": [_link("d", ".", tarfile.SYMTYPE), _link("d2", "..", tarfile.SYMTYPE)],
    "character device": [_special("dev", tarfile.CHRTYPE)],
    "block device": [_special("blk", tarfile.BLKTYPE)],
    "fifo": [_special("fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(tmp_path, case):
    archive = _hostile_tar(tmp_path / "evil.tar", *HOSTILE_TARS[case])
    dest = tmp_path / "sandbox" / "out"
    with pytest.raises(UnsafeArchive) as err:
        unpack(archive, dest)
    assert "evil.tar" in str(err.value)
    # nothing escaped: the only things outside `dest` are the archive and the sandbox folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar", "sandbox"]
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["out"]


def test_symlink_then_file_through_it_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _hostile_tar(
        tmp_path / "evil.tar", _link("escape", "inner/../..", tarfile.SYMTYPE), _reg("escape/outside/pwned.txt"),
    )
    with pytest.raises(UnsafeArchive):
        unpack(archive, tmp_path / "out")
    assert list(outside.iterdir()) == []


def test_zip_slip_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(UnsafeArchive, match=r"'\.\.'"):
        unpack(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_out_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="absolute"):
        unpack(tmp_path / "evil.zip", tmp_path / "out")


def test_7z_path_traversal_is_refused(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    (tmp_path / "x.txt").write_text("x")
    with py7zr.SevenZipFile(tmp_path / "evil.7z", "w") as zf:
        zf.write(tmp_path / "x.txt", arcname="../evil.txt")
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path / "evil.7z", tmp_path / "sandbox" / "out")
    assert not (tmp_path / "sandbox" / "evil.txt").exists()


def test_gzip_bomb_is_stopped_at_the_limit(tmp_path):
    (tmp_path / "bomb.bin.gz").write_bytes(gzip.compress(b"\0" * (50 << 20)))  # 50 MiB -> ~50 kB
    with pytest.raises(UnsafeArchive, match="limit of 10,485,760 bytes"):
        unpack(tmp_path / "bomb.bin.gz", tmp_path / "out", max_size=10 << 20)


def test_zip_bomb_with_lying_header_is_stopped(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"f{i}", b"\0" * (8 << 20))
    monkeypatch.setenv("SCIMLKIT_MAX_UNPACK_SIZE", str(20 << 20))
    with pytest.raises(UnsafeArchive, match="SCIMLKIT_MAX_UNPACK_SIZE"):
        unpack(tmp_path / "bomb.zip", tmp_path / "out")


def test_corrupt_archive_is_a_clean_error(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(UnpackError, match="corrupt"):
        unpack(tmp_path / "bad.tar.gz", tmp_path / "out")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(UnpackError):
        unpack(tmp_path / "bad.zip", tmp_path / "out")


def test_unknown_kind(tmp_path):
    (tmp_path / "x.rar").write_bytes(b"Rar!")
    with pytest.raises(UnpackError, match="not a known archive kind"):
        unpack(tmp_path / "x.rar", tmp_path / "out")


def test_multi_member_gzip_and_trailing_padding(tmp_path):
    data = FILES["table.csv"]
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]) + b"\0" * 512)
    unpack(tmp_path / "t.csv.gz", tmp_path / "out")
    assert (tmp_path / "out" / "t.csv").read_bytes() == data


def test_truncated_and_corrupted_gzip_are_refused(tmp_path):
    blob = bytearray(gzip.compress(os.urandom(100_000)))
    (tmp_path / "cut.bin.gz").write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(UnpackError, match="truncated"):
        unpack(tmp_path / "cut.bin.gz", tmp_path / "out")
    blob[-6] ^= 0xFF  # the CRC-32 in the trailer
    (tmp_path / "crc.bin.gz").write_bytes(bytes(blob))
    with pytest.raises(UnpackError, match=r"crc\.bin\.gz"):
        unpack(tmp_path / "crc.bin.gz", tmp_path / "out")


# ---- hostile zip and 7z archives: the same kinds as for tar ----------------------------------
# (zip and 7z have no hard links: py7zr and zipfile cannot express one, so there is nothing to refuse)


def _zip_entry(name: str, data: bytes, mode: int | None = None) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.create_system = 3  # unix: the high 16 bits of external_attr are st_mode
        info.external_attr = mode << 16
    return info, data


HOSTILE_ZIPS = {
    "absolute path": [_zip_entry("/tmp/evil.txt", b"x")],
    "dot-dot": [_zip_entry("ok/../../evil.txt", b"x")],
    "windows drive path": [_zip_entry("C:/evil.txt", b"x")],
    "symlink out (absolute)": [_zip_entry("l", b"/etc/passwd", stat.S_IFLNK | 0o777)],
    "symlink out (relative)": [_zip_entry("a/l", b"../../outside", stat.S_IFLNK | 0o777)],
    "symlink then write through it": [
        _zip_entry("d", b"..", stat.S_IFLNK | 0o777), _zip_entry("d/evil.txt", b"x"),
    ],
    "character device": [_zip_entry("dev", b"", stat.S_IFCHR | 0o644)],
    "block device": [_zip_entry("blk", b"", stat.S_IFBLK | 0o644)],
    "fifo": [_zip_entry("fifo", b"", stat.S_IFIFO | 0o644)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused(tmp_path, case):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        for info, data in HOSTILE_ZIPS[case]:
            zf.writestr(info, data)
    with pytest.raises(UnsafeArchive) as err:
        unpack(tmp_path / "evil.zip", tmp_path / "sandbox" / "out")
    assert "evil.zip" in str(err.value) and "nothing from it was installed" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "sandbox"]
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["out"]
    assert not os.path.lexists("/tmp/evil.txt") or case != "absolute path"


def _patched_7z(path: Path, arcname: str, *, name: str | None = None, mode: int | None = None) -> Path:
    """A real 7z archive (py7zr, plain header) whose header is then edited by hand: py7zr will not
    write an absolute name or a device entry, but an attacker's tool will. CRCs are recomputed."""
    import zlib

    py7zr = pytest.importorskip("py7zr")
    src = path.parent / "payload.txt"
    src.write_bytes(b"x")
    with py7zr.SevenZipFile(path, "w") as zf:
        zf.set_encoded_header_mode(False)
        zf.write(src, arcname=arcname)
    src.unlink()
    blob = bytearray(path.read_bytes())
    offset, size = int.from_bytes(blob[12:20], "little"), int.from_bytes(blob[20:28], "little")
    start = 32 + offset
    header = bytearray(blob[start:start + size])
    if name is not None:
        old, new = arcname.encode("utf-16-le"), name.encode("utf-16-le")
        assert len(old) == len(new) and header.count(old) == 1
        header = header.replace(old, new)
    if mode is not None:
        with py7zr.SevenZipFile(path) as zf:
            attributes = zf.files[0]._get_property("attributes")
        old = attributes.to_bytes(4, "little")
        assert header.count(old) == 1
        header = header.replace(old, ((mode << 16) | (attributes & 0xFFFF)).to_bytes(4, "little"))
    blob[start:start + size] = header
    blob[28:32] = zlib.crc32(header).to_bytes(4, "little")
    blob[8:12] = zlib.crc32(bytes(blob[12:32])).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    return path


def _symlink_7z(path: Path, target: str) -> Path:
    """py7zr only archives links whose target exists: `target` may name a file of the test folder."""
    py7zr = pytest.importorskip("py7zr")
    link = path.parent / "lnk"
    os.symlink(target, link)
    made = None
    if not link.exists():
        made = link.resolve()
        made.write_text("target")
    with py7zr.SevenZipFile(path, "w") as zf:
        zf.write(link, arcname="lnk")
    link.unlink()
    if made is not None:
        made.unlink()
    return path


HOSTILE_7Z = {
    "absolute path": lambda p: _patched_7z(p, "Xtmp/evil.txt", name="/tmp/evil.txt"),
    "dot-dot": lambda p: _patched_7z(p, "XX/evil.txt", name="../evil.txt"),
    "symlink out (absolute)": lambda p: _symlink_7z(p, "/etc/passwd"),
    "symlink out (relative)": lambda p: _symlink_7z(p, f"../{p.parent.name}/outside.txt"),
    "character device": lambda p: _patched_7z(p, "dev", mode=stat.S_IFCHR | 0o644),
    "block device": lambda p: _patched_7z(p, "blk", mode=stat.S_IFBLK | 0o644),
    "fifo": lambda p: _patched_7z(p, "fifo", mode=stat.S_IFIFO | 0o644),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_7Z))
def test_hostile_7z_is_refused(tmp_path, case):
    archive = HOSTILE_7Z[case](tmp_path / "evil.7z")
    with pytest.raises(UnsafeArchive) as err:
        unpack(archive, tmp_path / "sandbox" / "out")
    assert "evil.7z" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.7z", "sandbox"]
    assert list((tmp_path / "sandbox" / "out").iterdir()) == []


def test_7z_bomb_is_stopped(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    (tmp_path / "zeros.bin").write_bytes(b"\0" * (30 << 20))
    with py7zr.SevenZipFile(tmp_path / "bomb.7z", "w") as zf:
        zf.write(tmp_path / "zeros.bin", arcname="zeros.bin")
    (tmp_path / "zeros.bin").unlink()
    assert (tmp_path / "bomb.7z").stat().st_size < 1 << 20
    with pytest.raises(UnsafeArchive, match="limit of 10,485,760 bytes"):
        unpack(tmp_path / "bomb.7z", tmp_path / "out", max_size=10 << 20)
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_tar_gz_bomb_is_stopped_as_written(tmp_path):
    """The limit counts bytes written, not the sizes headers claim: a tar.gz of zeros."""
    _tar(tmp_path / "bomb.tar.gz", "w:gz", members={f"z{i}": b"\0" * (8 << 20) for i in range(4)})
    with pytest.raises(UnsafeArchive, match="archive bomb"):
        unpack(tmp_path / "bomb.tar.gz", tmp_path / "out", max_size=20 << 20)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 20 << 20
