"""Transfers against a real local HTTP server with injected faults."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from scimlkit.data import ChecksumMismatch, DataDep, DownloadError, add_mirror, fetch
from scimlkit.data.spec import RemoteFile
from scimlkit.data.transfer import Options, fetch_file
from tests.helpers.http_server import Fault

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _fetch(server, tmp_path, *, hash_text=f"sha256:{SHA}", path="/f.bin", opts=None, urls=None):
    server.add(path, PAYLOAD)
    remote = RemoteFile("f.bin", tuple(urls or [server.url(path)]), hash_text)
    part = tmp_path / "f.bin.part"
    opts = opts or Options(retries=4, backoff=0.01, read_timeout=5)
    return fetch_file(remote, part, opts=opts), part


def test_plain_download_hashes_while_streaming(server, tmp_path):
    got, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD
    assert got.digest == f"sha256:{SHA}" and got.size == len(PAYLOAD)
    assert len(server.gets("/f.bin")) == 1


def test_resume_after_connection_drop_uses_range_and_if_range(server, tmp_path):
    server.fault("/f.bin", Fault.drop(after=1_000_000), Fault.drop(after=500_000))
    _, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD
    gets = server.gets("/f.bin")
    assert len(gets) == 3
    assert "Range" not in gets[0].headers
    assert gets[1].headers["Range"] == "bytes=1000000-"
    assert gets[2].headers["Range"] == "bytes=1500000-"
    assert gets[1].headers["If-Range"].startswith('"')  # the strong ETag
    assert [g.status for g in gets] == [200, 206, 206]


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.fault("/f.bin", Fault.drop(after=700_000), Fault.no_range())
    _, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD
    assert [g.status for g in server.gets("/f.bin")] == [200, 200]


def test_changed_upstream_file_is_not_spliced(server, tmp_path):
    """If-Range with a stale ETag gets the whole new file (200), never old+new bytes."""
    new = os.urandom(len(PAYLOAD))
    server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.drop(after=600_000))
    part = tmp_path / "f.bin.part"
    remote = RemoteFile("f.bin", (server.url("/f.bin"),), None)
    opts = Options(retries=0, backoff=0.01, read_timeout=5)
    with pytest.raises(DownloadError):
        fetch_file(remote, part, opts=opts)
    assert part.stat().st_size == 600_000  # kept for resuming
    server.change("/f.bin", new)
    got = fetch_file(remote, part, opts=opts)
    assert part.read_bytes() == new
    assert got.digest == "sha256:" + hashlib.sha256(new).hexdigest()
    assert server.gets("/f.bin")[-1].status == 200


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_retried(server, tmp_path, code):
    server.fault("/f.bin", Fault.status(code, times=2))
    _, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD
    assert [g.status for g in server.gets("/f.bin")] == [code, code, 200]


def test_429_retry_after_is_honoured(server, tmp_path):
    server.fault("/f.bin", Fault.status(429, retry_after=1))
    start = time.monotonic()
    _fetch(server, tmp_path)
    assert time.monotonic() - start >= 1.0  # backoff alone would be ~0.01 s
    assert [g.status for g in server.gets("/f.bin")] == [429, 200]


def test_trickling_body_arrives_intact(server, tmp_path):
    server.fault("/f.bin", Fault.trickle(chunk=256 * 1024, delay=0.005))
    _, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD


def test_stalled_body_times_out_and_resumes(server, tmp_path):
    server.fault("/f.bin", Fault.stall(after=400_000, seconds=3))
    opts = Options(retries=3, backoff=0.01, read_timeout=0.5)
    _, part = _fetch(server, tmp_path, opts=opts)
    assert part.read_bytes() == PAYLOAD
    assert server.gets("/f.bin")[1].headers["Range"] == "bytes=400000-"


def test_wrong_content_length_is_detected_and_recovered(server, tmp_path):
    server.fault("/f.bin", Fault.wrong_length(delta=1000))
    _, part = _fetch(server, tmp_path)
    assert part.read_bytes() == PAYLOAD
    gets = server.gets("/f.bin")
    assert len(gets) == 2 and gets[1].headers["Range"] == f"bytes={len(PAYLOAD)}-"


def test_redirect_is_followed(server, tmp_path):
    server.add("/real.bin", PAYLOAD)
    server.fault("/f.bin", Fault.redirect("/real.bin", 301))
    remote = RemoteFile("f.bin", (server.url("/f.bin"),), f"sha256:{SHA}")
    got = fetch_file(remote, tmp_path / "x.part", opts=Options(backoff=0.01))
    assert got.digest == f"sha256:{SHA}"
    assert len(server.gets("/real.bin")) == 1


def test_html_error_page_is_refused_and_next_mirror_used(server, server2, tmp_path):
    server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.html())
    server2.add("/f.bin", PAYLOAD)
    remote = RemoteFile("f.bin", (server.url("/f.bin"), server2.url("/f.bin")), None)
    got = fetch_file(remote, tmp_path / "x.part", opts=Options(backoff=0.01))
    assert got.url == server2.url("/f.bin")
    assert "HTML page" in got.attempts[0]
    assert (tmp_path / "x.part").read_bytes() == PAYLOAD


def test_mirror_failover_after_404_and_persistent_503(server, server2, tmp_path):
    server2.add("/f.bin", PAYLOAD)
    server.add("/busy.bin", PAYLOAD)
    server.fault("/busy.bin", Fault.status(503, times=100))
    urls = [server.url("/missing.bin"), server.url("/busy.bin"), server2.url("/f.bin")]
    remote = RemoteFile("f.bin", tuple(urls), f"sha256:{SHA}")
    got = fetch_file(remote, tmp_path / "x.part", opts=Options(retries=2, backoff=0.01))
    assert got.url == urls[2]
    assert "HTTP 404" in got.attempts[0] and "gave up after 3 attempts" in got.attempts[1]


def test_all_mirrors_failing_lists_every_url(server, tmp_path):
    remote = RemoteFile("f.bin", (server.url("/a"), "http://127.0.0.1:9/b"), None)
    with pytest.raises(DownloadError) as err:
        fetch_file(remote, tmp_path / "x.part", opts=Options(retries=1, backoff=0.01, connect_timeout=2))
    text = str(err.value)
    assert server.url("/a") in text and "HTTP 404" in text and "127.0.0.1:9/b" in text
    assert "SCIMLKIT_URL_REWRITE" in text


def test_hash_mismatch_installs_nothing_and_leaves_no_temp_files(server):
    server.add("/f.bin", PAYLOAD)
    dep = DataDep("Bad", server.url("/f.bin"), sha256="0" * 64)
    with pytest.raises(ChecksumMismatch) as err:
        fetch(dep)
    assert "expected " + "0" * 64 in str(err.value) and SHA in str(err.value)
    root = os.environ["SCIMLKIT_DATA"]
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not f.endswith(".lock")]
    assert leftovers == []
    assert not os.path.exists(os.path.join(root, "Bad"))


def test_mismatch_on_first_mirror_falls_over_to_a_good_one(server, server2, tmp_path):
    server.add("/f.bin", b"tampered" * 1000)
    server2.add("/f.bin", PAYLOAD)
    remote = RemoteFile("f.bin", (server.url("/f.bin"), server2.url("/f.bin")), f"sha256:{SHA}")
    got = fetch_file(remote, tmp_path / "x.part", opts=Options(backoff=0.01))
    assert got.url == server2.url("/f.bin") and "mismatch" in got.attempts[0]


def test_url_rewrite_env_is_tried_first(server, server2, monkeypatch):
    server2.add("/mirror/sub/f.bin", PAYLOAD)
    declared = server.url("/data/sub/f.bin")  # not served: only the mirror has it
    monkeypatch.setenv("SCIMLKIT_URL_REWRITE", f"{server.url('/data/')}={server2.url('/mirror/')}")
    folder = fetch(DataDep("Rewritten", declared, sha256=SHA))
    assert (folder / "f.bin").read_bytes() == PAYLOAD
    assert server.requests == []  # the declared URL was never needed


def test_add_mirror_and_mirror_only(server, server2, monkeypatch):
    server.add("/data/f.bin", PAYLOAD)
    add_mirror(server.url("/data/"), server2.url("/none/"))
    monkeypatch.setenv("SCIMLKIT_MIRROR_ONLY", "1")
    with pytest.raises(DownloadError):
        fetch(DataDep("MirrorOnly", server.url("/data/f.bin"), sha256=SHA))
    assert server.requests == [] and len(server2.requests) == 1
    monkeypatch.delenv("SCIMLKIT_MIRROR_ONLY")
    folder = fetch(DataDep("MirrorOnly", server.url("/data/f.bin"), sha256=SHA))
    assert (folder / "f.bin").read_bytes() == PAYLOAD


def test_headers_with_environment_tokens_are_sent(server, monkeypatch):
    server.add("/f.bin", PAYLOAD)
    dep = DataDep("Token", server.url("/f.bin"), headers={"Authorization": "Bearer ${MY_TEST_TOKEN}"})
    with pytest.raises(DownloadError, match="MY_TEST_TOKEN is not set"):
        fetch(dep)
    monkeypatch.setenv("MY_TEST_TOKEN", "s3cret")
    fetch(dep)
    assert server.gets("/f.bin")[0].headers["Authorization"] == "Bearer s3cret"


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    folder = fetch(DataDep("Local", src.as_uri(), sha256=SHA))
    assert (folder / "src.bin").read_bytes() == PAYLOAD


def test_fsspec_protocol(tmp_path):
    pytest.importorskip("fsspec")
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/m.bin", PAYLOAD)
    folder = fetch(DataDep("Memory", "memory://bucket/m.bin", sha256=SHA))
    assert (folder / "m.bin").read_bytes() == PAYLOAD


def test_unknown_protocol_says_what_to_install():
    with pytest.raises(DownloadError, match="nosuchproto"):
        fetch(DataDep("Weird", "nosuchproto://host/x.bin"))


def test_many_files_use_a_bounded_parallel_pool(server, monkeypatch):
    monkeypatch.setenv("SCIMLKIT_MAX_PARALLEL", "3")
    payloads = {f"part{i}.bin": os.urandom(200_000 + i) for i in range(6)}
    for name, data in payloads.items():
        server.add(f"/{name}", data)
        server.fault(f"/{name}", Fault.trickle(chunk=50_000, delay=0.1))  # each takes ~0.4 s
    dep = DataDep(
        "Many",
        {name: server.url(f"/{name}") for name in payloads},
        hashes={name: "md5:" + hashlib.md5(d).hexdigest() for name, d in payloads.items()},
    )
    folder = fetch(dep)
    for name, data in payloads.items():
        assert (folder / name).read_bytes() == data
    assert server.peak_active == 3  # parallel, and never more than the bound


def test_503_retry_after_as_http_date_is_honoured(server, tmp_path):
    from email.utils import formatdate

    server.fault("/f.bin", Fault.status(503, retry_after=formatdate(time.time() + 2, usegmt=True)))
    start = time.monotonic()
    _fetch(server, tmp_path)
    assert time.monotonic() - start >= 1.0  # the date is ~2 s ahead (1 s resolution)
    assert [g.status for g in server.gets("/f.bin")] == [503, 200]


def test_retry_after_is_not_applied_to_a_404(server, tmp_path):
    """A permanent error goes straight to the next mirror, whatever Retry-After says."""
    server.fault("/f.bin", Fault.status(404, retry_after=30))
    remote = RemoteFile("f.bin", (server.url("/f.bin"), server.url("/g.bin")), f"sha256:{SHA}")
    server.add("/g.bin", PAYLOAD)
    start = time.monotonic()
    got = fetch_file(remote, tmp_path / "x.part", opts=Options(backoff=0.01))
    assert time.monotonic() - start < 10 and got.url.endswith("/g.bin")


def test_connect_timeout(tmp_path):
    """A host that never completes the TCP handshake: a full accept queue drops further SYNs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.2)
        remote = RemoteFile("f.bin", (f"http://127.0.0.1:{port}/f.bin",), None)
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"ConnectTimeout|timed out") as err:
            fetch_file(remote, tmp_path / "x.part", opts=Options(retries=1, backoff=0.01, connect_timeout=0.5))
        assert time.monotonic() - start < 10
        assert "gave up after 2 attempts" in str(err.value)
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_files_of_a_dataset_share_one_connection(server, monkeypatch):
    monkeypatch.setenv("SCIMLKIT_MAX_PARALLEL", "1")
    payloads = {f"f{i}.bin": os.urandom(100_000) for i in range(5)}
    for name, data in payloads.items():
        server.add(f"/{name}", data)
    fetch(DataDep("Reuse", {n: server.url(f"/{n}") for n in payloads},
                  hashes={n: "sha256:" + hashlib.sha256(d).hexdigest() for n, d in payloads.items()}))
    assert len(server.requests) == 5
    assert len({r.client for r in server.requests}) == 1  # keep-alive: one TCP connection


def test_resumed_file_with_a_stale_prefix_is_fetched_again_from_zero(server, tmp_path):
    """A .part whose bytes are wrong (a server that changed the file but kept its ETag, or a
    damaged disk) resumes, fails the hash, and is fetched once more from the start."""
    server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.drop(after=1_000_000))
    part = tmp_path / "f.bin.part"
    remote = RemoteFile("f.bin", (server.url("/f.bin"),), f"sha256:{SHA}")
    with pytest.raises(DownloadError):
        fetch_file(remote, part, opts=Options(retries=0, backoff=0.01))
    assert part.stat().st_size == 1_000_000
    part.write_bytes(b"\xff" * 1_000_000)  # same length, same ETag in .part.json: wrong bytes
    got = fetch_file(remote, part, opts=Options(retries=0, backoff=0.01))
    assert part.read_bytes() == PAYLOAD and got.digest == f"sha256:{SHA}"
    assert [g.status for g in server.gets("/f.bin")] == [200, 206, 200]
    assert "mismatch after resuming" in got.attempts[0]


def test_short_content_length_with_a_hash_installs_nothing(server):
    """A server announcing fewer bytes than the file: the client cannot tell, but the hash can."""
    server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.wrong_length(delta=-1000, times=10))
    with pytest.raises(ChecksumMismatch):
        fetch(DataDep("Short", server.url("/f.bin"), sha256=SHA))
    assert not (Path(os.environ["SCIMLKIT_DATA"]) / "Short").exists()


def test_progress_is_silent_without_a_terminal(server, capfd):
    server.add("/f.bin", PAYLOAD)
    fetch(DataDep("Quiet", server.url("/f.bin"), sha256=SHA), progress=None)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_write_failure_is_a_store_error_naming_the_file(server, tmp_path):
    """A disk that fills up mid-download (simulated with RLIMIT_FSIZE in a child process)."""
    import subprocess
    import sys

    server.add("/f.bin", PAYLOAD)
    code = (
        "import resource, signal, sys, scimlkit.data as d\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "try:\n"
        "    d.fetch(d.DataDep('Full', sys.argv[1], sha256=sys.argv[2]))\n"
        "except d.StoreError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, server.url("/f.bin"), SHA],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "f.bin.part" in proc.stdout and "SCIMLKIT_DATA" in proc.stdout
    assert not (Path(os.environ["SCIMLKIT_DATA"]) / "Full").exists()


def test_progress_bar_goes_to_the_terminal_and_stdout_keeps_only_the_path(server, tmp_path):
    """stderr on a terminal (a pty), stdout captured as in `path=$(scimlkit data fetch X)`."""
    import pty
    import subprocess
    import sys
    import threading

    server.add("/f.bin", PAYLOAD)
    server.fault("/f.bin", Fault.trickle(chunk=256 * 1024, delay=0.05))
    code = "import scimlkit.data as d, sys; print(d.fetch(d.DataDep('Bar', sys.argv[1], sha256=sys.argv[2])))"
    master, slave = pty.openpty()
    env = {**os.environ, "SCIMLKIT_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, server.url("/f.bin"), SHA], stdin=slave,
                            stderr=slave, stdout=subprocess.PIPE, env=env)
    os.close(slave)
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=5)
    os.close(master)
    assert proc.returncode == 0
    assert out.decode().splitlines() == [str(Path(os.environ["SCIMLKIT_DATA"]) / "Bar")]
    assert b"f.bin" in seen and b"MB" in seen  # the bar: name, bytes done / total


def test_missing_fsspec_backend_names_the_protocol():
    pytest.importorskip("fsspec")
    import importlib.util

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed")
    with pytest.raises(DownloadError, match=r"s3://.*(not installed|s3fs)"):
        fetch(DataDep("NoBackend", "s3://some-bucket/data/x.bin"))


def test_per_dataset_headers_from_the_environment(server, monkeypatch):
    """A user adds a token to someone else's declaration: SCIMLKIT_HEADERS_<NAME>, JSON or lines;
    it overrides the declared header of the same name, and other datasets do not get it."""
    server.add("/f.bin", PAYLOAD)
    declared = {"Authorization": "Bearer declared", "X-Declared": "1"}
    monkeypatch.setenv("SCIMLKIT_HEADERS_PRIVATE_MIRROR_1", '{"Authorization": "Bearer from-env"}')
    fetch(DataDep("Private.Mirror-1", server.url("/f.bin"), sha256=SHA, headers=declared))
    sent = server.gets("/f.bin")[-1].headers
    assert sent["Authorization"] == "Bearer from-env" and sent["X-Declared"] == "1"

    monkeypatch.setenv("SCIMLKIT_HEADERS_OTHER", "X-Token: abc\nX-Team: lab")
    fetch(DataDep("Other", server.url("/f.bin"), sha256=SHA))
    sent = server.gets("/f.bin")[-1].headers
    assert sent["X-Token"] == "abc" and sent["X-Team"] == "lab" and "Authorization" not in sent

    monkeypatch.setenv("SCIMLKIT_HEADERS_BROKEN", "no colon here")
    with pytest.raises(DownloadError, match=r"SCIMLKIT_HEADERS_BROKEN.*write e\.g\."):
        fetch(DataDep("Broken", server.url("/f.bin"), sha256=SHA))
