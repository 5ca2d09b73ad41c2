"""`scimlkit fit zoo` and the fit part of `scimlkit demo`."""

from __future__ import annotations

import re

from scimlkit import fit
from scimlkit.cli import main


def test_cli_lists_and_fits_zoo_problems(tmp_path, capsys):
    assert main(["fit", "zoo"]) == 0
    out = capsys.readouterr().out
    assert "lotka_volterra" in out and "robertson" in out
    png = tmp_path / "fit.png"
    assert main(["fit", "zoo", "exponential_decay", "--starts", "2", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    k = float(re.search(r"^\s+k\s+([0-9.]+)", out, re.M).group(1))
    assert abs(k - 0.5) < 0.01
    assert png.stat().st_size > 5000


def test_cli_reports_unknown_zoo_problem(capsys):
    assert main(["fit", "zoo", "nope"]) == 1
    assert "unknown zoo problem 'nope'" in capsys.readouterr().err


def test_demo_fits_lynx_hare_and_writes_the_plot(tmp_path, capsys):
    from scimlkit.fit import _demo

    _demo.run(tmp_path)
    assert (tmp_path / "lotka_volterra_fit.png").stat().st_size > 10000
    out = capsys.readouterr().out
    # the maximum-likelihood fit lands near the Stan case study's posterior means
    for name, ref in fit.zoo.lynx_hare().true.items():
        value = float(re.search(rf"^\s+{name}\s+([0-9.]+)", out, re.M).group(1))
        assert abs(value / ref - 1) < 0.1, (name, value)


def test_shipped_data_is_the_published_series():
    year, hare, lynx = fit.zoo.load_lynx_hare()
    assert year[0] == 1900 and year[-1] == 1920 and year.size == 21
    assert (hare[0], lynx[0], hare[3], lynx[4]) == (30.0, 4.0, 77.4, 59.4)
