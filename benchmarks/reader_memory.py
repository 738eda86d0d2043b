"""Resident memory of the span reader over many reads of varied passages, in one thread.

    .venv/bin/python benchmarks/reader_memory.py lean   # the forward pass of qa/models/lean_bert.py, serving's only one

Prints RSS (MB) after reads 0, 200, ..., 1000 and 1199, and the mean time of a read over the last 600. Written to
look into the memory growth of the stress suite (docs/reliability.md); run from the repository root.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from qa.reading.reader import SpanReader
from qa.types import Chunk

READS = 1200
QUESTIONS = ["When did Iraq pass its law?", "Who dismantled the networks?",
             "How many members did the two networks have?"]


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def main(kind: str) -> int:
    if kind != "lean":  # "tf" (transformers' forward pass) went with the one inference stack
        raise SystemExit("usage: reader_memory.py lean")
    text = next(Path("seeds").glob("*.txt")).read_text() * 3
    reader = SpanReader()
    reader.warm_up()
    rng = random.Random(0)
    marks, t_last = [], 0.0
    for i in range(READS):
        chunks = []
        for j in range(5):  # five passages of 200-1,400 characters from anywhere in the text
            a, n = rng.randrange(0, len(text) - 1500), rng.randrange(200, 1400)
            chunks.append(Chunk("d", j, a, a + n, text[a : a + n]))
        if i == READS // 2:
            t_last = time.perf_counter()
        reader.read(rng.choice(QUESTIONS) + " " * rng.randrange(3), chunks)
        if i % 200 == 0 or i == READS - 1:
            marks.append(round(rss_mb()))
    ms = (time.perf_counter() - t_last) / (READS - READS // 2) * 1e3
    print(kind, marks, "ms per read (last half):", round(ms, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "lean"))
