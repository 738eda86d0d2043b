"""The host side of indexing spread over worker processes, ahead of the encoder.

Once a GPU does the encoding, the host bounds ``qa index``: tokenising, sentence splitting and packing chunks,
and BM25's word lists run in Python at about 2,600 chunks/s in one process (``benchmarks/host_side.py``), while an
H200 encodes several times that. ``ChunkPool`` runs that work in ``workers`` processes and hands the results back
in report order, so the encoder works on one group of chunks while the workers chunk the next.

Workers are forked on Linux (``spawn``, used elsewhere, re-runs the caller's script in each worker unless it has
an ``if __name__ == "__main__":`` guard) and use only Python, numpy and their own copy of the Rust tokenizer
(the encoder's fast tokenizer, serialised: without transformers or torch): nothing that the parent's CUDA or
OpenMP threads hold. They are forked with ``TOKENIZERS_PARALLELISM=false``, so each tokenises on its one core and the tokenizer's
thread pool, which a fork does not copy, is never used. What comes back per report is offsets, word-piece ids and
BM25 terms.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
import numpy as np

from qa.chunking import Chunker, ChunkSettings
from qa.store.bm25 import tokenize as bm25_terms
from qa.types import Chunk, Document


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
    """Worker processes for ``qa index``: with a CUDA GPU the cores less one for the process that feeds it, at most
    12; otherwise none (on a CPU the encoder needs every core)."""
    if not device.startswith("cuda"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, 12))


# --- in the worker processes ---
_CHUNKER: Chunker | None = None


def tokenizer_json(tokenizer) -> str:
    """The serialised Rust tokenizer behind ``qa.models.files.Tokenizer`` (or a transformers fast tokenizer): what the workers
    load."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("chunking workers need a fast (Rust) tokenizer; index with --workers 1")
    return backend.to_str()


def raw_chunker(tokenizer_spec: str, settings: ChunkSettings) -> Chunker:
    """A Chunker on the Rust tokenizer alone (no transformers, no torch): the same ids and offsets as the fast
    tokenizer ``tokenizer_spec`` was serialised from, with its truncation and padding turned off."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_spec)
    tok.no_truncation()
    tok.no_padding()

    def one(text: str):
        enc = tok.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def many(texts: list[str]):
        return [(e.ids, e.offsets) for e in tok.encode_batch(texts, add_special_tokens=False)]

    return Chunker(one, settings, many)


def _init(tokenizer_spec: str, settings: ChunkSettings) -> None:
    global _CHUNKER
    _CHUNKER = raw_chunker(tokenizer_spec, settings)


def _ready() -> bool:
    return _CHUNKER is not None


def _chunk_task(docs: list[Document]) -> list[Chunked]:
    assert _CHUNKER is not None
    return chunk_reports(_CHUNKER, docs)


def _terms_task(texts: list[str]) -> list[list[str]]:
    return [bm25_terms(t) for t in texts]


# --- in the indexing process ---
class ChunkPool:
    """``workers`` processes that chunk reports; use as a context manager.

    ``tokenizer`` is the encoder's tokenizer (``qa.models.files.Tokenizer``); the workers get its exact Rust serialisation.
    A worker that dies (killed for memory, say) raises ``concurrent.futures.process.BrokenProcessPool``.
    """

    def __init__(self, tokenizer, settings: ChunkSettings, workers: int, slice_size: int = 64) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.slice_size = slice_size
        # fork on Linux; elsewhere spawn (macOS's fork is unsafe once torch has loaded Metal or Accelerate)
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init,
                                         initargs=(tokenizer_json(tokenizer), settings))
        # A forking pool starts every worker at its first task: do that now, with the tokenizer's threads off.
        # (The variable is set for the moment of the fork only; another thread tokenising then runs single-threaded.)
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

    def chunk(self, docs: Sequence[Document], ahead_chunks: int = 16_384) -> Iterator[tuple[Document, Chunked]]:
        """(report, its chunks) in the order of ``docs``.

        Before each result is handed back, enough reports are queued to keep the workers busy for about
        ``ahead_chunks`` chunks (estimated from the chunks per report so far), so that they go on chunking while
        the caller embeds a group; and no more, so that memory stays bounded.
        """
        slices = [list(docs[i : i + self.slice_size]) for i in range(0, len(docs), self.slice_size)]
        pending: deque[tuple[list[Document], Future]] = deque()
        nxt = queued = seen_reports = seen_chunks = 0
        while nxt < len(slices) or pending:
            per_report = seen_chunks / seen_reports if seen_reports else 2.0
            while nxt < len(slices) and (len(pending) < 2 * self.workers or queued * per_report < ahead_chunks):
                pending.append((slices[nxt], self._pool.submit(_chunk_task, slices[nxt])))
                queued += len(slices[nxt])
                nxt += 1
            part, fut = pending.popleft()
            result = fut.result()
            queued -= len(part)
            seen_reports += len(part)
            seen_chunks += sum(len(c.ids) for c in result)
            yield from zip(part, result)

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """BM25 terms of each text."""
        step = max(256, self.slice_size * 8)
        slices = [list(texts[i : i + step]) for i in range(0, len(texts), step)]
        return [t for part in self._pool.map(_terms_task, slices) for t in part]
