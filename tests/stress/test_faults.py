"""Crashes and concurrent writers: ``qa index`` killed with SIGKILL at seeded random points, and two writers at once.

After every kill the previous (or the new, if the switch had happened) index opens and answers the seed question,
and the next ``qa index`` completes and leaves one generation and no leftovers. Where each kill landed is read
from the index folder (and /proc/locks) at the moment of the kill and tallied.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from qa.assistant import Assistant
from qa.store.indexer import Indexer
from qa.settings import Settings
from qa.store.index import IndexStore
from qa.types import Document

from conftest import SEED_QUESTION
from _stress import child_env, env_int, holds_write_lock, qa_command, record, write_corpus

pytestmark = pytest.mark.stress

N_REPORTS = 60
KILLS = env_int("QA_STRESS_KILLS", 20)
PHASES = ("starting (before the write lock)", "under the lock: loading, chunking, embedding",
          "writing the new generation (.tmp-gen-*)", "generation renamed, CURRENT not yet switched",
          "CURRENT switched (before the process ended)")


def _live(index: Path) -> str:
    try:
        return (index / "CURRENT").read_text().strip()
    except OSError:
        return ""


def _state(index: Path, pid: int, before: str) -> str:
    """Which of PHASES a process writing ``index`` is in right now (``before``: CURRENT when it started)."""
    live = _live(index)
    if live != before:
        return PHASES[4]
    names = [p.name for p in index.iterdir()] if index.is_dir() else []
    if any(n.startswith("gen-") and n > before for n in names):  # a newer generation than the live one
        return PHASES[3]
    if any(n.startswith(".tmp-gen-") for n in names):
        return PHASES[2]
    return PHASES[1] if holds_write_lock(pid, index) else PHASES[0]


def _run_watched(cmd: list[str], index: Path, kill_after: float | None = None, once_in: str | None = None) -> dict:
    """Run ``cmd``; poll the index folder every few ms; SIGKILL it ``kill_after`` seconds after it started (or, with
    ``once_in``, after it was first seen in that phase) if it is still running."""
    before = _live(index)
    seen: dict[str, float] = {}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_in = None
    while proc.poll() is None:
        now = time.monotonic() - t0
        state = _state(index, proc.pid, before)
        seen.setdefault(state, now)
        start = 0.0 if once_in is None else seen.get(once_in, seen.get(PHASES[3], seen.get(PHASES[4])))
        if kill_after is not None and start is not None and now >= start + kill_after:
            killed_in = _state(index, proc.pid, before)
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002 if once_in else 0.01)
    out, err = proc.communicate(timeout=120)
    return {"rc": proc.returncode, "seconds": time.monotonic() - t0, "seen": seen, "killed_in": killed_in,
            "out": out, "err": err, "before": before}


def _no_leftovers(index: Path, live: str) -> None:
    """Only the lock, CURRENT, the live generation and at most the one before it (kept for readers that have just
    read the old CURRENT): nothing of a killed write is left."""
    names = sorted(p.name for p in index.iterdir())
    gens = [n for n in names if n.startswith("gen-")]
    assert set(names) - set(gens) == {".lock", "CURRENT"}, names
    assert live in gens and len(gens) <= 2 and max(gens) == live, names


def _check_whole(index: Path, span_reader, n_docs: int) -> str:
    """The live index opens, holds every report and answers the seed question."""
    store = IndexStore.open(index)
    assert len(store.documents) == n_docs
    answer = Assistant.open(index, settings=Settings(index_dir=str(index)), reader=span_reader).ask(SEED_QUESTION)
    assert answer.text == "2012"
    return store.generation.name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "reports", N_REPORTS)


def test_sigkill_at_random_points_never_breaks_the_index(corpus, tmp_path, span_reader):
    corpus = Path(shutil.copytree(corpus, tmp_path / "corpus"))
    index = tmp_path / "index"
    marker = corpus / "zz-round-marker.txt"
    marker.write_text("Round marker\nNo round has run yet.\n", encoding="utf-8")
    n_docs = N_REPORTS + 2
    full = _run_watched(qa_command("index", str(corpus), "--index", str(index), "-q"), index)
    assert full["rc"] == 0, full["err"]
    duration = full["seconds"]
    write_from = full["seen"].get(PHASES[2], duration * 0.8)
    print(f"\n[stress] a full `qa index` of {n_docs} reports: {duration:.1f} s; phases first seen at "
          + ", ".join(f"{k}: {v:.2f} s" for k, v in full["seen"].items()), flush=True)
    _check_whole(index, span_reader, n_docs)

    rng = random.Random(20240601)
    landed: Counter[str] = Counter()
    missed = 0  # the run had finished before its kill time
    rounds = 0
    while sum(landed.values()) < KILLS and rounds < 2 * KILLS:
        rounds += 1
        # a third of the kills anywhere in a run; a third around the time the calibration run began writing its
        # generation; a third 0-60 ms after this run's .tmp-gen-* appeared (the write takes tens of ms: timed kills
        # alone would seldom land in it, and run-to-run jitter is larger than the window)
        once_in = None
        if rounds % 3 == 1:
            delay = rng.uniform(0, duration)
        elif rounds % 3 == 2:
            delay = min(duration, max(0.0, rng.gauss(write_from, 0.4)))
        else:
            delay, once_in = rng.uniform(0, 0.06), PHASES[2]
        killed = _run_watched(qa_command("index", "--rebuild", str(corpus), "--index", str(index), "-q"), index,
                              kill_after=delay, once_in=once_in)
        if killed["killed_in"] is None:
            assert killed["rc"] == 0, killed["err"]
            missed += 1
        else:
            assert killed["rc"] == -signal.SIGKILL
            landed[killed["killed_in"]] += 1
        gen_after_kill = _check_whole(index, span_reader, n_docs)
        if killed["killed_in"] in PHASES[:4]:
            assert gen_after_kill == killed["before"]  # the killed run left the previous index live
        else:
            assert gen_after_kill != killed["before"]  # it had switched CURRENT to its new, complete generation
        # the next run completes (an incremental one: the marker changed) and cleans up after the killed one
        marker.write_text(f"Round marker\nRound {rounds} has run; its control value was {rounds * 7}.\n",
                          encoding="utf-8")
        nxt = _run_watched(qa_command("index", str(corpus), "--index", str(index), "-q"), index)
        assert nxt["rc"] == 0, nxt["err"]
        assert "Traceback" not in nxt["err"]
        assert nxt["out"].startswith(f"{n_docs} reports")
        store = IndexStore.open(index)
        assert len(store.documents) == n_docs and f"Round {rounds} has run" in store.documents["zz-round-marker"].text
        _no_leftovers(index, store.generation.name)
    figures = {"kills_landed": sum(landed.values()), "runs_finished_before_their_kill": missed,
               "full_run_s": round(duration, 2), "kills_by_phase": {p: landed[p] for p in PHASES},
               "survived": sum(landed.values()), "recoveries_completed": rounds}
    record("faults", figures)
    assert sum(landed.values()) >= KILLS


def test_two_writers_second_is_refused_or_waits_and_index_stays_whole(corpus, tmp_path, encoder, span_reader):
    index = tmp_path / "index"
    n_docs = N_REPORTS + 1
    assert subprocess.run(qa_command("index", str(corpus), "--index", str(index), "-q"), env=child_env(),
                          capture_output=True, timeout=600).returncode == 0

    # B: a second `qa index`, imported and waiting, started the moment A holds the write lock
    go, ready = tmp_path / "go", tmp_path / "ready"
    b_src = (f"import os, sys, time\nfrom qa.cli import main\nimport qa.store.indexer\nopen({str(ready)!r}, 'w').close()\n"
             f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.01)\n"
             f"sys.exit(main(['index', {str(corpus)!r}, '--index', {str(index)!r}, '-q']))\n")
    b = subprocess.Popen([sys.executable, "-c", b_src], env=child_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    a = None
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert b.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        a = subprocess.Popen(qa_command("index", "--rebuild", str(corpus), "--index", str(index), "-q"),
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not holds_write_lock(a.pid, index):
            assert a.poll() is None and time.monotonic() < deadline, "A never took the write lock"
            time.sleep(0.005)
        go.touch()
        b_out, b_err = b.communicate(timeout=300)
        a_held_after_b = holds_write_lock(a.pid, index)
        a_out, a_err = a.communicate(timeout=600)
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert a.returncode == 0, a_err
    assert b.returncode == 2, (b_out, b_err)
    assert a_held_after_b  # B was refused while A was writing, not after
    assert b_out == "" and "Traceback" not in b_err
    assert b_err.strip().splitlines() == [
        f"error: another process is writing the index at {index}; wait for it to finish and try again"]
    _no_leftovers(index, _check_whole(index, span_reader, n_docs))

    # the library's writers wait instead: an upsert started while A rebuilds lands after it, and keeps A's work
    a = subprocess.Popen(qa_command("index", "--rebuild", str(corpus), "--index", str(index), "-q"),
                         env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not holds_write_lock(a.pid, index):
            assert a.poll() is None and time.monotonic() < deadline, "A never took the write lock"
            time.sleep(0.005)
        t0 = time.monotonic()
        late = Document("late-upload", "Late upload\nThe Kelso weir gauge read 2,417 millimetres on Monday.",
                        "Late upload", None, "upload: late.txt")
        report = Indexer(Settings(index_dir=str(index)), encoder).upsert([late], lock_wait_s=600)
        waited = time.monotonic() - t0
        a_rc = a.wait(timeout=600)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert a_rc == 0 and report.added == ["late-upload"] and report.n_documents == n_docs + 1
    _check_whole(index, span_reader, n_docs + 1)
    record("concurrent_writers", {"second_cli_writer": "refused with IndexLocked (exit 2, one line)",
                                  "library_upsert_waited_s": round(waited, 2), "index_whole": True})
