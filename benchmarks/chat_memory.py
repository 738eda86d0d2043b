"""The soak's load without Gradio: the same 2,000 first questions of ``make soak`` (its plan, its 60-report corpus and
its writer adding and removing a report every 250 questions), asked of ``ChatService.turn`` in-process from 20
threads, with anonymous resident memory (RssAnon) every 200. Where the chat server's growth is: in the model path
and index reloads (this), or in the web layer around them (the soak minus this).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
      MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000 \
      .venv/bin/python benchmarks/chat_memory.py        # builds /tmp/inproc/index on first use

2026-12-02, AMX, bf16, jemalloc, two runs: RssAnon at question 200 / 2,000: 396 / 427 and 398 / 421 MB (without
the writer: 406 / 408); the chat server under ``make soak`` went 491 (question 100) -> 610 MB over the same questions.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "stress"), str(ROOT / "tests"), str(ROOT)]
import test_soak as soak  # noqa: E402  (the soak's question plan and writer)
from _stress import rss_parts_kb, write_corpus  # noqa: E402
from qa.ui.service import ChatService  # noqa: E402

WORK = Path("/tmp/inproc")
QUESTIONS, CLIENTS, EVERY = 2000, 20, 200


def anon_mb() -> int:
    return rss_parts_kb(os.getpid())["RssAnon"] // 1024


def soak_index(index: Path = WORK / "index") -> Path:
    """The soak's 60-report corpus indexed at ``index``, built on first use."""
    if not index.exists():
        corpus = write_corpus(WORK / "reports", n_reports=60)
        subprocess.run([sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index)], check=True,
                       capture_output=True)
    return index


def main() -> int:
    index = soak_index()
    svc = ChatService(str(index), seeds=None)
    svc.assistant.warm_up(every_shape=True)
    plan = soak.Plan(soak._questions(random.Random(14))[:QUESTIONS])
    writer = soak.SoakWriter(index)

    def user() -> None:
        messages, history = [], []
        while (item := plan.take()) is not None:
            n, question, k = item
            turn = svc.turn(question, messages, history, k or svc.assistant.settings.k, svc.assistant.threshold,
                            None, None, None, None)
            messages, history = turn.messages, turn.history
            if (n + 1) % EVERY == 0:
                print(n + 1, "questions, RssAnon", anon_mb(), "MB", flush=True)
            writer.after(n + 1)

    print("start, RssAnon", anon_mb(), "MB", flush=True)
    soak.run_clients(user, CLIENTS)
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
