"""Resident memory as the span reader meets new (batch, width) input shapes: 144 shapes (12 widths x batches of
1-12) in random order, twice; RSS every 24 forward passes. Memory that a new shape leaves behind stays; a shape seen
before costs nothing (qa/models/shapes.py).

    .venv/bin/python benchmarks/shape_memory.py                         # glibc's malloc
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,\
      muzzy_decay_ms:1000 .venv/bin/python benchmarks/shape_memory.py   # jemalloc, as the servers run

2026-12-02, Intel Xeon with AMX, bf16: glibc 338 -> 809 MB after the 144 shapes, 812 after all 288 passes; jemalloc
337 -> 589 / 577 MB; jemalloc with ONEDNN_PRIMITIVE_CACHE_CAPACITY=16: 336 -> 466 / 468 MB.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "stress"), str(ROOT)]
from _stress import rss_kb  # noqa: E402
from qa.models.files import place, reader_model_path  # noqa: E402
from qa.reading.reader import load_span_model  # noqa: E402


def rss_mb() -> int:
    return rss_kb(os.getpid()) // 1024


def main() -> int:
    device, dtype = place("auto", "auto")
    enc, head = load_span_model(reader_model_path(), device, dtype)
    print("dtype", dtype, "oneDNN cache", os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "default"), "rss",
          rss_mb(), "MB", flush=True)
    shapes = [(b, w) for b in range(1, 13) for w in range(32, 385, 32)]
    random.Random(0).shuffle(shapes)
    t0 = time.time()
    with torch.inference_mode():
        for i, (b, w) in enumerate(shapes * 2):
            ids = torch.randint(1000, 2000, (b, w))
            head(enc(ids, torch.ones_like(ids), torch.zeros_like(ids)).float())
            if i % 24 == 23:
                print(i + 1, "passes", rss_mb(), "MB", round(time.time() - t0, 1), "s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
