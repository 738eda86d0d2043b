"""The host side of indexing, without the encoder: what bounds `qa index` when a GPU does the encoding.

    .venv/bin/python benchmarks/host_side.py [--corpus ../shared/data/bbc-news] [--workers 1,2] [--repeat 3]

Times loading the reports, then for each worker count: chunking every report with its BM25 terms (in this
process for 1, on a ``ChunkPool`` of N forked workers otherwise: qa/store/parallel.py, as ``qa index --workers N``)
and building BM25 from those terms here. Medians over --repeat runs; one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.chunking import Chunker  # noqa: E402
from qa.models.encoder import Encoder  # noqa: E402
from qa.store.indexer import CHUNK_SLICE  # noqa: E402
from qa.ingest.files import load_paths  # noqa: E402
from qa.store.parallel import ChunkPool, chunk_reports  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store.bm25 import build_bm25  # noqa: E402


def _median_s(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 2), result


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default="../shared/data/bbc-news")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    t_load, docs = _median_s(lambda: load_paths([a.corpus]).documents, a.repeat)
    enc = Encoder()
    settings = Settings().chunking
    chunker = Chunker(enc.tokenize, settings, enc.tokenize_many)
    enc.tokenize("warm up")
    out = {"reports": len(docs), "load_s": t_load, "runs": []}
    for w in (int(x) for x in a.workers.split(",")):
        if w <= 1:
            t_start = 0.0
            t_chunk, chunked = _median_s(lambda: [c for i in range(0, len(docs), CHUNK_SLICE)
                                                  for c in chunk_reports(chunker, docs[i : i + CHUNK_SLICE])],
                                         a.repeat)
        else:
            t0 = time.perf_counter()
            pool = ChunkPool(enc.tokenizer, settings, w)
            t_start = round(time.perf_counter() - t0, 2)
            with pool:
                t_chunk, chunked = _median_s(lambda: [c for _, c in pool.chunk(docs)], a.repeat)
        texts = [d.text[s:e] for d, c in zip(docs, chunked) for s, e in zip(c.start.tolist(), c.end.tolist())]
        terms = [t for c in chunked for t in c.terms]
        t_bm25, _ = _median_s(lambda: build_bm25(texts, terms), a.repeat)
        out["chunks"] = len(texts)
        out["runs"].append({"workers": w, "pool_start_s": t_start, "chunk_and_terms_s": t_chunk,
                            "bm25_from_terms_s": t_bm25,
                            "host_chunks_per_s": round(len(texts) / (t_chunk + t_bm25))})
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
