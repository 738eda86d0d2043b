"""Load: ``python app.py`` on a free loopback port over a copy of the seed index, many gradio_client users at once;
and readers opening the index while another process keeps upserting into it.

Figures (latency percentiles, throughput, server RSS) are printed and written to .cache/stress/summary.json. Speed
is reported, not asserted; correctness (zero errors, the single-user answer every time) and memory growth are.
"""
from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from qa.assistant import Assistant
from qa.settings import Settings
from qa.store import IndexStore

from conftest import ROOT, SEED_ID, SEED_QUESTION
from _stress import (child_env, env_int, free_port, offline_client, percentile, record, rss_kb,
                     wait_for_port)

pytestmark = pytest.mark.stress

CLIENTS = env_int("QA_STRESS_CLIENTS", 20)
PER_CLIENT = env_int("QA_STRESS_QUESTIONS", 25)
TOTAL = env_int("QA_STRESS_TOTAL", 2000)
BASELINE_AT = 100  # memory after this many questions is the baseline

QUESTIONS = [
    SEED_QUESTION, "How many foreign nationals were in the two networks?", "In which city were the networks dismantled?",
    "What law did Iraq pass in 2012?", "Who dismantled the two networks?", "What crimes were the networks involved in?",
    "Which ministry helped the intelligence service?", "Who announced the operation?",
    "On which day was the operation announced?", "How many members did the two networks have?",
    "What was seized from the members of the networks?", "Who were most of the victims?",
    "What has made human trafficking in Iraq worse?", "What has hindered the government's efforts?",
    "What do enforcement agencies often lack?", "Where are victims exploited for forced labor?",
    "What do the networks exploit?", "Is the implementation of the law consistent?",
    "What is needed to combat human trafficking effectively?", "What kind of country is Iraq for trafficking?",
    "What are critical components of an anti-trafficking strategy?", "What is the capital of France?",
    "Who won the football world cup in 2010?", "What is the boiling point of water?", "when was it passed?",
]


def _comparable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def server(seed_index, tmp_path_factory):
    """(url, process) for `python app.py --port N --index COPY`, started from the repository root."""
    index = tmp_path_factory.mktemp("load") / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    log = (tmp_path_factory.mktemp("load-log") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--index", str(index)], cwd=ROOT,
                            env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        started = wait_for_port(proc, port, timeout_s=300)
        print(f"\n[stress] app.py listening after {started:.1f} s (pid {proc.pid}, port {port})", flush=True)
        yield f"http://127.0.0.1:{port}/", proc, Path(log.name)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class _Load:
    """Counts questions across client threads; samples the server's RSS when the count passes BASELINE_AT."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.lock = threading.Lock()
        self.asked = 0
        self.rss_baseline_kb: int | None = None
        self.errors: list[str] = []
        self.mismatches: list[str] = []

    def done_one(self) -> None:
        with self.lock:
            self.asked += 1
            if self.rss_baseline_kb is None and self.asked >= BASELINE_AT:
                self.rss_baseline_kb = rss_kb(self.pid)


def _run_clients(url: str, load: _Load, n_clients: int, plan: list[list[tuple[str, int | None]]],
                 reference: dict[tuple[str, int | None], dict]) -> list[float]:
    """``n_clients`` threads, each with its own Client, asking its list of (question, k); returns latencies."""
    latencies: list[float] = []
    lat_lock = threading.Lock()
    barrier = threading.Barrier(n_clients)

    def user(n: int) -> None:
        try:
            client = offline_client(url)
        except Exception as e:  # noqa: BLE001 - every failure is counted, none may happen
            load.errors.append(f"client {n}: {type(e).__name__}: {e}")
            barrier.abort()
            return
        try:
            barrier.wait(timeout=300)
        except threading.BrokenBarrierError:
            return
        for q, k in plan[n]:
            t0 = time.perf_counter()
            try:
                d = client.predict(q, None, k, api_name="/chat")
            except Exception as e:  # noqa: BLE001
                load.errors.append(f"client {n} {q!r}: {type(e).__name__}: {e}")
                continue
            finally:
                load.done_one()
            with lat_lock:
                latencies.append(time.perf_counter() - t0)
            if _comparable(d) != reference[q, k]:
                load.mismatches.append(f"client {n} {q!r} k={k}: {d.get('text')!r} vs {reference[q, k]['text']!r}")

    threads = [threading.Thread(target=user, args=(n,)) for n in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return latencies


def test_concurrent_users_get_the_single_user_answers_and_memory_stays_flat(server):
    url, proc, _ = server
    load = _Load(proc.pid)
    client = offline_client(url)
    reference: dict[tuple[str, int | None], dict] = {}
    t0 = time.perf_counter()
    for k in (None, 1):  # the default k, and k=1 (cheaper: used to reach TOTAL questions within the time budget)
        for q in QUESTIONS:
            reference[q, k] = _comparable(client.predict(q, None, k, api_name="/chat"))
            load.done_one()
    single = (time.perf_counter() - t0) / (2 * len(QUESTIONS))
    assert reference[SEED_QUESTION, None]["text"] == "2012"
    assert reference["What is the capital of France?", None]["found"] is False

    rng = random.Random(7)
    plan = [rng.sample([(q, None) for q in QUESTIONS], len(QUESTIONS))[:PER_CLIENT] for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    latencies = _run_clients(url, load, CLIENTS, plan, reference)
    wall = time.perf_counter() - t0
    rss_after_concurrent = rss_kb(proc.pid)

    per_client = -(-max(0, TOTAL - load.asked) // CLIENTS)
    filler = [[(rng.choice(QUESTIONS), 1) for _ in range(per_client)] for _ in range(CLIENTS)]
    t1 = time.perf_counter()
    filler_latencies = _run_clients(url, load, CLIENTS, filler, reference)
    filler_wall = time.perf_counter() - t1
    rss_final = rss_kb(proc.pid)

    figures = {
        "clients": CLIENTS, "questions_per_client": PER_CLIENT, "questions_total": load.asked,
        "errors": len(load.errors), "answers_differing_from_single_user": len(load.mismatches),
        "single_user_mean_s": round(single, 3),
        "concurrent_p50_s": round(percentile(latencies, 50), 3), "concurrent_p95_s": round(percentile(latencies, 95), 3),
        "concurrent_max_s": round(max(latencies, default=float("nan")), 3),
        "concurrent_questions_per_s": round(len(latencies) / wall, 2),
        "k1_p50_s": round(percentile(filler_latencies, 50), 3), "k1_p95_s": round(percentile(filler_latencies, 95), 3),
        "k1_questions_per_s": round(len(filler_latencies) / filler_wall, 2),
        f"rss_after_{BASELINE_AT}_mb": round((load.rss_baseline_kb or 0) / 1024, 1),
        "rss_after_concurrent_mb": round(rss_after_concurrent / 1024, 1),
        f"rss_after_{load.asked}_mb": round(rss_final / 1024, 1),
        "rss_growth_pct": round(100 * (rss_final / load.rss_baseline_kb - 1), 1) if load.rss_baseline_kb else None,
        "first_errors": load.errors[:3], "first_mismatches": load.mismatches[:3],
    }
    record("load", figures)
    assert load.errors == []
    assert load.mismatches == []
    assert load.asked >= TOTAL
    assert rss_final <= 1.10 * load.rss_baseline_kb, f"RSS grew {figures['rss_growth_pct']}% from question {BASELINE_AT}"


_POISON = r'''
import sys
sys.path.insert(0, sys.argv[2])
from _stress import offline_client
from gradio_client.exceptions import AppError
try:
    d = offline_client(sys.argv[1]).predict("a " * 300, api_name="/chat")
    print("ANSWER", d["text"])
except AppError as e:
    print("APPERROR", e)
'''


@pytest.mark.xfail(strict=True, reason="qa/reader.py: a question of 253-380 word pieces makes the tokenizer panic "
                   "(pyo3 PanicException, a BaseException); the /chat request never completes (see report)")
def test_a_question_of_300_word_pieces_gets_an_answer_or_an_error(server):
    url = server[0]
    try:
        r = subprocess.run([sys.executable, "-c", _POISON, url, str(Path(__file__).parent)], env=child_env(),
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("no reply within 30 s: the request hangs")
    assert r.returncode == 0 and r.stdout.startswith(("ANSWER", "APPERROR")), r.stderr[-2000:]


def test_the_server_still_answers_after_that(server):
    url, proc, _ = server
    d = offline_client(url).predict(SEED_QUESTION, api_name="/chat")
    assert d["text"] == "2012" and proc.poll() is None


# ---------------------------------------------------------------- reads while another process writes

_WRITER = r'''
import sys
from qa.indexer import Indexer
from qa.settings import Settings
from qa.types import Document

root, n = sys.argv[1], int(sys.argv[2])
indexer = Indexer(Settings(index_dir=root))
for i in range(1, n + 1):
    text = f"Live update {i}\nThe tide gauge at Kelso read {1000 + i} millimetres this morning."
    indexer.upsert([Document("live-update", text, f"Live update {i}", None, "upload: live.txt")])
    print("wrote", i, flush=True)
'''


def test_readers_during_upserts_see_the_old_or_the_new_index(seed_index, tmp_path, encoder, span_reader):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    n_writes = env_int("QA_STRESS_UPSERTS", 25)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(index), str(n_writes)], env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    errors: list[str] = []
    counts: Counter[str] = Counter()
    settings = Settings(index_dir=str(index))

    def version(store: IndexStore) -> int:
        doc = store.documents.get("live-update")
        if doc is None:
            return 0
        m = re.fullmatch(r"Live update (\d+)\nThe tide gauge at Kelso read (\d+) millimetres this morning\.", doc.text)
        assert m and int(m[2]) == 1000 + int(m[1]), doc.text
        return int(m[1])

    def opener() -> None:  # a new reader each time, as `qa ask` does
        last = 0
        while not stop.is_set():
            try:
                store = IndexStore.open(index)
                assert SEED_ID in store.documents
                v = version(store)
                assert v >= last, f"went back from update {last} to {v}"
                last = v
                counts["opens"] += 1
                if counts["opens"] % 10 == 0:
                    a = Assistant(store, encoder, span_reader, settings)
                    assert a.ask(SEED_QUESTION).text == "2012"
                    counts["asks"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is recorded, none may happen
                errors.append(f"open: {type(e).__name__}: {e}")

    def long_lived() -> None:  # one reader that follows the writes, as the chat app does
        a = Assistant.open(index, settings=settings, reader=span_reader)
        while not stop.is_set():
            try:
                if a.reload_if_changed():
                    counts["reloads"] += 1
                ans = a.ask(SEED_QUESTION)
                assert ans.text == "2012"
                version(a.store)
                counts["long_lived_asks"] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"reload/ask: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=opener), threading.Thread(target=opener), threading.Thread(target=long_lived)]
    for t in threads:
        t.start()
    try:
        out, err = writer.communicate(timeout=900)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err[-3000:]
    assert out.count("wrote") == n_writes
    final = IndexStore.open(index)
    assert version(final) == n_writes
    # the known race (tests/test_corruption.py reproduces it deterministically): the generation a reader has just
    # read from CURRENT is pruned by the next write before the reader has opened its files
    race = [e for e in errors if e.startswith(("open: IndexCorrupt", "reload/ask: IndexCorrupt"))
            and ("No such file or directory" in e or "is missing" in e or "names a missing generation" in e)]
    others = [e for e in errors if e not in race]
    figures = {"upserts": n_writes, **counts, "errors": len(errors), "pruned_under_reader": len(race),
               "other_errors": len(others), "first_errors": (others or race)[:3]}
    record("reads_during_upserts", figures)
    assert others == []
    assert counts["opens"] > 0 and counts["long_lived_asks"] > 0
    if race:
        pytest.xfail(f"{len(race)} of {counts['opens'] + len(race)} opens reported the live index as damaged: a "
                     "write pruned the generation just read from CURRENT (qa/store.py; see report)")
