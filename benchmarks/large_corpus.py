"""Retrieval at 100k and 1M chunks: FAISS index types against exact search, and BM25 at the same sizes.

    .venv/bin/python benchmarks/large_corpus.py [--sizes 100000 1000000] [--queries 200]

Vectors: real all-MiniLM-L6-v2 embeddings of the SQuAD v1.1 dev paragraphs' chunks (from the cached index that
`qa eval` / `benchmarks/retrieval.py` build), each repeated with Gaussian noise (sigma 0.35 per unit vector, renormalised) until the size is reached: synthetic, but
with the cluster structure of real text. Queries: embeddings of real SQuAD questions. Recall@10 is measured
against exact inner-product search over the same vectors. BM25: the BBC chunk texts repeated to the size.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.models.encoder import Encoder  # noqa: E402
from qa.store.dense import build_faiss  # noqa: E402
from qa.ingest.files import load_paths  # noqa: E402
from qa.eval.questions import load_questions  # noqa: E402
from qa.store.bm25 import bm25_scores, build_bm25  # noqa: E402


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_index(vecs: np.ndarray, kind: str):
    """The library's FAISS index of ``kind``, or (for comparison only: the library does not build it) HNSW."""
    if kind != "hnsw":
        return build_faiss(vecs, kind)
    import faiss

    index = faiss.IndexHNSWFlat(vecs.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = 128
    index.add(np.ascontiguousarray(vecs, dtype=np.float32))
    return index


def vector_figures(n: int, vecs: np.ndarray, queries: np.ndarray) -> dict:
    """Recall@10 against exact search, p50 latency, build time and memory of each FAISS index type over ``vecs``."""
    import faiss

    exact = faiss.IndexFlatIP(vecs.shape[1])
    exact.add(vecs)
    _, truth = exact.search(queries, 10)
    res = {}
    for kind in ("flat", "ivf_sq8", "hnsw"):
        if kind == "hnsw" and n > 200_000:
            continue  # building HNSW over 1M vectors takes too long on 2 cores for this benchmark
        before = rss_mb()
        t0 = time.perf_counter()
        index = exact if kind == "flat" else build_index(vecs, kind)
        build_s = time.perf_counter() - t0
        mem = (rss_mb() - before) if kind != "flat" else vecs.nbytes / 2**20
        lat = []
        found = []
        for q in queries:
            t1 = time.perf_counter()
            _, ids = index.search(q[None, :], 10)
            lat.append((time.perf_counter() - t1) * 1e3)
            found.append(ids[0])
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
        res[kind] = {"recall@10_vs_exact": round(recall, 4), "p50_ms": round(statistics.median(lat), 2),
                     "build_s": round(build_s, 1), "index_memory_mb": round(mem)}
        print(n, kind, res[kind], file=sys.stderr)
        if index is not exact:
            del index
    return res


def bm25_figures(n: int, bbc_texts: list[str], qtexts: list[str]) -> dict:
    """Build time and p50 latency (scores, then the top 50) of BM25 over ``n`` chunk texts."""
    texts = [bbc_texts[i % len(bbc_texts)] for i in range(n)]
    t0 = time.perf_counter()
    bm = build_bm25(texts)
    b_build = time.perf_counter() - t0
    lat = []
    for q in qtexts:
        t1 = time.perf_counter()
        s = bm25_scores(bm, q)
        np.argpartition(-s, 50)[:50]
        lat.append((time.perf_counter() - t1) * 1e3)
    res = {"p50_ms": round(statistics.median(lat), 2), "build_s": round(b_build, 1)}
    print(n, "bm25", res, file=sys.stderr)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--shared", default="../shared/data")
    a = p.parse_args(argv)
    import faiss

    rng = np.random.default_rng(0)
    enc = Encoder()
    squad = load_questions(Path(a.shared) / "squad" / "dev-v1.1.json")
    bbc = load_paths([Path(a.shared) / "bbc-news"]).documents
    bbc_texts = [t for d in bbc for t in d.text.split("\n") if len(t.split()) > 8]
    from qa.eval.run import corpus_index
    from qa.settings import Settings
    from qa.store.index import IndexStore

    t0 = time.perf_counter()
    base = np.asarray(IndexStore.open(corpus_index(squad, Settings(), progress=None).index_dir).data.vectors)
    qtexts = [q.question for q in rng.choice(np.array(squad.questions, dtype=object), a.queries, replace=False)]
    queries = enc.encode(qtexts)
    out: dict = {"base_vectors": len(base), "encode_s": round(time.perf_counter() - t0, 1), "queries": a.queries,
                 "faiss_threads": faiss.omp_get_max_threads()}
    for n in a.sizes:
        idx = rng.integers(0, len(base), n)
        vecs = base[idx] + rng.normal(0, 0.35 / np.sqrt(base.shape[1]), (n, base.shape[1])).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        res = vector_figures(n, vecs, queries)
        res["bm25"] = bm25_figures(n, bbc_texts, qtexts)
        out[str(n)] = res
        del vecs
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
