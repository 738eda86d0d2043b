"""Soak (``make soak``): SOAK_QUESTIONS questions (10,000) through ``/chat`` from SOAK_CLIENTS clients (20), while
another process adds and removes reports, with the server's RSS sampled every 100 questions.

Bound (issue 14): RSS at the last question within 3% of RSS at a fifth of the run (question 2,000 of 10,000), and
within 10% of RSS at question 100. The curve and the figures go to .cache/stress/summary.json ("soak") and, when
SOAK_OUT names a file, there as JSON (benchmarks/results/soak-*.json). Skipped unless QA_SOAK=1 (``make soak`` sets
it): it takes about an hour on 2 cores, so ``make stress`` does not run it.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, SEED_QUESTION, free_port, stop_process
from _stress import (_PLACES, _SUBJECTS, _THINGS, child_env, env_int, offline_client, percentile, record, rss_kb,
                     rss_parts_kb, wait_for_port, write_corpus)

pytestmark = [pytest.mark.stress,
              pytest.mark.skipif(os.environ.get("QA_SOAK") != "1", reason="the soak runs with `make soak` (QA_SOAK=1)")]

QUESTIONS = env_int("SOAK_QUESTIONS", 10_000)
CLIENTS = env_int("SOAK_CLIENTS", 20)
EVERY = 100  # RSS sampled every this many questions
WRITE_EVERY = env_int("SOAK_WRITE_EVERY", 250)  # a report added or removed every this many questions

_WRITER = r'''
import sys
from qa.store.indexer import Indexer
from qa.settings import Settings
from qa.types import Document

indexer = Indexer(Settings(index_dir=sys.argv[1]))
for line in sys.stdin:
    op, i = line.split()
    if op == "add":
        text = (f"Soak bulletin {i}\nThe harbour office of Kelso counted {1000 + int(i)} ships in week {i}. "
                f"Inspectors boarded {int(i) % 97 + 3} of them and found no fault.")
        indexer.upsert([Document(f"soak-{i}", text, f"Soak bulletin {i}", None, "upload: soak.txt")])
    else:
        indexer.remove([f"soak-{i}"])
    print("done", op, i, flush=True)
'''


class SoakWriter:
    """The soak's other process writing the index: ``after(n)`` once n questions are done adds report n/WRITE_EVERY
    every WRITE_EVERY questions and, every other time, removes the one before."""

    def __init__(self, index: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(index)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()
        self.done: list[str] = []
        self.failed: list[str] = []  # writes the writer did not confirm (it died, or answered something else)

    def after(self, n: int) -> None:
        if n % WRITE_EVERY:
            return
        i = n // WRITE_EVERY
        with self.lock:
            for op, j in [("add", i)] + ([("remove", i - 1)] if i % 2 == 0 and i > 0 else []):
                try:
                    self.proc.stdin.write(f"{op} {j}\n")
                    self.proc.stdin.flush()
                    reply = self.proc.stdout.readline().strip()
                except OSError as e:
                    reply = f"{type(e).__name__}: {e}"
                (self.done if reply == f"done {op} {j}" else self.failed).append(reply or f"no reply to {op} {j}")

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class Plan:
    """Questions handed out in order, each to whichever client thread asks next."""

    def __init__(self, questions: list[tuple[str, int | None]]) -> None:
        self.questions, self._next, self._lock = questions, 0, threading.Lock()

    def take(self) -> tuple[int, str, int | None] | None:
        """(its number from 0, the question, k), or None when every question is taken."""
        with self._lock:
            n = self._next
            if n >= len(self.questions):
                return None
            self._next += 1
        return (n, *self.questions[n])


def run_clients(user, clients: int) -> None:
    """``user()`` in ``clients`` threads at once, until each returns."""
    threads = [threading.Thread(target=user) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _questions(rng: random.Random) -> list[tuple[str, int | None]]:
    """Varied questions (lengths, subjects, answerable or not) with k drawn from 1, 3 and the default (Settings.k)."""
    pool = [SEED_QUESTION, "Who dismantled the two networks?", "Which ministry helped them?",
            "How many foreign nationals were in the two networks?", "What is the capital of France?",
            "What has made human trafficking in Iraq worse, according to the report on the networks?"]
    for place in _PLACES:
        for subject in _SUBJECTS:
            for thing in _THINGS[:3]:
                pool.append(f"How many {thing} did {subject} in {place} report?")
            pool.append(f"In which year did {subject} in {place} publish its figures?")
    pool += [f"How many ships did the harbour office of Kelso count in week {i}?" for i in range(40)]
    return [(rng.choice(pool), rng.choice((1, 1, 3, None))) for _ in range(QUESTIONS)]


def test_soak_memory_plateaus(tmp_path):
    corpus = write_corpus(tmp_path / "reports", n_reports=60)
    index = tmp_path / "index"
    subprocess.run([sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index)], env=child_env(),
                   check=True, capture_output=True, timeout=1800)
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--index", str(index)], cwd=ROOT,
                                  env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    writer = None
    try:
        writer = SoakWriter(index, env=child_env())
        wait_for_port(server, port, timeout_s=600)
        url = f"http://127.0.0.1:{port}/"
        plan = Plan(_questions(random.Random(14)))
        t_start = time.perf_counter()
        lock = threading.Lock()
        state = {"done": 0}
        rss: dict[int, int] = {}
        parts: dict[int, dict[str, int]] = {}
        latencies: list[float] = []
        errors: list[str] = []

        def user() -> None:
            client = offline_client(url, timeout_s=600)
            while (item := plan.take()) is not None:
                _, q, k = item
                t0 = time.perf_counter()
                try:
                    client.predict(q, None, k, api_name="/chat")
                except Exception as e:  # noqa: BLE001 - every failure is counted; none may happen
                    errors.append(f"{q!r}: {type(e).__name__}: {e}")
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    state["done"] += 1
                    done = state["done"]
                    if done % EVERY == 0:
                        rss[done] = rss_kb(server.pid)
                        parts[done] = rss_parts_kb(server.pid)
                        print(f"[soak] {done} questions, server RSS {rss[done] / 1024:.0f} MB, "
                              f"{done / (time.perf_counter() - t_start):.2f} questions/s, {len(errors)} errors",
                              flush=True)
                        if os.environ.get("SOAK_OUT"):  # the curve so far, in case the run is cut short
                            Path(os.environ["SOAK_OUT"]).write_text(json.dumps(
                                {"partial": True, "questions": done, "errors": len(errors),
                                 "rss_mb_every_100": [round(rss[n] / 1024, 1) for n in sorted(rss)]}))
                writer.after(done)

        run_clients(user, CLIENTS)
        wall = time.perf_counter() - t_start
        check = offline_client(url, timeout_s=600).predict(SEED_QUESTION, api_name="/chat")
    finally:
        try:
            if writer is not None:
                writer.close()
        finally:
            stop_process(server, timeout_s=30)

    marks = sorted(rss)
    first, fifth, last = marks[0], max(n for n in marks if n <= max(EVERY, QUESTIONS // 5)), marks[-1]
    mb = {n: round(rss[n] / 1024, 1) for n in marks}
    figures = {
        "questions": state["done"], "clients": CLIENTS, "errors": len(errors), "first_errors": errors[:3],
        "reports_written": len(writer.done), "questions_per_s": round(state["done"] / wall, 2),
        "p50_s": round(percentile(latencies, 50), 3), "p95_s": round(percentile(latencies, 95), 3),
        f"rss_mb_at_{first}": mb[first], f"rss_mb_at_{fifth}": mb[fifth], f"rss_mb_at_{last}": mb[last],
        f"growth_pct_from_{fifth}": round(100 * (rss[last] / rss[fifth] - 1), 2),
        f"growth_pct_from_{first}": round(100 * (rss[last] / rss[first] - 1), 2),
        "rss_mb_every_100": [mb[n] for n in marks],
        # what the RSS is made of: anonymous memory (heap: where a leak shows) and mapped files' pages
        "anon_mb_every_100": [round(parts[n].get("RssAnon", 0) / 1024, 1) for n in marks],
        "file_mb_every_100": [round(parts[n].get("RssFile", 0) / 1024, 1) for n in marks],
        "allocator": "see the server log's first lines", "server_log_head": log_path.read_text()[:600],
    }
    record("soak", figures)
    if os.environ.get("SOAK_OUT"):
        Path(os.environ["SOAK_OUT"]).write_text(json.dumps(figures, indent=1))
    assert errors == []
    assert writer.failed == [] and writer.done, writer.failed[:3]  # every write confirmed, and some made
    assert check["text"] == "2012"
    assert abs(rss[last] / rss[fifth] - 1) <= 0.03, f"RSS moved {figures[f'growth_pct_from_{fifth}']}% from {fifth}"
    assert abs(rss[last] / rss[first] - 1) <= 0.10, f"RSS moved {figures[f'growth_pct_from_{first}']}% from {first}"
