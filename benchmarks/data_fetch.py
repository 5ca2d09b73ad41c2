"""Benchmark: scimlkit.data fetch+verify(+unpack) vs curl + sha256sum (+ tar xzf) vs pooch.

One command, one run, numbers printed with ratios:

    .venv/bin/python -m uv pip install --python .venv/bin/python -e '.[bench]'   # pooch
    .venv/bin/python benchmarks/data_fetch.py [--size-mib 1024] [--tgz-mib 200] [--repeat 2]

A local Range-capable server serves a 1 GiB file of random bytes and a ~200 MB tar.gz: nginx
when it is installed (``apt-get install nginx-light``), else a Python server (said in the
output). Every tool downloads into a fresh folder; the best of ``--repeat`` runs is kept
(the machine is shared). scimlkit runs in-process (import time excluded, as in a library
call); curl and sha256sum are separate processes run one after the other, as a user would.
Also measured: a cache hit on the installed 1 GiB dataset (scimlkit checks its stamp; pooch
re-hashes the file).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MiB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_files(root: Path, size_mib: int, tgz_mib: int) -> tuple[Path, Path]:
    big = root / "srv" / "big.bin"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        for _ in range(size_mib // 16):
            f.write(os.urandom(16 * MiB))
    # a tar.gz of ~tgz_mib: half random binary (incompressible), half numeric text
    src = root / "tree" / "dataset"
    src.mkdir(parents=True)
    n_files = 20
    per_file = int(tgz_mib * MiB / n_files / 0.65)  # gzip -6 keeps ~65% of this mix
    for i in range(n_files):
        if i % 2:
            (src / f"part{i:02d}.bin").write_bytes(os.urandom(per_file))
        else:
            lines, size = [], 0
            rng = int.from_bytes(os.urandom(4), "little")
            while size < per_file:
                rng = (1103515245 * rng + 12345) & 0x7FFFFFFF
                line = f"{i},{rng % 100000},{(rng >> 7) % 1000 / 7:.6f},{rng % 3}\n"
                lines.append(line)
                size += len(line)
            (src / f"part{i:02d}.csv").write_text("".join(lines))
    tgz = root / "srv" / "tree.tar.gz"
    gz = "pigz" if shutil.which("pigz") else "gzip"
    subprocess.run(f"tar cf - -C {src.parent} dataset | {gz} -6 > {tgz}", shell=True, check=True)
    shutil.rmtree(root / "tree")
    return big, tgz


class _Server:
    def __init__(self, root: Path, workdir: Path) -> None:
        self.port = _free_port()
        self.kind = "nginx" if shutil.which("nginx") or Path("/usr/sbin/nginx").exists() else "python"
        if self.kind == "nginx":
            conf = workdir / "nginx.conf"
            conf.write_text(f"""
worker_processes 2; daemon off; pid {workdir}/nginx.pid; error_log {workdir}/nginx.err;
events {{ worker_connections 64; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 30;
  client_body_temp_path {workdir}/t1; proxy_temp_path {workdir}/t2; fastcgi_temp_path {workdir}/t3;
  uwsgi_temp_path {workdir}/t4; scgi_temp_path {workdir}/t5;
  types {{ application/octet-stream bin; application/gzip gz; }}
  server {{ listen 127.0.0.1:{self.port}; root {root}; }}
}}""")
            exe = shutil.which("nginx") or "/usr/sbin/nginx"
            self.proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(workdir)])
        else:
            handler = functools.partial(_QuietHandler, directory=str(root))
            self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
            threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("the benchmark server did not start")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.kind == "nginx":
            self.proc.terminate()
            self.proc.wait()
        else:
            self.httpd.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


def bench_curl(url: str, dest: Path, unpack: bool) -> dict[str, float]:
    dest.mkdir(parents=True)
    out = dest / Path(url).name
    t = {"download": _timed(lambda: subprocess.run(["curl", "-sf", "-o", str(out), url], check=True))}
    t["hash"] = _timed(lambda: subprocess.run(["sha256sum", str(out)], check=True, capture_output=True))
    if unpack:
        t["unpack"] = _timed(lambda: subprocess.run(["tar", "xzf", str(out), "-C", str(dest)], check=True))
    t["total"] = sum(t.values())
    return t


def bench_scimlkit(url: str, digest: str, store: Path, unpack: bool) -> float:
    from scimlkit.data import DataDep, fetch

    os.environ["SCIMLKIT_DATA"] = str(store)
    dep = DataDep("Bench-" + Path(url).name.replace(".", "-"), url, sha256=digest, unpack=unpack)
    return _timed(lambda: fetch(dep, progress=False))


def bench_pooch(url: str, digest: str, dest: Path, unpack: bool) -> float:
    import pooch

    processor = pooch.Untar(extract_dir=str(dest / "x")) if unpack else None
    return _timed(lambda: pooch.retrieve(url, known_hash=f"sha256:{digest}", path=str(dest),
                                         processor=processor, progressbar=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--tgz-mib", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="where to put the files (default: a temp dir)")
    args = parser.parse_args()
    os.environ["SCIMLKIT_PROGRESS"] = "0"
    import logging

    logging.getLogger("pooch").setLevel(logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="scimlkit-bench-", dir=args.workdir))
    root.chmod(0o755)  # nginx workers run as an unprivileged user
    try:
        print(f"making {args.size_mib} MiB file and ~{args.tgz_mib} MB tar.gz in {root} ...", flush=True)
        big, tgz = make_files(root, args.size_mib, args.tgz_mib)
        digests = {big: _sha256(big), tgz: _sha256(tgz)}
        server = _Server(root / "srv", root)
        print(f"server: {server.kind} on 127.0.0.1:{server.port}; "
              f"big.bin {big.stat().st_size / MiB:.0f} MiB, tree.tar.gz {tgz.stat().st_size / MiB:.0f} MiB")
        try:
            results: dict[str, dict[str, float]] = {}
            for path, unpack in ((big, False), (tgz, True)):
                url = server.url(path.name)
                best: dict[str, float] = {}
                curl_parts: dict[str, float] = {}
                for rep in range(args.repeat):
                    d = root / f"run{rep}-{path.name}"
                    c = bench_curl(url, d / "curl", unpack)
                    if c["total"] < best.get("curl", 1e9):
                        curl_parts = c
                    best["curl"] = min(best.get("curl", 1e9), c["total"])
                    shutil.rmtree(d / "curl")
                    best["scimlkit"] = min(best.get("scimlkit", 1e9),
                                           bench_scimlkit(url, digests[path], d / "store", unpack))
                    if not (path is big and rep == args.repeat - 1):
                        shutil.rmtree(d / "store")  # keep the last 1 GiB install for the cache-hit test
                    best["pooch"] = min(best.get("pooch", 1e9), bench_pooch(url, digests[path], d / "pooch", unpack))
                    if not (path is big and rep == args.repeat - 1):
                        shutil.rmtree(d / "pooch")
                results[path.name] = best
                size_mb = path.stat().st_size / 1e6
                label = "fetch+verify+unpack" if unpack else "fetch+verify"
                print(f"\n{path.name} ({size_mb:.0f} MB), {label}, best of {args.repeat}:")
                parts = " + ".join(f"{k} {v:.2f}" for k, v in curl_parts.items() if k != "total")
                print(f"  curl -o, sha256sum{', tar xzf' if unpack else ''}: {best['curl']:6.2f} s  ({parts})")
                for tool in ("scimlkit", "pooch"):
                    print(f"  {tool:32s}: {best[tool]:6.2f} s  ({size_mb / best[tool]:6.0f} MB/s)")
                print(f"  ratio curl-chain / scimlkit: {best['curl'] / best['scimlkit']:.2f}x   "
                      f"pooch / scimlkit: {best['pooch'] / best['scimlkit']:.2f}x")

            # cache hits on the installed 1 GiB dataset
            from scimlkit.data import DataDep, datadep, register

            last = root / f"run{args.repeat - 1}-{big.name}"
            os.environ["SCIMLKIT_DATA"] = str(last / "store")
            register(DataDep("Bench-big-bin", server.url(big.name), sha256=digests[big]), replace=True)
            hits = []
            for _ in range(20):
                hits.append(_timed(lambda: datadep("Bench-big-bin/big.bin")))
            import pooch

            ph = _timed(lambda: pooch.retrieve(server.url(big.name), known_hash=f"sha256:{digests[big]}",
                                               path=str(last / "pooch"), progressbar=False))
            print(f"\ncache hit, {big.stat().st_size / MiB:.0f} MiB dataset: scimlkit datadep() median {statistics.median(hits) * 1e3:.3f} ms "
                  f"(max {max(hits) * 1e3:.3f} ms); pooch.retrieve {ph * 1e3:.0f} ms (re-hashes) "
                  f"-> {ph / statistics.median(hits):.0f}x")
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
