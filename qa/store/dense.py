"""Dense search: the FAISS index over the chunk vectors (exact, or IVF with 8-bit scalar quantisation for a large
corpus) and the candidates it finds for a query vector, within a subset of chunks where one is given."""
from __future__ import annotations

import numpy as np

# Chunks above which exact search gives way to IVF with 8-bit scalar quantisation. benchmarks/large_corpus.py at
# 100k chunks on 2 cores: exact search p50 14.6 ms (recall 1.0), IVF-SQ8 0.44 ms (recall@10 .968 against exact),
# so with ~10 ms of query embedding only IVF keeps retrieval under 20 ms there; exact stays below 50k chunks.
LARGE_CORPUS = 50_000
IVF_NPROBE = 32
EXACT_SUBSET = 50_000  # a subset of chunks up to this size is scored exactly (a matrix product), not through FAISS


def faiss_kind(n_chunks: int) -> str:
    """The FAISS index type for a corpus of ``n_chunks``: "flat" (exact) or "ivf_sq8"."""
    return "flat" if n_chunks < LARGE_CORPUS else "ivf_sq8"


def build_faiss(vectors: np.ndarray, kind: str):
    """A FAISS inner-product index of ``kind`` ("flat" or "ivf_sq8") holding ``vectors`` (unit length)."""
    import faiss

    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf_sq8":
        n = len(vectors)
        nlist = int(min(4096, max(16, np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, min(n, 64 * nlist), replace=False)] if n > 64 * nlist else vectors
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = IVF_NPROBE
    else:
        raise ValueError(f"unknown FAISS index type {kind!r}")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def dense_candidates(faiss_index, vectors: np.ndarray, qv: np.ndarray, n: int,
                     allowed: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the (up to) ``n`` chunks nearest to query vector ``qv``, best first; ``allowed`` (row numbers)
    limits the search to those chunks."""
    if allowed is not None and len(allowed) <= EXACT_SUBSET:
        scores = np.asarray(vectors[allowed], dtype=np.float32) @ qv
        top = np.argsort(-scores)[:n]
        return allowed[top]
    if allowed is not None:
        import faiss

        sel = faiss.IDSelectorBatch(allowed.astype(np.int64))
        ivf = faiss.try_extract_index_ivf(faiss_index)
        params = (faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe) if ivf is not None
                  else faiss.SearchParameters(sel=sel))
        _, ids = faiss_index.search(qv[None, :], n, params=params)
    else:
        _, ids = faiss_index.search(qv[None, :], n)
    ids = ids[0]
    return ids[ids >= 0]
