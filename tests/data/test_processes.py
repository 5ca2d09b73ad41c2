"""Several processes: SIGKILL mid-download then resume, concurrent fetches, no JAX import."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.http_server import Fault

PAYLOAD = os.urandom(4 << 20)
SHA = hashlib.sha256(PAYLOAD).hexdigest()

FETCH = """
import sys, scimlkit.data as d
dep = d.DataDep("Proc", sys.argv[1], sha256=sys.argv[2])
print(d.fetch(dep) / "f.bin")
"""


def _spawn(url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", FETCH, url, SHA], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _parts(root: Path) -> list[Path]:
    return list((root / ".scimlkit" / "partial").rglob("*.part"))


def test_sigkill_mid_download_then_resume(server):
    url = server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.trickle(chunk=64 * 1024, delay=0.05))  # ~3 s in total
    root = Path(os.environ["SCIMLKIT_DATA"])
    proc = _spawn(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = _parts(root)
        if parts and parts[0].stat().st_size > 300_000:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the download never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    kept = _parts(root)[0].stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not (root / "Proc").exists()  # nothing half-done is visible

    proc = _spawn(url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()).read_bytes() == PAYLOAD
    resumed = server.gets("/f.bin")[-1]
    start = int(resumed.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert start >= kept and resumed.status == 206
    assert _parts(root) == []  # the finished part was moved into place, not left behind


def test_four_processes_fetch_once(server):
    url = server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.trickle(chunk=256 * 1024, delay=0.05))  # ~1 s: they overlap
    procs = [_spawn(url) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    assert Path(paths.pop()).read_bytes() == PAYLOAD
    assert len(server.gets("/f.bin")) == 1  # one transfer; the others waited and reused it


def test_partial_that_cannot_be_resumed_is_discarded(server):
    """A .part left by a crash, whose server no longer has that version, is not spliced."""
    url = server.add("/f.bin", PAYLOAD)
    root = Path(os.environ["SCIMLKIT_DATA"])
    part_dir = root / ".scimlkit" / "partial" / "Proc"
    part_dir.mkdir(parents=True)
    (part_dir / "f.bin.part").write_bytes(b"stale bytes from an older version")
    (part_dir / "f.bin.part.json").write_text(json.dumps({"url": url, "etag": '"old"'}))
    proc = _spawn(url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()).read_bytes() == PAYLOAD
    assert server.gets("/f.bin")[0].status == 200  # If-Range failed: the whole file
    assert not part_dir.exists()


@pytest.mark.parametrize("scenario", ["no state file", "state for another URL", "no validator"])
def test_orphan_partial_without_usable_state_is_discarded(server, scenario):
    """A .part whose .part.json is missing, names another URL, or holds no ETag/Last-Modified
    cannot be validated: it is thrown away (never spliced, never left behind)."""
    url = server.add("/f.bin", PAYLOAD)
    root = Path(os.environ["SCIMLKIT_DATA"])
    part_dir = root / ".scimlkit" / "partial" / "Proc"
    part_dir.mkdir(parents=True)
    (part_dir / "f.bin.part").write_bytes(PAYLOAD[:1000] + b"garbage")
    state = {"no state file": None, "state for another URL": {"url": url + "?old", "etag": '"x"'},
             "no validator": {"url": url, "etag": None, "last_modified": None}}[scenario]
    if state is not None:
        (part_dir / "f.bin.part.json").write_text(json.dumps(state))
    proc = _spawn(url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()).read_bytes() == PAYLOAD
    (only,) = server.gets("/f.bin")
    assert "Range" not in only.headers and only.status == 200
    assert not part_dir.exists()


HOOKED = """
import sys, time, scimlkit.data as d
def slow(folder):
    (folder / "hook-started").write_text("1")
    time.sleep(float(sys.argv[3]))
dep = d.DataDep("Hooked", {"f.bin": sys.argv[1], "t.tar.gz": sys.argv[2]}, unpack=["t.tar.gz"],
                post_fetch=slow)
print(d.fetch(dep))
"""


def test_sigkill_during_unpack_and_hook_leaves_nothing_visible(server):
    """Killed after download and unpacking, before the install: the dataset is absent, the
    staging folder is invisible to readers and cleaned by the next fetch, which succeeds."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inner/x.csv")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"a,b"))
    f_url = server.add("/f.bin", PAYLOAD)
    t_url = server.add("/t.tar.gz", buf.getvalue())
    root = Path(os.environ["SCIMLKIT_DATA"])
    proc = subprocess.Popen([sys.executable, "-c", HOOKED, f_url, t_url, "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    staging = root / ".scimlkit" / "staging"
    deadline = time.monotonic() + 60
    while not list(staging.glob("Hooked.*/hook-started")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.05)
    (stage,) = list(staging.glob("Hooked.*"))
    assert (stage / "inner" / "x.csv").exists()  # unpacked, waiting for the hook
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (root / "Hooked").exists()
    assert "Hooked" not in {p.name for p in root.iterdir()}

    done = subprocess.run([sys.executable, "-c", HOOKED, f_url, t_url, "0"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert (folder / "f.bin").read_bytes() == PAYLOAD and (folder / "inner" / "x.csv").read_bytes() == b"a,b"
    assert list(staging.iterdir()) == []  # the killed run's staging folder was removed


NO_JAX = """
import io, sys, contextlib
import scimlkit.data, scimlkit.data.transfer, scimlkit.data.unpack, scimlkit.data.cli
import scimlkit.datasets
from scimlkit.data import catalogue
catalogue()
with contextlib.redirect_stdout(io.StringIO()):
    scimlkit.data.cli.main(["list", "--json"])
    from scimlkit.cli import main
    main(["data", "list"])
print(sorted(m for m in ("jax", "jaxlib", "equinox", "diffrax") if m in sys.modules))
"""


def test_scimlkit_data_and_datasets_never_import_jax():
    """Importing scimlkit.data, scimlkit.datasets, loading the catalogue (entry points included)
    and running `scimlkit data list` (both entry points) in a fresh interpreter: no JAX."""
    out = subprocess.run([sys.executable, "-c", NO_JAX], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _holder_of(path: Path, procs: list[subprocess.Popen]) -> subprocess.Popen | None:
    """The process that has `path` open (read from /proc/<pid>/fd)."""
    for proc in procs:
        fd_dir = Path(f"/proc/{proc.pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd) == str(path):
                        return proc
                except OSError:
                    continue
        except OSError:
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_downloader_killed_while_others_wait_one_of_them_resumes(server):
    """4 processes ask at once; the one downloading is SIGKILLed mid-transfer; a waiting one takes
    the lock, resumes the .part (Range), and all three survivors get the same intact file."""
    url = server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.trickle(chunk=64 * 1024, delay=0.05))  # ~3 s
    root = Path(os.environ["SCIMLKIT_DATA"])
    procs = [_spawn(url) for _ in range(4)]
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no download started"
        parts = _parts(root)
        if parts and parts[0].stat().st_size > 300_000:
            victim = _holder_of(parts[0].resolve(), procs)
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    survivors = [p for p in procs if p is not victim]
    results = [p.communicate(timeout=120) for p in survivors]
    assert all(p.returncode == 0 for p in survivors), [r[1] for r in results]
    (path,) = {out.strip() for out, _ in results}
    assert Path(path).read_bytes() == PAYLOAD
    gets = server.gets("/f.bin")
    assert len(gets) == 2  # the killed transfer, then one resumed transfer for all three
    assert gets[1].headers["Range"].startswith("bytes=") and gets[1].status == 206
