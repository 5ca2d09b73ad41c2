"""String kernels against ONNX Runtime / ONNX's reference evaluator (eager: strings never trace)."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

from scimlkit.models.errors import ModelError

WORDS = np.array(["Monday", "tuesday", "WEDNESDAY", "monday", "Friday"], dtype=object)


@pytest.mark.parametrize("action", ["NONE", "LOWER", "UPPER"])
@pytest.mark.parametrize("case_sensitive", [0, 1])
def test_string_normalizer_matches_onnxruntime(action: str, case_sensitive: int) -> None:
    attrs = {"case_change_action": action, "is_case_sensitive": case_sensitive, "stopwords": ["monday", "friday"],
             "locale": "C"}  # the default en_US locale may not be installed for ONNX Runtime
    check("StringNormalizer", [WORDS], attrs=attrs, opset=10, ref="ort", jit=False)
    check("StringNormalizer", [WORDS.reshape(1, -1)], attrs=attrs, opset=10, ref="ort", jit=False)


def test_string_normalizer_all_removed_gives_one_empty_string() -> None:
    model = node_model("StringNormalizer", [WORDS[:1]], attrs={"stopwords": ["Monday"], "is_case_sensitive": 1},
                       opset=10)
    (got,) = ours(model, [WORDS[:1]])
    assert np.asarray(got).tolist() == [""]


def test_string_concat_split_regex() -> None:
    a = np.array([["ab", "c d"], ["", "e"]], dtype=object)
    b = np.array(["_1", "_2"], dtype=object)
    check("StringConcat", [a, b], opset=20, jit=False)
    text = np.array(["a,b,,c", "no", "x,y"], dtype=object)
    check("StringSplit", [text], attrs={"delimiter": ",", "maxsplit": 2}, opset=20, n_out=2, jit=False)
    check("StringSplit", [np.array(["  a b  c ", "d"], dtype=object)], opset=20, n_out=2, jit=False)
    check("RegexFullMatch", [np.array(["www.google.com", "www.x.org", "google.com"], dtype=object)],
          attrs={"pattern": r"www\.[\w.-]+\.\bcom\b"}, opset=20, ref="ort", jit=False)


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_vectorizer_matches_onnxruntime(mode: str) -> None:
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], np.int32)
    attrs = {"mode": mode, "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 2,
             "ngram_counts": [0, 4], "ngram_indexes": [0, 1, 2, 3, 4, 5, 6], "pool_int64s": [2, 3, 5, 4, 5, 6, 7, 8, 6, 7],
             "weights": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]}
    check("TfIdfVectorizer", [x], attrs=attrs, opset=9, ref="ort", jit=False)


def test_regex_rejects_a_numeric_tensor() -> None:
    model = node_model("RegexFullMatch", [np.array(["a"], dtype=object)], attrs={"pattern": "a"}, opset=20)
    with pytest.raises(ModelError):
        ours(model, [np.array([1.0])])
