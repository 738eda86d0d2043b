"""Retrieval recall on SQuAD v1.1 dev as an open corpus: dense, BM25 and fusions, measured side by side.

    .venv/bin/python benchmarks/retrieval.py [--squad ../shared/data/squad/dev-v1.1.json] [--limit 1000] [--seed 0]
        [--precision auto|fp32|bf16]

All 2,067 paragraphs are indexed (the same cached index `qa eval` builds); each question's gold paragraph is
looked for in the top 1/5/10 chunks. Prints one JSON object; docs/accuracy.md and docs/performance.md quote it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.models.encoder import Encoder  # noqa: E402
from qa.eval.run import corpus_index  # noqa: E402
from qa.eval.questions import load_questions, sample  # noqa: E402
from qa.retrieve import Retriever  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store.index import IndexStore  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--squad", default="../shared/data/squad/dev-v1.1.json")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto", help="the encoder's arithmetic, for the index and the queries")
    p.add_argument("--configs", nargs="*", default=None, help="only these (dense, bm25, rrf, mix0.3 ... mix0.8)")
    a = p.parse_args(argv)
    qs = load_questions(a.squad)
    base = corpus_index(qs, Settings(precision=a.precision), progress=None)
    qs = sample(qs, a.limit, a.seed)
    encoder = Encoder(precision=a.precision)
    store = IndexStore.open(base.index_dir)
    configs = {"dense": Settings(fusion="mix", dense_weight=1.0), "bm25": Settings(fusion="mix", dense_weight=0.0),
               "rrf": Settings(fusion="rrf")}
    for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        configs[f"mix{w}"] = Settings(fusion="mix", dense_weight=w)
    if a.configs:
        configs = {k: v for k, v in configs.items() if k in a.configs}
    out = {"questions": len(qs.questions), "chunks": len(store), "precision": encoder.resolved_precision}
    for name, s in configs.items():
        r = Retriever(store, encoder, s)
        ranks, lat = [], []
        for q in qs.questions:
            t0 = time.perf_counter()
            hits = r.search(q.question, 10)
            lat.append((time.perf_counter() - t0) * 1e3)
            ids = [h.chunk.doc_id for h in hits]
            ranks.append(ids.index(q.doc_id) + 1 if q.doc_id in ids else None)
        n = len(ranks)
        out[name] = {f"recall@{k}": round(sum(1 for x in ranks if x and x <= k) / n, 4) for k in (1, 5, 10)}
        out[name]["mrr"] = round(sum(1 / x for x in ranks if x) / n, 4)
        out[name]["latency_ms_p50"] = round(statistics.median(lat), 2)
        print(name, out[name], file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
