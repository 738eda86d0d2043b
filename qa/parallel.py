"""The host side of indexing spread over worker processes, ahead of the encoder.

Once a GPU does the encoding, the host bounds ``qa index``: tokenising, sentence splitting and packing chunks,
and BM25's word lists run in Python at about 2,600 chunks/s in one process (``benchmarks/host_side.py``), while an
H200 encodes several times that. ``ChunkPool`` runs that work in ``workers`` processes and hands the results back
in report order, so the encoder works on one group of chunks while the workers chunk the next.

Workers are forked where the platform allows (``spawn`` would re-run the caller's script in each worker unless it
has an ``if __name__ == "__main__":`` guard) and use only Python, numpy and their own copy of the Rust tokenizer
(loaded from ``tokenizer.json``, without transformers or torch): nothing that the parent's CUDA or OpenMP threads
hold. They are forked with ``TOKENIZERS_PARALLELISM=false``, so each tokenises on its one core and the tokenizer's
thread pool, which a fork does not copy, is never used. What comes back per report is offsets, word-piece ids and
BM25 terms.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunking import Chunker, ChunkSettings
from .sparse import tokenize as bm25_terms
from .types import Chunk, Document


@dataclass(frozen=True)
class ChunkRows:
    """One report's chunks as the index stores them."""

    index: np.ndarray  # int64: the chunk's position in its report
    start: np.ndarray  # int64: character offsets into the report's text
    end: np.ndarray
    tokens: np.ndarray  # int64: word pieces per chunk


@dataclass(frozen=True)
class Chunked(ChunkRows):
    """... with each chunk's word-piece ids (for the encoder) and BM25 terms."""

    ids: list[list[int]]
    terms: list[list[str]]

    @classmethod
    def of(cls, chunks: Sequence[Chunk], ids: list[list[int]]) -> "Chunked":
        return cls(np.array([c.index for c in chunks], dtype=np.int64),
                   np.array([c.start for c in chunks], dtype=np.int64),
                   np.array([c.end for c in chunks], dtype=np.int64),
                   np.array([c.n_tokens for c in chunks], dtype=np.int64), ids,
                   [bm25_terms(c.text) for c in chunks])


def chunk_reports(chunker: Chunker, docs: Sequence[Document]) -> list[Chunked]:
    """``Chunked`` of each report, tokenising them in one call."""
    return [Chunked.of(chunks, ids) for chunks, ids in chunker.split_many(docs)]


def default_workers(device: str) -> int:
    """Worker processes for ``qa index``: none on a CPU (the encoder needs every core), else the cores less one
    for the process that feeds the GPU, at most 12."""
    if device == "cpu":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, 12))


# --- in the worker processes ---
_CHUNKER: Chunker | None = None


def _raw_tokenizer(model_path: str):
    """The model's fast tokenizer without transformers (and so without torch): same ids and offsets."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def raw_chunker(model_path: str, settings: ChunkSettings) -> Chunker:
    tok = _raw_tokenizer(model_path)

    def one(text: str):
        enc = tok.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def many(texts: list[str]):
        return [(e.ids, e.offsets) for e in tok.encode_batch(texts, add_special_tokens=False)]

    return Chunker(one, settings, many)


def _init(model_path: str, settings: ChunkSettings) -> None:
    global _CHUNKER
    _CHUNKER = raw_chunker(model_path, settings)


def _ready() -> bool:
    return _CHUNKER is not None


def _chunk_task(docs: list[Document]) -> list[Chunked]:
    assert _CHUNKER is not None
    return chunk_reports(_CHUNKER, docs)


def _terms_task(texts: list[str]) -> list[list[str]]:
    return [bm25_terms(t) for t in texts]


# --- in the indexing process ---
class ChunkPool:
    """``workers`` processes that chunk reports; use as a context manager."""

    def __init__(self, model_path: str | Path, settings: ChunkSettings, workers: int, slice_size: int = 64) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.slice_size = slice_size
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init,
                                         initargs=(str(model_path), settings))
        # A forking pool starts every worker at its first task: do that now, with the tokenizer's threads off.
        before = os.environ.get("TOKENIZERS_PARALLELISM")
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            self._pool.submit(_ready).result()
        except BaseException:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            if before is None:
                del os.environ["TOKENIZERS_PARALLELISM"]
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = before

    def __enter__(self) -> "ChunkPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def chunk(self, docs: Sequence[Document]) -> Iterator[tuple[Document, Chunked]]:
        """(report, its chunks) in the order of ``docs``; at most a few slices per worker wait to be taken."""
        slices = [list(docs[i : i + self.slice_size]) for i in range(0, len(docs), self.slice_size)]
        return self._ordered(slices, _chunk_task, lambda part, result: zip(part, result))

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """BM25 terms of each text."""
        step = max(256, self.slice_size * 8)
        slices = [list(texts[i : i + step]) for i in range(0, len(texts), step)]
        return [t for _, terms in self._ordered(slices, _terms_task, lambda part, result: [(part, result)])
                for t in terms]

    def _ordered(self, slices, task, pair):
        ahead = 4 * self.workers
        pending: deque[tuple[list, Future]] = deque()
        nxt = 0
        while nxt < len(slices) or pending:
            while nxt < len(slices) and len(pending) < ahead:
                pending.append((slices[nxt], self._pool.submit(task, slices[nxt])))
                nxt += 1
            part, fut = pending.popleft()
            yield from pair(part, fut.result())
