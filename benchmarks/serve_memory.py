"""Where the serving process's memory goes: the span reader and the query encoder over many varied questions.

    PYTHONPATH=. .venv/bin/python benchmarks/serve_memory.py [--reads 1200] [--threads 4] [--trim] [--tracemalloc]
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 PYTHONPATH=. .venv/bin/python benchmarks/serve_memory.py

Each read embeds a varied question and reads five passages of 200-1,400 characters from anywhere in the seed report
(so every read has other input widths), from ``--threads`` threads as Gradio's workers would. Every 100 reads it
prints RSS, glibc's heap (``mallinfo2``: bytes in use, bytes free inside the arenas, mmapped), and with
``--tracemalloc`` the Python heap. ``--trim`` calls ``malloc_trim(0)`` every 100 reads. Run from the repository root
(``PYTHONPATH`` picks the tree measured). The figures are in docs/reliability.md.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import threading
import time
import tracemalloc
from pathlib import Path

QUESTIONS = ["When did Iraq pass its law?", "Who dismantled the networks?", "How many members did the two networks have?",
             "What was seized?", "Which ministry helped the intelligence service in the operation against them?",
             "What do enforcement agencies often lack when they fight human trafficking in the region?"]


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                               "uordblks", "fordblks", "keepcost")]


def heap() -> dict:
    """glibc's view of its heap, MB (all zero under another allocator, which leaves glibc's heap unused)."""
    libc = ctypes.CDLL("libc.so.6")
    try:
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
    except AttributeError:
        return {}
    mb = 2**20
    return {"in_use": round(m.uordblks / mb, 1), "free_in_arenas": round(m.fordblks / mb, 1),
            "mmapped": round(m.hblkhd / mb, 1)}


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    from qa.models.encoder import Encoder
    from qa.reading.reader import SpanReader
    from qa.types import Chunk

    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=1200)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--trim", action="store_true")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    text = next(Path("seeds").glob("*.txt")).read_text() * 3
    reader, encoder = SpanReader(), Encoder()
    reader.warm_up()
    encoder.warm_up()
    libc = ctypes.CDLL("libc.so.6")
    if args.tracemalloc:
        tracemalloc.start()
    lock = threading.Lock()
    done = [0]
    curve: list[dict] = []
    t0 = time.perf_counter()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            with lock:
                if done[0] >= args.reads:
                    return
            chunks = []
            for j in range(5):
                a, n = rng.randrange(0, len(text) - 1500), rng.randrange(200, 1400)
                chunks.append(Chunk("d", j, a, a + n, text[a : a + n]))
            q = rng.choice(QUESTIONS) + " " + " ".join(rng.choice(QUESTIONS).split()[: rng.randrange(12)])
            encoder.encode([q])
            reader.read(q, chunks)
            with lock:
                done[0] += 1
                if done[0] % 100 == 0:
                    if args.trim:
                        libc.malloc_trim(0)
                    row = {"reads": done[0], "rss_mb": round(rss_mb(), 1), **heap()}
                    if args.tracemalloc:
                        row["python_heap_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
                    curve.append(row)
                    print(json.dumps(row), flush=True)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next(r for r in curve if r["reads"] >= 200)
    print(json.dumps({"label": args.label, "threads": args.threads, "trim": args.trim,
                      "ld_preload": os.environ.get("LD_PRELOAD", ""), "reads": args.reads,
                      "rss_mb_at_200": first["rss_mb"], "rss_mb_end": curve[-1]["rss_mb"],
                      "growth_from_200_mb": round(curve[-1]["rss_mb"] - first["rss_mb"], 1),
                      "s_per_read": round((time.perf_counter() - t0) / args.reads, 4),
                      "rss_curve_mb": [r["rss_mb"] for r in curve]}), flush=True)


if __name__ == "__main__":
    main()
