"""`scimlkit demo data`: declare, fetch, verify, unpack and cache a dataset, with no network.

The Iris archive shipped in ``_demo_files/`` is served by a throw-away HTTP server on
127.0.0.1 (its ``file://`` URL is the declared mirror), fetched into a temporary store under
`out`, checked against the SHA-256 shipped next to it, unpacked and installed atomically;
a second lookup is a cache hit.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FILES = Path(__file__).parent / "_demo_files"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


def run(out: Path) -> None:
    """Run the data demo, writing its store under `out`."""
    from . import DataDep, datadep, fetch, register, unregister, verify
    from .store import stamp_path

    out = Path(out)
    store = out / "store"
    sha256 = (FILES / "iris.tar.gz.sha256").read_text().split()[0]
    handler = functools.partial(_Quiet, directory=str(FILES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/iris.tar.gz"
    old = os.environ.get("SCIMLKIT_DATA")
    os.environ["SCIMLKIT_DATA"] = str(store)
    try:
        dep = register(DataDep(
            "Iris-Demo",
            [url, (FILES / "iris.tar.gz").as_uri()],  # an HTTP URL and a file:// mirror
            sha256=sha256,
            message="Iris (Fisher, 1936), UCI Machine Learning Repository, licence CC BY 4.0.",
            unpack=True,
        ), replace=True)
        print(f"declared {dep.name}: {dep.files[0].filename} from {url}\n  sha256 {sha256}")
        start = time.perf_counter()
        folder = fetch(dep, accept_terms=True, progress=False)
        fetched = time.perf_counter() - start
        print(f"fetched, verified, unpacked and installed in {fetched * 1e3:.1f} ms -> {folder}")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"  {path.relative_to(folder)}  {path.stat().st_size:6d} B  sha256 {digest[:16]}...")
        start = time.perf_counter()
        csv = datadep("Iris-Demo/iris/iris.csv")
        print(f"datadep('Iris-Demo/iris/iris.csv'): cache hit in {(time.perf_counter() - start) * 1e3:.2f} ms "
              "(size/mtime stamp check, no re-hash)")
        report = verify("Iris-Demo")
        print(f"explicit verify: {'ok' if report.ok else 'FAILED'} ({report.checked} files re-hashed)")
        print(f"stamp: {stamp_path(folder.parent, folder.name)}")
        rows = csv.read_text().splitlines()
        print(f"iris.csv: {len(rows) - 1} rows; header {rows[0]}")
        unregister("Iris-Demo")
    finally:
        server.shutdown()
        server.server_close()
        if old is None:
            os.environ.pop("SCIMLKIT_DATA", None)
        else:
            os.environ["SCIMLKIT_DATA"] = old
