"""The catalogue through `scimlkit data list/info`, and the rule that nothing downloaded is unpickled."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

import scimlkit.datasets
from scimlkit.data.cli import main
from scimlkit.datasets import cifar10

from .test_cifar import records, tar_gz


def test_list_shows_name_size_licence_and_cached(upstream, capsys):
    assert main(["list", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    for name in ("MNIST", "Fashion-MNIST", "KMNIST", "EMNIST", "CIFAR-10", "CIFAR-100", "UCI-Iris",
                 "UCI-Wine", "UCI-Breast-Cancer-Wisconsin", "Rdatasets-index", "Lynx-Hare", "Sunspots"):
        assert listed[name]["licence"], name
        assert listed[name]["installed"] is None
    assert listed["CIFAR-10"]["size"] == 170052171

    upstream("CIFAR-10", {"cifar-10-binary.tar.gz": tar_gz({
        "cifar-10-batches-bin/test_batch.bin": records(np.zeros((1, 32, 32, 3), np.uint8), np.array([3])),
    })})
    cifar10("test")
    assert main(["list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["NAME", "FILES", "SIZE", "LICENCE", "INSTALLED"]
    row = next(line for line in table if line.startswith("CIFAR-10 "))
    assert "170.1 MB" in row and "unspecified" in row and " yes " in row


def test_info_shows_message_files_hashes_licence_and_citation(capsys):
    assert main(["info", "MNIST"]) == 0
    text = capsys.readouterr().out
    assert "train-images-idx3-ubyte.gz  md5:f68b3c2dcbeaaa9fbdd348bbdeb94873" in text
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in text
    assert "licence: CC BY-SA 3.0" in text and "LeCun" in text and "terms:" in text
    assert main(["info", "MNIST", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["licence"] == "CC BY-SA 3.0" and "Gradient-based learning" in info["citation"]
    assert len(info["files"]) == 4 and all(f["hash"].startswith("md5:") for f in info["files"])


def test_no_loader_unpickles_or_evaluates_downloaded_files():
    """CIFAR's python distribution is pickles; we read the binary one. No module of
    scimlkit.datasets may import pickle/marshal/shelve/joblib or call np.load/eval/exec."""
    banned_modules = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "joblib", "dill"}
    banned_calls = {"np.load", "numpy.load", "np.fromfile", "eval", "exec", "__import__"}
    for path in Path(scimlkit.datasets.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, path
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in banned_calls, f"{path.name}:{node.lineno} calls {name}()"
