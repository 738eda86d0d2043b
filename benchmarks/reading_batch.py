"""Reading time with windows batched (16 at a time) against each window alone, on the seed questions: 7 questions
x 5 passages (28 windows), medians of 5 rounds, each setting twice in alternation (qa/models/shapes.py).

    qa index seeds/ --index /tmp/seed && .venv/bin/python benchmarks/reading_batch.py /tmp/seed

2026-12-02, 2-core Intel Xeon with AMX, bf16 (before windows were made to run alone on a CPU): 0.230 / 0.235 s
batched against 0.267 / 0.250 s alone, +7-16%.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qa import Assistant  # noqa: E402
from qa.reading.reader import SpanReader  # noqa: E402

QUESTIONS = ["When did Iraq pass its anti-trafficking law?", "Who dismantled the two networks?",
             "Which ministry helped them?", "How many foreign nationals were in the two networks?",
             "What crimes were the networks involved in?", "Where are victims exploited for forced labor?",
             "What do enforcement agencies often lack?"]


def main(index: str) -> int:
    a = Assistant.open(index)
    a.warm_up()
    reads = [(q, [h.chunk for h in a.retrieve(q, 5)]) for q in QUESTIONS]
    for cap in (16, 1, 16, 1):
        r = SpanReader()
        r.warm_up()
        r._batch_cap = cap  # the setting compared: windows per forward pass
        r.warm_up_shapes()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for q, chunks in reads:
                r.read(q, chunks)
            times.append(time.perf_counter() - t)
        print(f"windows per pass {cap}: median {statistics.median(times):.4f} s for {len(QUESTIONS)} questions",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "index"))
