"""The `scimlkit` console script: wiring, version, and behaviour of unknown input."""

import subprocess
import sys

from scimlkit import __version__
from scimlkit.cli import main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_unknown_demo_part_is_rejected(capsys):
    assert main(["demo", "nonsense"]) == 2
    assert "unknown demo part" in capsys.readouterr().err


def test_console_script_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "scimlkit.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"scimlkit {__version__}"
