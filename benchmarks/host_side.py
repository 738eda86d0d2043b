"""The host side of indexing, without the encoder: what bounds `qa index` when a GPU does the encoding.

    .venv/bin/python benchmarks/host_side.py [--corpus ../shared/data/bbc-news] [--repeat 3]

Times, in one process: loading the reports, chunking them one at a time and in slices of CHUNK_SLICE (batched
tokenisation), and building BM25 over the chunks. Medians over --repeat runs; one JSON object.
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
from qa.embed import Encoder  # noqa: E402
from qa.indexer import CHUNK_SLICE  # noqa: E402
from qa.ingest import load_paths  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.sparse import build_bm25  # noqa: E402


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
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    t_load, docs = _median_s(lambda: load_paths([a.corpus]).documents, a.repeat)
    enc = Encoder()
    chunker = Chunker(enc.tokenize, Settings().chunking, enc.tokenize_many)
    enc.tokenize("warm up")
    t_one, one = _median_s(lambda: [chunker.split(d) for d in docs], a.repeat)
    t_many, _ = _median_s(lambda: [x for i in range(0, len(docs), CHUNK_SLICE)
                                   for x in chunker.split_many(docs[i : i + CHUNK_SLICE])], a.repeat)
    texts = [c.text for chunks, _ in one for c in chunks]
    t_bm25, _ = _median_s(lambda: build_bm25(texts), a.repeat)
    host = t_many + t_bm25
    print(json.dumps({"reports": len(docs), "chunks": len(texts), "load_s": t_load, "chunk_one_by_one_s": t_one,
                      "chunk_batched_s": t_many, "bm25_s": t_bm25,
                      "host_chunks_per_s": round(len(texts) / host)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
