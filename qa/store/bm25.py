"""BM25 over chunks with bm25s (sparse matrices, no Python loops over documents)."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOP: frozenset[str] | None = None


_STEMMER = None


def _stem_words(words: list[str]) -> list[str]:
    """English Snowball stems (PyStemmer, a compiled dependency)."""
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER.stemWords(words)


def tokenize(text: str) -> list[str]:
    global _STOP
    if _STOP is None:
        _STOP = _stopwords()
    return _stem_words([w for w in _WORD.findall(text.lower()) if w not in _STOP])


def build_bm25(texts: Sequence[str], terms: Sequence[list[str] | None] | None = None):
    """BM25 over ``texts``; ``terms[i]``, where given, is ``tokenize(texts[i])`` computed already."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    # bm25s cannot index nothing: an empty index gets one placeholder row that no query reaches (len(store) is 0)
    if terms is None:
        terms = [None] * len(texts)
    corpus = [tokenize(t) if w is None else w for t, w in zip(texts, terms, strict=True)] or [["\u0000"]]
    bm25.index(corpus, show_progress=False)
    return bm25


def bm25_scores(bm25, query: str) -> np.ndarray:
    """BM25 score of every chunk for ``query`` (zeros when no query word is in the index)."""
    vocab = bm25.vocab_dict
    toks = [t for t in tokenize(query) if t in vocab]
    n = int(bm25.scores["num_docs"])
    if not toks:
        return np.zeros(n, dtype=np.float32)
    return np.asarray(bm25.get_scores(toks), dtype=np.float32)
