"""Declarations: DataDep arguments, hashes, the registry, TOML and pooch registry files."""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from scimlkit.data import (
    DataDep,
    RegistryError,
    UnknownDataset,
    catalogue,
    get,
    load_pooch_registry,
    load_registry,
    register,
    unregister,
)
from scimlkit.data.checksum import file_hash, parse_hash

H = hashlib.sha256(b"x").hexdigest()


def test_single_url_file_name_and_hash():
    dep = DataDep("One", "https://example.org/a/b%20c.csv?download=1", sha256=H.upper())
    (f,) = dep.files
    assert f.filename == "b c.csv" and f.urls == ("https://example.org/a/b%20c.csv?download=1",)
    assert f.hash == f"sha256:{H}" and dep.pinned


def test_list_of_urls_are_mirrors_of_one_file():
    dep = DataDep("Mirrored", ["https://a.org/x.zip", "https://b.org/other/x.zip"])
    assert len(dep.files) == 1 and len(dep.files[0].urls) == 2 and not dep.pinned


def test_mapping_declares_many_files_with_any_algorithm():
    dep = DataDep(
        "Many",
        {"train.gz": ["https://a/t.gz", "https://b/t.gz"], "test/labels.gz": "https://a/l.gz"},
        hashes={"train.gz": "md5:" + "a" * 32, "test/labels.gz": "sha3_256:" + "b" * 64},
    )
    assert [f.filename for f in dep.files] == ["train.gz", "test/labels.gz"]
    assert dep.files[1].hash == "sha3_256:" + "b" * 64


@pytest.mark.parametrize("kwargs,match", [
    ({"urls": "https://a/x", "sha256": "abc"}, "64 hex digits"),
    ({"urls": "https://a/x", "hashes": "nosuchalg:00"}, "unknown hash algorithm"),
    ({"urls": "https://a/x", "sha256": H, "hashes": f"sha256:{H}"}, "either sha256= or hashes="),
    ({"urls": {"a": "u", "b": "v"}, "sha256": H}, "has 2 files"),
    ({"urls": {"a": "u"}, "hashes": {"zz": f"sha256:{H}"}}, "undeclared files"),
    ({"urls": "https://a/"}, "cannot tell a file name"),
    ({"urls": {"../x": "u"}}, "relative path inside"),
    ({"urls": "https://a/x.csv", "unpack": ["x.csv"]}, "not archives"),
    ({"urls": []}, "non-empty"),
])
def test_bad_declarations_say_what_is_wrong(kwargs, match):
    urls = kwargs.pop("urls")
    with pytest.raises(RegistryError, match=match):
        DataDep("Bad", urls, **kwargs)


@pytest.mark.parametrize("name", ["", "a/b", "../x", "-x", "a b"])
def test_bad_names(name):
    with pytest.raises(RegistryError, match="invalid dataset name"):
        DataDep(name, "https://a/x")


def test_parse_hash_accepts_any_hashlib_algorithm(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"hello")
    for alg in ("md5", "sha1", "sha512", "blake2b", "sha3_256"):
        expected = hashlib.new(alg, b"hello").hexdigest()
        assert parse_hash(f"{alg.upper()}:{expected}") == (alg, expected)
        assert file_hash(p, alg) == expected
    assert parse_hash("sha3-256:" + "0" * 64) == ("sha3_256", "0" * 64)


def test_register_is_idempotent_and_refuses_conflicts():
    a = DataDep("Reg-Test", "https://a/x.csv")
    register(a)
    register(DataDep("Reg-Test", "https://a/x.csv"))  # equal: fine
    with pytest.raises(RegistryError, match="already registered"):
        register(DataDep("Reg-Test", "https://b/y.csv"))
    register(DataDep("Reg-Test", "https://b/y.csv"), replace=True)
    assert get("Reg-Test").files[0].urls == ("https://b/y.csv",)
    unregister("Reg-Test")


def test_unknown_name_suggests_close_ones():
    register(DataDep("Spelling-Example", "https://a/x.csv"))
    with pytest.raises(UnknownDataset, match="Did you mean 'Spelling-Example'"):
        get("Speling-Example")
    unregister("Spelling-Example")


def test_toml_registry(tmp_path):
    reg = tmp_path / "registry.toml"
    reg.write_text(textwrap.dedent(f"""
        ["UCI.Iris"]
        urls = ["https://a.org/iris.zip", "https://b.org/iris.zip"]
        sha256 = "{H}"
        message = "Fisher (1936). CC BY 4.0."
        unpack = true
        description = "150 irises"

        [MNIST-Toml]
        [MNIST-Toml.urls]
        "train.gz" = ["https://a/t.gz", "https://b/t.gz"]
        "labels.gz" = "https://a/l.gz"
        [MNIST-Toml.hashes]
        "train.gz" = "md5:{"1" * 32}"
    """))
    deps = {d.name: d for d in load_registry(reg)}
    assert set(deps) == {"UCI.Iris", "MNIST-Toml"}
    assert deps["UCI.Iris"].unpack == {"iris.zip"} and deps["UCI.Iris"].files[0].hash == f"sha256:{H}"
    assert deps["MNIST-Toml"].files[1].hash is None and deps["MNIST-Toml"].source == str(reg)
    assert "UCI.Iris" in catalogue()
    unregister("UCI.Iris")
    unregister("MNIST-Toml")


@pytest.mark.parametrize("text,match", [
    ("[A]\nurls = 'https://a/x'\nbogus = 1\n", "unknown keys"),
    ("[A]\nsha256 = 'x'\n", "has no 'urls'"),
    ("A = 1\n", "must be a table"),
    ("[A\n", "not valid TOML"),
])
def test_bad_toml_registries(tmp_path, text, match):
    reg = tmp_path / "r.toml"
    reg.write_text(text)
    with pytest.raises(RegistryError, match=match) as err:
        load_registry(reg)
    assert str(reg) in str(err.value)


def test_registry_env_variable_is_loaded_by_catalogue(tmp_path, monkeypatch):
    import scimlkit.data.spec as spec

    reg = tmp_path / "r.toml"
    reg.write_text("[From-Env]\nurls = 'https://a/x.csv'\n")
    monkeypatch.setenv("SCIMLKIT_REGISTRY", str(reg))
    spec.load_catalogue(reload=True)
    assert "From-Env" in catalogue()
    unregister("From-Env")


def test_pooch_registry(tmp_path):
    md5 = hashlib.md5(b"a").hexdigest()
    reg = tmp_path / "registry.txt"
    reg.write_text(f"# comment\nfolder/a.csv md5:{md5}\nb.csv {H} https://elsewhere.org/b.csv\n\n")
    dep = load_pooch_registry(reg, "Pooch-Test", base_url="https://data.org/v1/", message="cite")
    assert [(f.filename, f.urls, f.hash) for f in dep.files] == [
        ("folder/a.csv", ("https://data.org/v1/folder/a.csv",), f"md5:{md5}"),
        ("b.csv", ("https://elsewhere.org/b.csv",), f"sha256:{H}"),
    ]
    assert get("Pooch-Test") is dep
    unregister("Pooch-Test")
    reg.write_text("only-one-field\n")
    with pytest.raises(RegistryError, match=r"registry.txt:1"):
        load_pooch_registry(reg, "Pooch-Bad", base_url="https://x/")


def test_pin_line_is_valid_python_and_toml():
    dep = DataDep("Pin", {"a": "https://x/a", "b": "https://x/b"})
    line = dep.pin_line({"a": f"sha256:{H}", "b": "md5:" + "0" * 32})
    kwargs = eval("dict(" + line + ")")  # the printed line pastes into DataDep(...)
    assert DataDep("Pin", {"a": "https://x/a", "b": "https://x/b"}, **kwargs).pinned
    single = DataDep("Pin1", "https://x/a.csv").pin_line({"a.csv": f"sha256:{H}"})
    assert single == f'sha256="{H}",'


def test_toml_pin_line_parses_as_toml(tmp_path):
    import tomllib

    reg = tmp_path / "r.toml"
    reg.write_text('[Pin-Toml]\nurls = { "a.csv" = "https://x/a.csv", "b.csv" = "https://x/b.csv" }\n')
    (dep,) = load_registry(reg, register_all=False)
    line = dep.pin_line({"a.csv": f"sha256:{H}", "b.csv": "md5:" + "0" * 32})
    assert str(reg) in line
    parsed = tomllib.loads(line.split("  #")[0])
    pinned = DataDep("Pin-Toml", {"a.csv": "https://x/a.csv", "b.csv": "https://x/b.csv"}, **parsed)
    assert pinned.pinned
