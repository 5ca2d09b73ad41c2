"""`scimlkit data ...` through the real CLI entry point (in-process and as a subprocess)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scimlkit.cli import main
from scimlkit.data import DataDep, register, unregister

CSV = b"x,y\n1,2\n3,4\n"
SHA = hashlib.sha256(CSV).hexdigest()


@pytest.fixture
def table(server):
    dep = register(DataDep("Cli-Table", server.url("/t.csv"), sha256=SHA, description="a tiny table"),
                   replace=True)
    server.add("/t.csv", CSV)
    yield dep
    unregister("Cli-Table")


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


def test_list_info_fetch_path_verify_du_purge(table, capsys):
    assert main(["data", "list", "--json"]) == 0
    entry = next(e for e in _json(capsys) if e["name"] == "Cli-Table")
    assert entry["installed"] is None and entry["pinned"] and entry["files"] == 1

    assert main(["data", "path", "Cli-Table"]) == 1  # not installed: error, exit 1
    assert "scimlkit data fetch Cli-Table" in capsys.readouterr().err

    assert main(["data", "fetch", "Cli-Table"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert (folder / "t.csv").read_bytes() == CSV

    assert main(["data", "path", "Cli-Table/t.csv"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "t.csv")

    assert main(["data", "info", "Cli-Table", "--json"]) == 0
    info = _json(capsys)
    assert info["installed"] == str(folder) and info["size"] == len(CSV)
    assert info["files"][0]["hash"] == f"sha256:{SHA}"

    assert main(["data", "verify", "--json"]) == 0
    assert [r["ok"] for r in _json(capsys)] == [True]
    (folder / "t.csv").write_bytes(b"tampered")
    assert main(["data", "verify", "Cli-Table"]) == 1
    assert "FAILED" in capsys.readouterr().out

    assert main(["data", "du", "--json"]) == 0
    du = _json(capsys)
    assert du["datasets"][0]["name"] == "Cli-Table" and du["datasets"][0]["bytes"] == len(b"tampered")

    assert main(["data", "purge", "Cli-Table"]) == 0
    assert not folder.exists()
    assert main(["data", "purge", "Cli-Table"]) == 1


def test_hash_prints_a_pasteable_digest(tmp_path, capsys):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert main(["data", "hash", str(f), "-a", "md5"]) == 0
    assert capsys.readouterr().out.strip() == f"md5:{hashlib.md5(b'abc').hexdigest()}  {f}"
    assert main(["data", "hash", str(f), "--json"]) == 0
    assert _json(capsys)[0]["hash"] == f"sha256:{hashlib.sha256(b'abc').hexdigest()}"


def test_unknown_dataset_is_an_error_not_a_traceback(capsys):
    assert main(["data", "info", "No-Such-Dataset"]) == 1
    assert "no dataset named 'No-Such-Dataset'" in capsys.readouterr().err


def _registry_run(server, tmp_path, module: list[str]):
    server.add("/t.csv", CSV)
    reg = tmp_path / "reg.toml"
    reg.write_text(f'["Toml-Table"]\nurls = "{server.url("/t.csv")}"\nsha256 = "{SHA}"\nmessage = "cite"\n')
    env = {**os.environ, "SCIMLKIT_REGISTRY": str(reg)}
    return lambda *a: subprocess.run([sys.executable, "-m", *module, *a], capture_output=True, text=True,
                                     env=env, stdin=subprocess.DEVNULL)


def test_data_commands_in_a_subprocess_with_a_registry_file(server, tmp_path):
    run = _registry_run(server, tmp_path, ["scimlkit.data.cli"])
    listed = run("list")
    assert listed.returncode == 0 and "Toml-Table" in listed.stdout
    refused = run("fetch", "Toml-Table")
    assert refused.returncode == 1 and "SCIMLKIT_ACCEPT_TERMS=1" in refused.stderr
    done = run("fetch", "--accept-terms", "Toml-Table")
    assert done.returncode == 0, done.stderr
    assert (Path(done.stdout.strip()) / "t.csv").read_bytes() == CSV


@pytest.mark.slow
def test_console_script_entry_point(server, tmp_path):
    """The real `scimlkit data` wiring (slow: the top-level CLI imports every capability)."""
    run = _registry_run(server, tmp_path, ["scimlkit.cli", "data"])
    done = run("fetch", "--accept-terms", "Toml-Table")
    assert done.returncode == 0, done.stderr
    assert (Path(done.stdout.strip()) / "t.csv").read_bytes() == CSV


def test_entry_point_plugins_are_listed(tmp_path):
    """A third-party distribution registers datasets through the `scimlkit.datasets` group:
    a callable, and the path of a TOML registry."""
    site = tmp_path / "site"
    dist = site / "thirdparty_data-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-data\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[scimlkit.datasets]\nfunc = thirdparty_data:register_all\ntoml = thirdparty_data:REGISTRY\n"
    )
    (site / "thirdparty_data.py").write_text(
        "from pathlib import Path\n"
        "from scimlkit.data import DataDep, register\n"
        "REGISTRY = str(Path(__file__).with_name('thirdparty.toml'))\n"
        "def register_all():\n"
        "    register(DataDep('Plugin-Func', 'https://example.org/f.csv', description='from a callable'))\n"
    )
    (site / "thirdparty.toml").write_text('[Plugin-Toml]\nurls = "https://example.org/t.csv"\n')
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "scimlkit.data.cli", "list", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {e["name"]: e for e in json.loads(proc.stdout)}
    assert listed["Plugin-Func"]["description"] == "from a callable"
    assert listed["Plugin-Toml"]["source"].endswith("thirdparty.toml")
