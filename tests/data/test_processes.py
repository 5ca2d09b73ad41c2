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


def test_importing_scimlkit_data_never_imports_jax():
    code = (
        "import sys, scimlkit.data, scimlkit.data.transfer, scimlkit.data.unpack; "
        "print('jax' in sys.modules, 'jaxlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
