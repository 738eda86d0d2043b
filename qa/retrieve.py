"""Hybrid retrieval: dense (FAISS) and BM25 candidate lists, fused into one ranking.

Every searcher shares one contract: ``search(query, k) -> list[Hit]`` with higher scores better.
"""
from __future__ import annotations

import time
from collections.abc import Collection

import numpy as np

from qa.models.encoder import Encoder
from qa.settings import Settings
from qa.store.bm25 import bm25_scores
from qa.store.dense import dense_candidates
from qa.store.index import IndexStore
from qa.types import Hit


class Retriever:
    def __init__(self, store: IndexStore, encoder: Encoder, settings: Settings) -> None:
        self.store = store
        self.encoder = encoder
        self.settings = settings

    def search(self, query: str, k: int | None = None, *, doc_ids: Collection[str] | None = None,
               timings: dict[str, float] | None = None) -> list[Hit]:
        """Top ``k`` chunks for ``query``; ``doc_ids`` limits the search to those reports."""
        k = k or self.settings.k
        n = len(self.store)
        t = timings if timings is not None else {}
        if n == 0:
            return []
        allowed = self.store.chunk_rows(set(doc_ids)) if doc_ids is not None else None
        if allowed is not None and len(allowed) == 0:
            return []
        t0 = time.perf_counter()
        qv = self.encoder.encode_queries([query])[0]
        t1 = time.perf_counter()
        sparse = bm25_scores(self.store.bm25, query)
        t2 = time.perf_counter()
        cand_n = min(self.settings.candidates, n)
        dense_ids = dense_candidates(self.store.faiss_index, self.store.data.vectors, qv, cand_n, allowed)
        t3 = time.perf_counter()
        if allowed is not None:
            masked = np.full(n, -np.inf, dtype=np.float32)
            masked[allowed] = sparse[allowed]
            sparse_rank = masked
        else:
            sparse_rank = sparse
        sparse_ids = np.argpartition(-sparse_rank, cand_n - 1)[:cand_n] if cand_n < n else np.arange(n)
        sparse_ids = sparse_ids[np.isfinite(sparse_rank[sparse_ids]) & (sparse_rank[sparse_ids] > 0)]
        cand = np.unique(np.concatenate([dense_ids, sparse_ids]).astype(np.int64))
        vecs = np.asarray(self.store.data.vectors[cand], dtype=np.float32)
        dense = vecs @ qv  # exact cosine for every candidate, whichever list found it
        fused = self._fuse(dense, sparse[cand], dense_ids, sparse_ids, cand)
        order = np.argsort(-fused, kind="stable")[:k]
        hits = [Hit(self.store.chunk(int(cand[i])), float(fused[i]), r, float(dense[i]), float(sparse[cand[i]]))
                for r, i in enumerate(order)]
        t4 = time.perf_counter()
        t.update({"embed": (t1 - t0) * 1e3, "bm25": (t2 - t1) * 1e3, "dense_search": (t3 - t2) * 1e3,
                  "fusion": (t4 - t3) * 1e3})
        return hits

    def _fuse(self, dense: np.ndarray, sparse: np.ndarray, dense_ids: np.ndarray, sparse_ids: np.ndarray,
              cand: np.ndarray) -> np.ndarray:
        s = self.settings
        if s.fusion == "rrf":
            def ranks(ids: np.ndarray) -> dict[int, int]:
                return {int(c): r for r, c in enumerate(ids)}

            dr, sr = ranks(dense_ids), ranks(sparse_ids)
            return np.array([1 / (s.rrf_k + dr[c] + 1) if c in dr else 0.0 for c in cand.tolist()]) + np.array(
                [1 / (s.rrf_k + sr[c] + 1) if c in sr else 0.0 for c in cand.tolist()])
        top_sparse = float(sparse.max()) if len(sparse) else 0.0
        sparse_norm = sparse / top_sparse if top_sparse > 0 else np.zeros_like(sparse)
        return s.dense_weight * dense + (1 - s.dense_weight) * sparse_norm
