"""The feedback store (qa/feedback/store.py): answers and verdicts in SQLite, corrections checked against the report text,
schema migration, stale marking, purging, and 20 concurrent writers (threads and processes) losing nothing."""
from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from qa.errors import BadFeedback
from qa.feedback.store import MIGRATIONS, SCHEMA_VERSION, Correction, FeedbackStore, migrate
from qa.feedback.verdicts import give_verdict, make_correction, reader_version, record
from qa.feedback.export import format_row, iso_week, stats
from qa.types import Answer, Citation, Document

from conftest import SEED_ID, SEED_QUESTION

REPORT = Document("harbour", "Harbour log.\nIn 2031 the harbour recorded 913 inspections.\r\nThe port closed in May.",
                  "Harbour log")


def _answer(text: str | None = "913", question: str = "How many inspections?") -> Answer:
    s = REPORT.text.index("913")
    cit = Citation(REPORT.id, REPORT.title, None, "", REPORT.text[13:59], 13, 59, s if text else None,
                   s + 3 if text else None, 0.9)
    return Answer(question, text, 0.9, (cit,))


@pytest.fixture
def store(tmp_path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")


def test_answers_and_verdicts_round_trip(store):
    aid = store.record_answer(_answer(), index_generation="gen-000002", reader_version="span:reader:abc",
                              conversation_id="c1", user="ann")
    row = store.get(aid)
    assert (row.question, row.answer, row.confidence, row.doc_id, row.user) == (
        "How many inspections?", "913", 0.9, "harbour", "ann")
    assert row.citations[0]["answer_start"] == REPORT.text.index("913") and row.verdict is None
    assert store.rows() == []  # no verdict yet
    got = store.set_verdict(aid, "wrong", correction=Correction("2031", "harbour", 16, 20, "selected"),
                            comment="year, not count", user="bob")
    assert (got.verdict, got.correction.text, got.correction.start, got.comment, got.verdict_user) == (
        "wrong", "2031", 16, "year, not count", "bob")
    changed = store.set_verdict(aid, "right", user="bob")  # a verdict can be changed
    assert changed.verdict == "right" and changed.correction is None and changed.comment is None
    assert [h["verdict"] for h in store.history(aid)] == ["wrong", "right"]
    assert [r.answer_id for r in store.rows()] == [aid]
    assert store.counts_by_report() == {"harbour": {"right": 1}}


def test_bad_verdicts_are_refused_and_change_nothing(store):
    aid = store.record_answer(_answer())
    with pytest.raises(BadFeedback, match="unknown verdict 'meh'; use one of right, wrong"):
        store.set_verdict(aid, "meh")
    with pytest.raises(BadFeedback, match="no answer with id 'nope'"):
        store.set_verdict("nope", "right")
    with pytest.raises(BadFeedback, match="goes with the verdict 'wrong' or 'is_there'"):
        store.set_verdict(aid, "right", correction=Correction("913"))
    with pytest.raises(BadFeedback, match="limit is 2,000"):
        store.set_verdict(aid, "wrong", comment="x" * 2001)
    assert store.rows() == [] and store.history(aid) == []


def test_a_selected_span_is_checked_against_the_report_and_trimmed():
    docs, hashes = {REPORT.id: REPORT}, {REPORT.id: "h1"}
    row = _stored(_answer())
    s = REPORT.text.index("2031")
    c = make_correction(row, docs, hashes, doc_id="harbour", start=s - 3, end=s + 5)  # "In 2031 " -> trimmed
    assert (c.text, c.start, c.end, c.source, c.doc_sha256) == ("In 2031", s - 3, s + 4, "selected", "h1")
    assert REPORT.text[c.start:c.end] == c.text
    multi = make_correction(row, docs, hashes, doc_id="harbour", start=s, end=REPORT.text.index("closed"))
    assert "\r\n" in multi.text and multi.text == REPORT.text[multi.start:multi.end]  # exact, across a line end
    for kw, msg in [(dict(doc_id="gone", start=0, end=3), "no report 'gone' in the index"),
                    (dict(doc_id="harbour", start=5, end=500), "outside report 'harbour'"),
                    (dict(doc_id="harbour", start=4, end=4), "outside report"),
                    (dict(doc_id="harbour", start=12, end=13), "only spaces"),
                    (dict(doc_id="harbour", start=0), "doc_id, start and end together"),
                    (dict(doc_id="harbour", start="a", end="b"), "whole numbers"),
                    (dict(doc_id="harbour", start=s, end=s + 4, text="2032"), "is not what report 'harbour' holds")]:
        with pytest.raises(BadFeedback, match=msg):
            make_correction(row, docs, hashes, **kw)


def test_typed_answers_are_located_in_the_cited_passage_or_kept_as_typed():
    docs, hashes = {REPORT.id: REPORT}, {REPORT.id: "h1"}
    row = _stored(_answer())
    c = make_correction(row, docs, hashes, text="  2031 ")
    assert (c.text, c.doc_id, c.start, c.source) == ("2031", "harbour", REPORT.text.index("2031"), "located")
    outside = make_correction(row, docs, hashes, text="May")  # not in the cited passage, but in its report
    assert (outside.doc_id, outside.start, outside.source) == ("harbour", REPORT.text.index("May"), "located")
    typed = make_correction(row, docs, hashes, text="<b>nine hundred</b>")
    assert (typed.text, typed.doc_id, typed.start, typed.source) == ("<b>nine hundred</b>", None, None, "typed")
    assert make_correction(row, docs, hashes, text="   ") is None


def _stored(answer: Answer):
    import tempfile

    s = FeedbackStore(tempfile.mkdtemp() + "/f.sqlite3")
    return s.get(s.record_answer(answer))


def test_stale_when_the_report_is_removed_or_changed(store):
    a1 = store.record_answer(_answer())
    store.set_verdict(a1, "wrong", correction=Correction("2031", "harbour", 16, 20, "selected", "h1"))
    a2 = store.record_answer(_answer())
    store.set_verdict(a2, "right")
    assert [r.stale for r in store.rows(reports={"harbour": "h1"})] == [False, False]
    assert [r.stale for r in store.rows(reports={"harbour": "h2"})] == [True, False]  # changed: offsets may not hold
    assert [r.stale for r in store.rows(reports={})] == [True, True]  # removed: the verdicts stay, marked
    assert len(store.rows()) == 2 and "[stale]" in format_row(store.rows(reports={})[0])
    a3 = store.record_answer(_answer(), doc_hashes={"harbour": "h1"})  # the cited report's hash when answered
    store.set_verdict(a3, "right")
    assert [r.stale for r in store.rows(reports={"harbour": "h1"})] == [False, False, False]
    assert [r.stale for r in store.rows(reports={"harbour": "h3"})] == [True, False, True]


def test_filters_purge_and_per_user_deletion(store):
    ids = [store.record_answer(_answer(), user=u) for u in ("ann", "bob", "ann")]
    for aid, v in zip(ids, ("right", "not_in_reports", "wrong")):
        store.set_verdict(aid, v, user="bob" if v == "wrong" else None)
    with sqlite3.connect(store.path) as con:  # the first answer was asked, and judged, last year
        con.execute("UPDATE answers SET asked_at='2025-01-02T10:00:00Z' WHERE answer_id=?", (ids[0],))
        con.execute("UPDATE feedback SET updated_at='2025-01-03T10:00:00Z' WHERE answer_id=?", (ids[0],))
    assert [r.answer_id for r in store.rows(verdict="wrong")] == [ids[2]]
    assert [r.answer_id for r in store.rows(until="2025-01-03")] == [ids[0]]
    assert [r.answer_id for r in store.rows(since="2025-01-04")] == ids[1:]
    assert len(store.rows(report="harbour")) == 3 and store.rows(report="other") == []
    with pytest.raises(BadFeedback, match="not a date"):
        store.rows(since="last week")
    assert store.purge("2025-01-03") == 1 and store.count_answers() == 2
    assert store.history(ids[0]) == []  # the verdict and its history went with the answer
    assert store.delete_user("bob") == 2  # bob's answer, and bob's verdict on ann's answer
    assert store.count_answers() == 1 and store.rows() == [] and store.get(ids[2]).verdict is None


def test_migration_from_schema_version_1_keeps_every_verdict(tmp_path):
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
    con.execute("INSERT INTO answers VALUES ('a1','2026-01-05T09:00:00Z','ann',NULL,'How many?',NULL,'913',0.8,"
                "'[]','harbour','gen-000001','span')")
    con.execute('INSERT INTO feedback (answer_id, verdict, doc_id, start, "end", text, comment, user, created_at) '
                "VALUES ('a1','wrong','harbour',16,20,'2031','old','ann','2026-01-05T09:01:00Z')")
    con.commit()
    con.close()
    store = FeedbackStore(path)
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = store.rows()[0]
    assert (row.verdict, row.correction.text, row.correction.source, row.verdict_at) == (
        "wrong", "2031", "selected", "2026-01-05T09:01:00Z")
    assert [h["verdict"] for h in store.history("a1")] == ["wrong"]  # history backfilled
    with sqlite3.connect(path) as c:
        assert migrate(c) == 2  # already current: nothing to do


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(BadFeedback, match="schema version 3; this report-qa reads up to 2"):
        FeedbackStore(path)


def _write_many(path: str, who: str, n: int) -> None:
    store = FeedbackStore(path)
    for i in range(n):
        aid = store.record_answer(_answer(question=f"{who} question {i}"), user=who)
        store.set_verdict(aid, ("right", "wrong", "not_in_reports")[i % 3], user=who,
                          correction=Correction("2031", "harbour", 16, 20, "selected") if i % 3 == 1 else None)


def test_20_concurrent_threads_lose_nothing(store):
    threads = [threading.Thread(target=_write_many, args=(str(store.path), f"t{i}", 25)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.rows()
    assert len(rows) == store.count_answers() == 500
    assert {r.asked for r in rows} == {f"t{i} question {j}" for i in range(20) for j in range(25)}


def test_one_store_shared_by_threads_and_a_forked_child_keeps_a_connection_each(store):
    """As in the chat server, one store serves many threads: each thread keeps its own connection (opening and closing
    one an answer checkpointed the WAL each time); a forked child opens its own instead of using its parent's."""
    ids, used = [], {}  # thread number -> the connections it was given (held, so that no id is reused)
    together = threading.Barrier(8, timeout=60)  # a thread that fails breaks it for the others: no hang

    def ask(n: int) -> None:
        together.wait()  # all 8 threads alive at once
        for j in range(10):
            with store._connect() as con:
                used.setdefault(n, []).append(con)
            ids.append(store.record_answer(_answer(question=f"thread {n} question {j}")))
        together.wait()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == store.count_answers() == 80
    assert all(len({id(c) for c in cons}) == 1 for cons in used.values())  # kept across a thread's calls
    assert len({id(cons[0]) for cons in used.values()}) == 8  # and one of its own for each thread
    with store._connect() as mine:
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_answer_in_child, args=(store, id(mine)))
        child.start()
        child.join(timeout=120)
    assert child.exitcode == 0
    with store._connect() as con:
        assert con.execute("SELECT count(*) FROM answers WHERE question='from the child'").fetchone()[0] == 1
    assert store.count_answers() == 81


def test_a_failed_write_leaves_no_transaction_open_on_the_kept_connection(store):
    """A connection is kept a thread, so a write whose COMMIT the database refuses (here a deferred foreign key: the
    transaction stays open) must not leave that transaction for the thread's next write, which would be refused
    ("cannot start a transaction within a transaction"): the connection is dropped, and the next write opens a fresh
    one and works."""
    store.record_answer(_answer())
    with store._connect() as first:
        pass
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with store._write() as con:
            con.execute("PRAGMA defer_foreign_keys=ON")
            con.execute("INSERT INTO verdict_history (answer_id, verdict, at) VALUES ('none', 'right', 'x')")
    with store._connect() as second:
        assert second is not first and not second.in_transaction
    store.record_answer(_answer(question="after the failure"))
    assert store.count_answers() == 2


def _answer_in_child(store: FeedbackStore, parents_connection: int) -> None:
    with store._connect() as con:
        if id(con) == parents_connection:
            raise SystemExit(3)  # the parent's connection, across a fork
    store.record_answer(_answer(question="from the child"))


def test_20_concurrent_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "feedback.sqlite3")  # created by the writers themselves, all at once
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(path, f"p{i}", 25)) for i in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 20
    store = FeedbackStore(path)
    rows = store.rows()
    assert len(rows) == 500 and len({r.answer_id for r in rows}) == 500
    assert sum(len(store.history(r.answer_id)) for r in rows[:50]) == 50
    assert stats(rows)["all"] == {"n": 500, "right": 36.0, "wrong": 32.0, "not_in_reports": 32.0, "is_there": 0.0}


def test_stats_by_week_and_question_type(store):
    for q, v in [("When did the port close?", "right"), ("When was it built?", "wrong"),
                 ("How many inspections?", "not_in_reports")]:
        store.set_verdict(store.record_answer(_answer(question=q)), v)
    s = stats(store.rows())
    assert s["by_type"]["when"] == {"n": 2, "right": 50.0, "wrong": 50.0, "not_in_reports": 0.0, "is_there": 0.0}
    assert s["by_type"]["how many"]["not_in_reports"] == 100.0
    assert list(s["by_week"]) == [iso_week(store.rows()[0].verdict_at)] and iso_week("2026-11-29T10:00Z") == "2026-W48"


def test_list_lines_are_safe_for_a_terminal(store):
    aid = store.record_answer(_answer(question="How many\x1b[2J inspections?"))
    store.set_verdict(aid, "wrong", correction=Correction("9\x1b]0;pwned\x07"), comment="see\r\nline two\x1b[31m")
    line = format_row(store.rows()[0])
    assert "\x1b" not in line and "\n" not in line and "\r" not in line and "line two" in line


def test_record_and_give_verdict_against_the_seed_index(seed_assistant, tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    index = seed_assistant.store
    answer = seed_assistant.ask(SEED_QUESTION)
    aid = record(store, answer, index, seed_assistant.reader, conversation_id="c", user="ann")
    row = store.get(aid)
    assert row.index_generation == index.generation.name and row.reader_version == reader_version(
        seed_assistant.reader) and row.reader_version.startswith("span:reader:")
    text = index.documents[SEED_ID].text
    s = text.index("Anti-Human Trafficking Law")
    got = give_verdict(store, aid, "wrong", index, doc_id=SEED_ID, start=s, end=s + 26, comment="<i>law</i>")
    assert got.correction.text == "Anti-Human Trafficking Law" == text[got.correction.start:got.correction.end]
    assert got.correction.doc_sha256 == index.manifest["document_hashes"][SEED_ID]
    with pytest.raises(BadFeedback, match="goes with the verdict 'wrong' or 'is_there'"):
        give_verdict(store, aid, "right", index, text="2012")
