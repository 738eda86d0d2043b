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
from qa.store.index import IndexStore

from conftest import ROOT, SEED_ID, SEED_QUESTION, free_port, stop_process
from _stress import (child_env, env_int, offline_client, percentile, record, rss_kb,
                     wait_for_port)

pytestmark = pytest.mark.stress

CLIENTS = env_int("QA_STRESS_CLIENTS", 20)
PER_CLIENT = env_int("QA_STRESS_QUESTIONS", 25)
TOTAL = env_int("QA_STRESS_TOTAL", 2000)
BASELINE_AT = 100  # memory after this many questions is the baseline (and is sampled every this many)

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
    return {k: v for k, v in d.items() if k not in ("timings_ms", "answer_id", "conversation_id")}  # these vary by call


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
        stop_process(proc, timeout_s=30)
        log.close()


class _Load:
    """Counts questions across client threads; samples the server's RSS every BASELINE_AT questions."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.lock = threading.Lock()
        self.asked = 0
        self.rss_kb: dict[int, int] = {}  # questions asked -> RSS of the server then
        self.errors: list[str] = []
        self.answers: list[tuple[int, str, int | None, dict]] = []  # (client, question, k, answer without timings)

    def done_one(self) -> None:
        with self.lock:
            self.asked += 1
            if self.asked % BASELINE_AT == 0:
                self.rss_kb[self.asked] = rss_kb(self.pid)


def _run_clients(url: str, load: _Load, n_clients: int, plan: list[list[tuple[str, int | None]]]) -> list[float]:
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
                load.answers.append((n, q, k, _comparable(d)))

    threads = [threading.Thread(target=user, args=(n,)) for n in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return latencies


def test_concurrent_users_get_the_single_user_answers_and_memory_stays_flat(server):
    """CLIENTS users at once, PER_CLIENT questions each with the default settings, then more with k=1 (cheaper) up
    to TOTAL questions; then each question once by a single user. Memory is compared from question BASELINE_AT on,
    so the baseline is taken under the same concurrent load as the end."""
    url, proc, _ = server
    load = _Load(proc.pid)
    n_reference = 2 * len(QUESTIONS)
    rng = random.Random(7)
    plan = [rng.sample([(q, None) for q in QUESTIONS], len(QUESTIONS))[:PER_CLIENT] for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    latencies = _run_clients(url, load, CLIENTS, plan)
    wall = time.perf_counter() - t0
    rss_after_concurrent = rss_kb(proc.pid)

    per_client = -(-max(0, TOTAL - load.asked - n_reference) // CLIENTS)
    filler = [[(rng.choice(QUESTIONS), 1) for _ in range(per_client)] for _ in range(CLIENTS)]
    t1 = time.perf_counter()
    filler_latencies = _run_clients(url, load, CLIENTS, filler)
    filler_wall = time.perf_counter() - t1

    client = offline_client(url)
    reference: dict[tuple[str, int | None], dict] = {}
    t2 = time.perf_counter()
    for k in (None, 1):  # the default k, and k=1
        for q in QUESTIONS:
            reference[q, k] = _comparable(client.predict(q, None, k, api_name="/chat"))
            load.done_one()
    single = (time.perf_counter() - t2) / n_reference
    rss_final = rss_kb(proc.pid)
    mismatches = [f"client {n} {q!r} k={k}: {d.get('text')!r} vs {reference[q, k]['text']!r}"
                  for n, q, k, d in load.answers if d != reference[q, k]]
    assert reference[SEED_QUESTION, None]["text"] == "2012"
    assert reference["What is the capital of France?", None]["found"] is False

    baseline = load.rss_kb.get(BASELINE_AT)
    mid = max((n for n in load.rss_kb if n <= load.asked // 2), default=BASELINE_AT)
    figures = {
        "clients": CLIENTS, "questions_per_client": PER_CLIENT, "questions_total": load.asked,
        "errors": len(load.errors), "answers_differing_from_single_user": len(mismatches),
        "single_user_mean_s": round(single, 3),
        "concurrent_p50_s": round(percentile(latencies, 50), 3), "concurrent_p95_s": round(percentile(latencies, 95), 3),
        "concurrent_max_s": round(max(latencies, default=float("nan")), 3),
        "concurrent_questions_per_s": round(len(latencies) / wall, 2),
        "k1_p50_s": round(percentile(filler_latencies, 50), 3), "k1_p95_s": round(percentile(filler_latencies, 95), 3),
        "k1_questions_per_s": round(len(filler_latencies) / filler_wall, 2),
        f"rss_after_{BASELINE_AT}_mb": round((baseline or 0) / 1024, 1),
        "rss_after_concurrent_mb": round(rss_after_concurrent / 1024, 1),
        f"rss_after_{load.asked}_mb": round(rss_final / 1024, 1),
        "rss_growth_pct": round(100 * (rss_final / baseline - 1), 1) if baseline else None,
        f"rss_growth_second_half_pct (from question {mid})": round(100 * (rss_final / load.rss_kb[mid] - 1), 1)
        if mid in load.rss_kb else None,
        "rss_mb_every_100": [round(load.rss_kb[n] / 1024) for n in sorted(load.rss_kb)],
        "first_errors": load.errors[:3], "first_mismatches": mismatches[:3],
    }
    record("load", figures)
    assert load.errors == []
    assert mismatches == []
    assert load.asked >= TOTAL
    assert rss_final <= 1.10 * baseline, f"RSS grew {figures['rss_growth_pct']}% from question {BASELINE_AT}"


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


def test_a_question_of_300_word_pieces_gets_a_reply(server):
    """It used to make the tokenizer panic (a BaseException): the /chat request never completed."""
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
from qa.store.indexer import Indexer
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
    # the race tests/test_corruption.py reproduces deterministically: a write prunes the generation a reader has
    # just read from CURRENT (qa/store/index.py now keeps the previous generation and retries); counted apart to report it
    race = [e for e in errors if "IndexCorrupt" in e.split(":")[1]
            and ("No such file or directory" in e or "is missing" in e or "names a missing generation" in e)]
    figures = {"upserts": n_writes, **counts, "errors": len(errors), "pruned_under_reader": len(race),
               "other_errors": len(errors) - len(race), "first_errors": errors[:3]}
    record("reads_during_upserts", figures)
    assert errors == []
    assert counts["opens"] > 0 and counts["long_lived_asks"] > 0
