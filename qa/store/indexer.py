"""Building and updating the index: reports -> chunks -> vectors + BM25, written atomically.

Only new or changed reports are chunked and embedded; unchanged ones keep their vectors.
"""
from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.chunking import Chunker
from qa.models.encoder import Encoder
from qa.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from qa.ingest.files import IngestResult, Skipped, load_paths, source_file, source_line
from qa.models.files import resolve_device
from qa.store.parallel import ChunkPool, Chunked, ChunkRows, chunk_reports, default_workers
from qa.settings import Settings
from qa.store.bm25 import build_bm25
from qa.store.dense import build_faiss, faiss_kind
from qa.store.index import (IndexData, IndexStore, check_expectations, content_hash, current_generation,
                            read_manifest, write_generation, write_lock)
from qa.types import Document

log = logging.getLogger(__name__)

CHUNK_SLICE = 256  # reports tokenised in one call

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    n_documents: int = 0
    n_chunks: int = 0
    seconds: float = 0.0
    generation: str = ""

    def summary(self) -> str:
        return (f"{self.n_documents} reports, {self.n_chunks} chunks in the index: {len(self.added)} added, "
                f"{len(self.updated)} updated, {len(self.removed)} removed, {len(self.unchanged)} unchanged, "
                f"{len(self.skipped)} skipped; {self.chunks_embedded} chunks embedded in {self.seconds:.1f} s")


@dataclass(frozen=True)
class Embedded(ChunkRows):
    """One report's chunks and vectors (computed here, or elsewhere: ``qa/store/distributed.py``, on a Ray cluster)."""

    vectors: np.ndarray  # float32 (n, dim), unit length


def manifest_expectations(encoder: Encoder, settings: Settings) -> dict:
    """Manifest keys an index must match to be read with this encoder and these settings."""
    return {"embedding_model": encoder.name, "embedding_variant": encoder.variant, "dim": encoder.dim,
            "chunking": settings.chunking.to_dict()}


@dataclass(frozen=True)
class Rows:
    """Consecutive chunk rows of an index being assembled: each row's report (its position in the new list of
    reports), chunk number in that report, character offsets, word pieces and vector."""

    doc: np.ndarray
    index: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    vectors: np.ndarray  # float32 (n, dim)


def _kept_rows(old: IndexStore, keep: list[Document]) -> Rows:
    """The rows of ``old`` that belong to the reports ``keep`` (which come first in the new index, in this order)."""
    pos_old = {d.id: i for i, d in enumerate(old.data.documents)}
    old_pos = np.array([pos_old[d.id] for d in keep])
    rows = np.flatnonzero(np.isin(old.data.chunk_doc, old_pos))
    remap = np.full(len(old.data.documents), -1, dtype=np.int64)
    remap[old_pos] = np.arange(len(keep))
    data = old.data
    return Rows(remap[data.chunk_doc[rows]], data.chunk_index[rows], data.chunk_start[rows], data.chunk_end[rows],
                data.chunk_tokens[rows], np.asarray(data.vectors[rows], dtype=np.float32))


def _concat(docs: list[Document], blocks: list[Rows], dim: int) -> IndexData:
    """One IndexData from the rows of ``blocks``, in order."""

    def cat(field_name: str, dtype) -> np.ndarray:
        parts = [getattr(b, field_name) for b in blocks]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    vectors = (np.concatenate([b.vectors for b in blocks]).astype(np.float32) if blocks
               else np.zeros((0, dim), np.float32))
    return IndexData(docs, cat("doc", np.int32), cat("index", np.int32), cat("start", np.int64), cat("end", np.int64),
                     cat("tokens", np.int32), vectors)


class Indexer:
    """Writes the index at ``settings.index_dir``."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self.encoder = encoder or Encoder(device=settings.device, precision=settings.precision)
        self.chunker = Chunker(self.encoder.tokenize, settings.chunking, self.encoder.tokenize_many)
        self.root = Path(settings.index_dir)

    pool_min_reports = 256  # fewer new reports than this are chunked here: starting workers would cost more

    @functools.cached_property
    def workers(self) -> int:
        """Processes that chunk reports: ``settings.index_workers``, or by default none on a CPU and most of the
        cores when a GPU does the encoding (``qa/store/parallel.py``)."""
        return self.settings.index_workers or default_workers(resolve_device(self.settings.device))

    # --- public operations ---
    def sync(self, paths: Sequence[str | os.PathLike], *, rebuild: bool = False, progress: Progress | None = None,
             lock_wait_s: float = 0.0) -> IndexReport:
        """Make the index hold the reports under ``paths``: add new, re-embed changed, drop deleted ones.

        Reports from other paths (earlier ``qa index`` runs, uploads) stay.
        """
        return self.sync_loaded(paths, load_paths(paths), rebuild=rebuild, progress=progress, lock_wait_s=lock_wait_s)

    def sync_loaded(self, paths: Sequence[str | os.PathLike], result: IngestResult, *,
                    embedded: Mapping[str, Embedded] | None = None, rebuild: bool = False,
                    progress: Progress | None = None, lock_wait_s: float = 0.0) -> IndexReport:
        """``sync`` for reports already loaded from ``paths``; ``embedded`` holds reports (by id) chunked and embedded
        elsewhere (``qa/store/distributed.py``). New or changed reports missing from it are chunked and embedded here.
        """
        roots = [os.path.abspath(p) for p in paths]
        loaded = {os.path.abspath(source_file(d.source)) for d in result.documents if d.source}
        # a file that could not be read, or a .jsonl file none of whose lines could: all its reports stay
        unreadable = {os.path.abspath(s.path) for s in result.skipped
                      if s.line is None or os.path.abspath(s.path) not in loaded}
        # a .jsonl file read but for some lines: the reports of those lines stay, the file's others follow it
        bad_lines = {(os.path.abspath(s.path), s.line) for s in result.skipped if s.line is not None}

        def gone(doc: Document) -> bool:
            """A report whose file lies under the given paths and is no longer there (unreadable ones stay)."""
            src = os.path.abspath(source_file(doc.source)) if doc.source else ""
            if src in unreadable or (src, source_line(doc.source)) in bad_lines:
                return False
            return any(src == r or src.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

        report = self._write(list(result.documents), drop=gone, rebuild=rebuild, progress=progress,
                             lock_wait_s=lock_wait_s, embedded=embedded)
        report.skipped = list(result.skipped)
        return report

    def upsert(self, docs: Iterable[Document], *, progress: Progress | None = None,
               lock_wait_s: float = 30.0) -> IndexReport:
        """Add or replace reports, keeping every other report."""
        return self._write(list(docs), drop=lambda d: False, rebuild=False, progress=progress, lock_wait_s=lock_wait_s)

    def remove(self, doc_ids: Iterable[str], *, lock_wait_s: float = 30.0) -> IndexReport:
        ids = set(doc_ids)
        return self._write([], drop=lambda d: d.id in ids, rebuild=False, progress=None, lock_wait_s=lock_wait_s)

    # --- the one write path ---
    def _write(self, docs: list[Document], drop: Callable[[Document], bool], rebuild: bool,
               progress: Progress | None, lock_wait_s: float,
               embedded: Mapping[str, Embedded] | None = None) -> IndexReport:
        t0 = time.perf_counter()
        report = IndexReport()
        with write_lock(self.root, wait_s=lock_wait_s):
            old = None if rebuild else self._open_existing()
            incoming = {d.id: d for d in docs}
            keep_docs: list[Document] = []
            if old is not None:
                for d in old.data.documents:
                    if d.id in incoming:
                        if old.document_hash(d.id) == content_hash(incoming[d.id]):
                            report.unchanged.append(d.id)
                            keep_docs.append(d)
                            del incoming[d.id]
                        else:
                            report.updated.append(d.id)
                    elif drop(d):
                        report.removed.append(d.id)
                    else:
                        keep_docs.append(d)
            report.added = [i for i in incoming if i not in report.updated]
            if old is not None and not incoming and not report.removed and not report.updated:
                report.n_documents, report.n_chunks = len(old.data.documents), len(old)
                report.generation = old.generation.name
                report.seconds = time.perf_counter() - t0
                return report  # nothing changed: no new generation
            data, terms = self._assemble(old, keep_docs, list(incoming.values()), progress, report, embedded or {})
            kind = faiss_kind(len(data.chunk_doc))
            if progress:
                progress("search indexes", 0, 1)
            faiss_index = build_faiss(data.vectors, kind)
            bm25 = self._bm25(data, terms)
            manifest = {**manifest_expectations(self.encoder, self.settings), "faiss_type": kind,
                        "document_hashes": {d.id: content_hash(d) for d in data.documents}}
            gen = write_generation(self.root, data, manifest, faiss_index, bm25)
            if progress:
                progress("search indexes", 1, 1)
        report.n_documents, report.n_chunks, report.generation = len(data.documents), len(data.chunk_doc), gen.name
        report.seconds = time.perf_counter() - t0
        log.info(report.summary())
        return report

    @staticmethod
    def _bm25(data: IndexData, terms: Sequence[list[str] | None]):
        """BM25 over every chunk of ``data``; ``terms`` holds a chunk's BM25 terms where they are known already."""
        return build_bm25([data.documents[int(d)].text[int(s):int(e)]
                           for d, s, e in zip(data.chunk_doc, data.chunk_start, data.chunk_end)], terms)

    def content_hashes(self) -> dict[str, str]:
        """Report id -> content hash in the live manifest (empty when there is no index, or it must be rebuilt).

        A hint for work done before the write: the locked write compares every report again.
        """
        try:
            manifest = read_manifest(current_generation(self.root), self.root)
            check_expectations(manifest, manifest_expectations(self.encoder, self.settings), self.root)
        except (IndexNotFound, IndexCorrupt, IndexIncompatible):
            return {}
        hashes = manifest.get("document_hashes")
        return {str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {}

    def _open_existing(self) -> IndexStore | None:
        try:
            current_generation(self.root)
        except IndexNotFound:
            return None
        try:
            return IndexStore.open(self.root, expect=manifest_expectations(self.encoder, self.settings))
        except (IndexIncompatible, IndexCorrupt) as e:
            log.warning("rebuilding from scratch: %s", e)
            return None

    def _assemble(self, old: IndexStore | None, keep: list[Document], new: list[Document],
                  progress: Progress | None, report: IndexReport,
                  embedded: Mapping[str, Embedded]) -> tuple[IndexData, list[list[str] | None]]:
        """The new index's arrays, and each chunk's BM25 terms where they were computed on the way (else None)."""
        blocks = [_kept_rows(old, keep)] if old is not None and keep else []
        terms: list[list[str] | None] = [None] * sum(len(b.doc) for b in blocks)  # BM25 terms, where known
        todo = [d for d in new if d.id not in embedded]
        fresh, terms = self._chunk_new(todo, keep, blocks, terms, progress)
        dim = self.encoder.dim
        for n, d in enumerate(new):
            if d.id in embedded:  # on a cluster: no BM25 terms came with it
                pre, doc_terms = embedded[d.id], [None] * len(embedded[d.id].start)
            else:
                pre, doc_terms = fresh[d.id]
            report.chunks_embedded += len(pre.start)
            terms.extend(doc_terms)
            blocks.append(Rows(np.full(len(pre.start), len(keep) + n, dtype=np.int64), pre.index, pre.start, pre.end,
                               pre.tokens, np.asarray(pre.vectors, dtype=np.float32).reshape(len(pre.start), dim)))
        return _concat(keep + new, blocks, dim), terms

    def _chunk_new(self, todo: list[Document], keep: list[Document], blocks: list[Rows],
                   terms: list[list[str] | None], progress: Progress | None):
        """Chunk and embed the reports ``todo``: on a pool of worker processes when there are many (which then also
        computes the kept chunks' BM25 terms), else here. (report id -> (Embedded, its BM25 terms), ``terms``)."""
        workers = self.workers if len(todo) >= self.pool_min_reports else 1
        if workers > 1:
            try:
                with ChunkPool(self.encoder.tokenizer, self.settings.chunking, workers) as pool:
                    fresh = self._chunk_and_embed_pooled(pool, todo, progress)
                    if terms:  # kept chunks: their BM25 terms on the pool too
                        kept = blocks[0]
                        spans = zip(kept.doc.tolist(), kept.start.tolist(), kept.end.tolist())
                        terms = list(pool.terms([keep[d].text[a:b] for d, a, b in spans]))
                    return fresh, terms
            except BrokenProcessPool as e:  # a worker died (killed for memory, say): start over in this process
                log.warning("chunking workers failed (%s); chunking in this process instead", e)
                terms = [None] * len(terms)
        return self._chunk_and_embed(todo, progress), terms

    # --- chunking and embedding the new reports ---
    def _chunk_and_embed(self, todo: list[Document], progress: Progress | None) -> dict[str, tuple[Embedded, list]]:
        """In this process: chunk every report (tokenising a slice of reports per call), then embed all chunks in
        one length-sorted pass."""
        chunked = []
        for i in range(0, len(todo), CHUNK_SLICE):
            part = todo[i : i + CHUNK_SLICE]
            chunked.extend(zip(part, chunk_reports(self.chunker, part)))
            if progress:
                progress("chunking", min(i + CHUNK_SLICE, len(todo)), len(todo))
        n_ids = sum(len(c.ids) for _, c in chunked)
        done = [0]

        def tick(k: int) -> None:
            done[0] += k
            if progress:
                progress("embedding", done[0], n_ids)

        return self._embed(chunked, tick)

    def _chunk_and_embed_pooled(self, pool: ChunkPool, todo: list[Document],
                                progress: Progress | None) -> dict[str, tuple[Embedded, list]]:
        """Workers chunk reports while this process embeds the chunks that came back, a group at a time."""
        out: dict[str, tuple[Embedded, list]] = {}
        group: list[tuple[Document, Chunked]] = []
        n_ids = done = 0
        for doc, chunked in pool.chunk(todo):
            group.append((doc, chunked))
            n_ids += len(chunked.ids)
            if n_ids >= self.encoder.pipeline_step:
                out.update(self._embed(group))
                done += len(group)
                group, n_ids = [], 0
                if progress:
                    progress("chunking and embedding", done, len(todo))
        out.update(self._embed(group))
        if progress:
            progress("chunking and embedding", len(todo), len(todo))
        return out

    def _embed(self, chunked: list[tuple[Document, Chunked]], tick=None) -> dict[str, tuple[Embedded, list]]:
        ids = [x for _, c in chunked for x in c.ids]
        vectors = self.encoder.encode_ids(ids, progress=tick) if ids else np.zeros((0, self.encoder.dim), np.float32)
        out, at = {}, 0
        for doc, c in chunked:
            n = len(c.ids)
            out[doc.id] = (Embedded(c.index, c.start, c.end, c.tokens, vectors[at : at + n]), c.terms)
            at += n
        return out
