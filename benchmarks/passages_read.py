"""Ask latency by passages read, on one index, the settings alternated question by question.

    .venv/bin/python benchmarks/passages_read.py --k 5 8 10 --questions 100 > benchmarks/results/passages-read-bbc.json

Indexes the corpus (default: ../shared/data/bbc-news, as ``qa bench``) into ``--work`` once (a later run reuses it:
indexing syncs), then asks ``qa bench``'s reproducible latency questions, each with every ``k`` in turn (the order
rotating from question to question), so that every setting meets the same machine load. Prints medians and p95 of
``ask`` end to end and of its reading stage for each ``k``, and each ``k``'s ratio to the first: the figures a change
of ``Settings.k`` is held against (``qa bench``'s "reading <= 150 ms" and "ask p50 <= 250, p95 <= 500").
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.assistant import Assistant, make_reader  # noqa: E402
from qa.eval.bench import _default_corpus, _pct, _questions  # noqa: E402
from qa.ingest.files import load_paths  # noqa: E402
from qa.models.encoder import Encoder  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store.index import IndexStore  # noqa: E402
from qa.store.indexer import Indexer  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--work", default=".cache/passages-read")
    p.add_argument("--k", type=int, nargs="+", default=[5, 8])
    p.add_argument("--questions", type=int, default=100)
    a = p.parse_args(argv)
    corpus = a.corpus or _default_corpus()
    s = Settings(index_dir=str(Path(a.work) / "index"))
    encoder = Encoder(device=s.device, precision=s.precision)
    t0 = time.perf_counter()
    Indexer(s, encoder).sync([corpus])
    index_s = time.perf_counter() - t0
    # the encoder that indexed also embeds the questions: one load of each model
    assistant = Assistant(IndexStore.open(s.index_dir), encoder, make_reader(s), s)
    assistant.warm_up()
    qs = _questions(load_paths([corpus]).documents, a.questions)
    for q in qs[:3]:
        for k in a.k:
            assistant.ask(q, k=k)
    totals: dict[int, list[float]] = {k: [] for k in a.k}
    reading: dict[int, list[float]] = {k: [] for k in a.k}
    for n, q in enumerate(qs):
        for k in a.k[n % len(a.k):] + a.k[: n % len(a.k)]:
            t = time.perf_counter()
            ans = assistant.ask(q, k=k)
            totals[k].append((time.perf_counter() - t) * 1e3)
            reading[k].append(ans.timings_ms["reading"])
    first = a.k[0]
    out = {"corpus": corpus, "questions": len(qs), "index_s": round(index_s, 1), "by_k": {}}
    for k in a.k:
        out["by_k"][str(k)] = {
            "ask_p50": round(statistics.median(totals[k]), 1), "ask_p95": round(_pct(totals[k], 95), 1),
            "reading_p50": round(statistics.median(reading[k]), 1), "reading_p95": round(_pct(reading[k], 95), 1),
            "reading_p50_over_first": round(statistics.median(reading[k]) / statistics.median(reading[first]), 3)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
