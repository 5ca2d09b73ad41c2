"""String kernels: StringNormalizer, StringConcat, StringSplit, RegexFullMatch, TfIdfVectorizer.

JAX arrays cannot hold strings, so these kernels work on NumPy object arrays known at
trace time (model constants and inputs of an eager call); the runtime never traces them.
"""

from __future__ import annotations

import re

import numpy as np

from ._registry import OpContext, register_op
from ._util import OpAttributeError


def _strings(ctx: OpContext, value, what: str) -> np.ndarray:
    arr = ctx.static(value, what)
    if arr.dtype.kind not in "OUS":
        raise OpAttributeError(f"{ctx.describe()}: {what} must be a string tensor, got {arr.dtype}")
    return arr


def _text(s) -> str:
    return s.decode() if isinstance(s, bytes) else str(s)


@register_op("StringNormalizer")
def string_normalizer(
    ctx: OpContext, x, *, case_change_action="NONE", is_case_sensitive=0, locale=None, stopwords=None
):
    x = _strings(ctx, x, "X")
    action = _text(case_change_action)
    if action not in ("NONE", "LOWER", "UPPER"):
        raise OpAttributeError(f"{ctx.describe()}: unknown case_change_action {action!r}")
    if x.ndim == 2 and x.shape[0] != 1:
        raise OpAttributeError(f"{ctx.describe()}: a 2-D input must have shape [1, C], got {list(x.shape)}")
    if x.ndim not in (1, 2):
        raise OpAttributeError(f"{ctx.describe()}: the input must have shape [C] or [1, C], got {list(x.shape)}")
    stops = [_text(s) for s in (stopwords or [])]
    if is_case_sensitive:
        stopset = set(stops)
        kept = [_text(s) for s in x.reshape(-1) if _text(s) not in stopset]
    else:
        stopset = {s.lower() for s in stops}
        kept = [_text(s) for s in x.reshape(-1) if _text(s).lower() not in stopset]
    if action == "LOWER":
        kept = [s.lower() for s in kept]
    elif action == "UPPER":
        kept = [s.upper() for s in kept]
    if not kept:
        kept = [""]
    out = np.array(kept, dtype=object)
    return out.reshape(1, -1) if x.ndim == 2 else out


@register_op("StringConcat")
def string_concat(ctx: OpContext, x, y):
    a, b = _strings(ctx, x, "X"), _strings(ctx, y, "Y")
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        out[index] = _text(a[index]) + _text(b[index])
    return out


@register_op("StringSplit")
def string_split(ctx: OpContext, x, *, delimiter=None, maxsplit=None):
    x = _strings(ctx, x, "X")
    sep = _text(delimiter) if delimiter is not None else None
    sep = sep or None  # an empty delimiter splits on runs of whitespace
    limit = -1 if maxsplit is None else int(maxsplit)
    parts = [_text(s).split(sep, limit) for s in x.reshape(-1)]
    width = max((len(p) for p in parts), default=0)
    out = np.full((len(parts), width), "", dtype=object)
    for i, p in enumerate(parts):
        out[i, : len(p)] = p
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    return out.reshape((*x.shape, width)), counts


@register_op("RegexFullMatch")
def regex_full_match(ctx: OpContext, x, *, pattern):
    x = _strings(ctx, x, "X")
    try:
        compiled = re.compile(_text(pattern))
    except re.error as exc:
        raise OpAttributeError(f"{ctx.describe()}: invalid pattern {pattern!r}: {exc}") from exc
    out = np.zeros(x.shape, dtype=bool)
    for index in np.ndindex(x.shape):
        out[index] = compiled.fullmatch(_text(x[index])) is not None
    return out


def _pool_ngrams(pool: list, ngram_counts: list[int], min_n: int, max_n: int) -> dict[tuple, int]:
    """Map each pool n-gram (of a size in [min_n, max_n]) to its position among all n-grams."""
    table: dict[tuple, int] = {}
    ngram_id = 0
    for size, start in enumerate(ngram_counts, start=1):
        end = ngram_counts[size] if size < len(ngram_counts) else len(pool)
        for i in range(start, end - size + 1, size):
            if min_n <= size <= max_n:
                table[tuple(pool[i : i + size])] = ngram_id
            ngram_id += 1
    return table


@register_op("TfIdfVectorizer")
def tfidf_vectorizer(
    ctx: OpContext,
    x,
    *,
    max_gram_length,
    max_skip_count,
    min_gram_length,
    mode,
    ngram_counts,
    ngram_indexes,
    pool_int64s=None,
    pool_strings=None,
    weights=None,
):
    data = ctx.static(x, "X")
    if data.ndim > 2:
        raise OpAttributeError(f"{ctx.describe()}: the input must have shape [C] or [B, C], got {list(data.shape)}")
    strings = pool_strings is not None and len(pool_strings) > 0
    pool = [_text(s) for s in pool_strings] if strings else [int(v) for v in (pool_int64s or [])]
    table = _pool_ngrams(pool, [int(c) for c in ngram_counts], int(min_gram_length), int(max_gram_length))
    columns = [int(i) for i in ngram_indexes]
    width = max(columns) + 1 if columns else 0
    rows = data.reshape(1, -1) if data.ndim < 2 else data
    counts = np.zeros((rows.shape[0], width), np.int64)
    for r, row in enumerate(rows):
        items = [_text(v) for v in row] if strings else [int(v) for v in row]
        smallest = int(min_gram_length)
        for distance in range(1, int(max_skip_count) + 2):
            for start in range(len(items)):
                for n in range(smallest, int(max_gram_length) + 1):
                    last = start + (n - 1) * distance
                    if last >= len(items):
                        break
                    hit = table.get(tuple(items[start : last + 1 : distance]))
                    if hit is not None:
                        counts[r, columns[hit]] += 1
            if smallest == 1:  # unigrams are counted once, not once per skip distance
                smallest = 2
                if smallest > int(max_gram_length):
                    break
    mode = _text(mode)
    w = np.asarray(weights, np.float32) if weights else None
    if mode == "TF":
        out = counts.astype(np.float32)
    elif mode == "IDF":
        out = (counts > 0).astype(np.float32) * (w if w is not None else 1.0)
    elif mode == "TFIDF":
        out = counts.astype(np.float32) * (w if w is not None else 1.0)
    else:
        raise OpAttributeError(f"{ctx.describe()}: unknown mode {mode!r} (expected TF, IDF or TFIDF)")
    return out.astype(np.float32).reshape(-1) if data.ndim < 2 else out.astype(np.float32)
