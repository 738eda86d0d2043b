"""Staff verdicts on the chat's answers, kept in SQLite beside the index: ``FeedbackStore`` (checking a verdict
against the index that answered: ``qa/feedback/verdicts.py``).

Every answer the chat gives is recorded (question, the resolved question of a follow-up, conversation, answer,
citations with their report offsets, confidence, index generation, reader version, user); a person may then give
it a verdict: ``right``, ``wrong``, ``not_in_reports`` (an answer where the reports hold none) or ``is_there`` (a
"not found" whose answer the reports do hold), with the right answer as a span of a report (report id and character
offsets, its text taken from the report) or typed, and a comment. A verdict can be changed; each change is kept in
``verdict_history``.

The database is one file (``index/feedback.sqlite3`` by default: beside the generations, so rebuilding or
switching generations never touches it) in WAL mode; each thread has its own connection with a busy timeout, and
every write is one ``BEGIN IMMEDIATE`` transaction, so threads and processes can write at once and lose nothing.
The schema version is SQLite's ``user_version``; :data:`MIGRATIONS` brings an older file up to date on open.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BadFeedback
from qa.types import Answer

log = logging.getLogger(__name__)

DB_NAME = "feedback.sqlite3"
VERDICTS = ("right", "wrong", "not_in_reports", "is_there")
CORRECTABLE = ("wrong", "is_there")  # the verdicts that may carry the right answer
MAX_COMMENT_CHARS = 2000
MAX_ANSWER_CHARS = 1000
BUSY_TIMEOUT_MS = 30_000

# version n is reached by running MIGRATIONS[n - 1] on a file at version n - 1 (user_version 0 = empty file)
MIGRATIONS: tuple[str, ...] = (
    # 1: answers and one verdict per answer
    """
    CREATE TABLE answers (
        answer_id TEXT PRIMARY KEY, asked_at TEXT NOT NULL, user TEXT, conversation_id TEXT,
        question TEXT NOT NULL, resolved_question TEXT, answer TEXT, confidence REAL NOT NULL,
        citations TEXT NOT NULL, doc_id TEXT, index_generation TEXT, reader_version TEXT);
    CREATE TABLE feedback (
        answer_id TEXT PRIMARY KEY REFERENCES answers(answer_id) ON DELETE CASCADE,
        verdict TEXT NOT NULL, doc_id TEXT, start INTEGER, "end" INTEGER, text TEXT, comment TEXT,
        user TEXT, created_at TEXT NOT NULL);
    CREATE INDEX answers_asked_at ON answers(asked_at);
    """,
    # 2: verdicts can be changed: when, how the answer was given, the report's hash; the history of changes
    """
    ALTER TABLE feedback ADD COLUMN updated_at TEXT;
    ALTER TABLE feedback ADD COLUMN span_source TEXT;
    ALTER TABLE feedback ADD COLUMN doc_sha256 TEXT;
    UPDATE feedback SET updated_at = created_at,
        span_source = CASE WHEN start IS NOT NULL THEN 'selected' WHEN text IS NOT NULL THEN 'typed' END;
    CREATE TABLE verdict_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(answer_id) ON DELETE CASCADE,
        verdict TEXT NOT NULL, doc_id TEXT, start INTEGER, "end" INTEGER, text TEXT, comment TEXT, user TEXT,
        at TEXT NOT NULL);
    INSERT INTO verdict_history (answer_id, verdict, doc_id, start, "end", text, comment, user, at)
        SELECT answer_id, verdict, doc_id, start, "end", text, comment, user, created_at FROM feedback;
    CREATE INDEX feedback_updated_at ON feedback(updated_at);
    CREATE INDEX answers_user ON answers(user);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_date(value: str, what: str = "date") -> str:
    """A YYYY-MM-DD date, checked; BadFeedback otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value or ""):
        raise BadFeedback(f"{what} {value!r} is not a date; write YYYY-MM-DD")
    try:
        time.strptime(value, "%Y-%m-%d")
    except ValueError as e:
        raise BadFeedback(f"{what} {value!r} is not a date ({e})") from None
    return value


@dataclass(frozen=True)
class Correction:
    """The right answer given with a verdict: a report span (offsets into the report's text) or typed text."""

    text: str
    doc_id: str | None = None
    start: int | None = None
    end: int | None = None
    source: str = "typed"  # selected (offsets given), located (typed text found in a cited passage), typed
    doc_sha256: str | None = None


@dataclass(frozen=True)
class Feedback:
    """A recorded answer and its verdict (``verdict`` None: no verdict yet). ``stale``: its report was removed or
    changed since (only known when the rows were read against an index)."""

    answer_id: str
    asked_at: str
    user: str | None
    conversation_id: str | None
    question: str
    resolved_question: str | None
    answer: str | None
    confidence: float
    citations: tuple[dict, ...]
    doc_id: str | None  # the report the answer (or the closest passage) came from
    index_generation: str | None
    reader_version: str | None
    verdict: str | None = None
    correction: Correction | None = None
    comment: str | None = None
    verdict_user: str | None = None
    verdict_at: str | None = None
    stale: bool = False

    @property
    def asked(self) -> str:
        """The question as it stands alone (a follow-up's resolved question)."""
        return self.resolved_question or self.question

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "correction"}
        d["citations"] = list(self.citations)
        c = self.correction
        d["correction"] = None if c is None else {"text": c.text, "doc_id": c.doc_id, "start": c.start,
                                                 "end": c.end, "source": c.source}
        return d


class FeedbackStore:
    """The feedback database at ``path``; created (and migrated) on open."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()  # this thread's connection, and the process that opened it
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            migrate(con)

    @classmethod
    def beside(cls, index_dir: str | os.PathLike) -> "FeedbackStore":
        return cls(Path(index_dir) / DB_NAME)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened on its first call and kept. Opening and closing one a call cost the chat
        server 5% of its CPU under load: closing the last connection to a WAL database checkpoints it and removes the
        log, which the next answer then recreates."""
        con, pid = getattr(self._local, "con", None), getattr(self._local, "pid", None)
        if con is None or pid != os.getpid():  # a forked child opens its own: SQLite connections do not cross a fork
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA foreign_keys=ON")
            con.row_factory = sqlite3.Row
            self._local.con, self._local.pid = con, os.getpid()
        try:
            yield con
        except BaseException as e:
            # a transaction left open (a failed COMMIT or ROLLBACK) or a database error: this connection goes, closing
            # rolls back what is open, and the thread's next call opens a fresh one
            if con.in_transaction or isinstance(e, sqlite3.Error):
                self._local.con = None
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                _rollback(con)
                raise
            con.execute("COMMIT")

    # --- writing ---
    def record_answer(self, answer: Answer, *, index_generation: str | None = None, reader_version: str | None = None,
                      conversation_id: str | None = None, user: str | None = None,
                      doc_hashes: Mapping[str, str] | None = None) -> str:
        """Keep ``answer``; returns its new ``answer_id``. ``doc_hashes`` ({report id: sha256}) lets a later change
        of a cited report mark the verdict stale."""
        answer_id = uuid.uuid4().hex
        cits = [{**{k: getattr(c, k) for k in ("doc_id", "passage_start", "passage_end", "answer_start", "answer_end",
                                               "score")}, "doc_sha256": (doc_hashes or {}).get(c.doc_id)}
                for c in answer.citations]
        with self._write() as con:
            con.execute("INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (answer_id, now_utc(), user, conversation_id, answer.question, answer.resolved_question,
                         answer.text, float(answer.score), json.dumps(cits),
                         answer.citations[0].doc_id if answer.citations else None, index_generation, reader_version))
        return answer_id

    def set_verdict(self, answer_id: str, verdict: str, *, correction: Correction | None = None,
                    comment: str | None = None, user: str | None = None) -> Feedback:
        """Give (or change) the verdict on an answer; the change is added to its history."""
        check_verdict(verdict, correction)
        comment = (comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT_CHARS:
            raise BadFeedback(f"the comment is {len(comment):,} characters long; the limit is {MAX_COMMENT_CHARS:,}")
        c = correction or Correction("", source="")
        at = now_utc()
        with self._write() as con:
            if con.execute("SELECT 1 FROM answers WHERE answer_id=?", (answer_id,)).fetchone() is None:
                raise BadFeedback(f"no answer with id {answer_id!r}; use the answer_id that /chat returned")
            con.execute(
                'INSERT INTO feedback (answer_id, verdict, doc_id, start, "end", text, comment, user, created_at, '
                "updated_at, span_source, doc_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(answer_id) DO "
                'UPDATE SET verdict=excluded.verdict, doc_id=excluded.doc_id, start=excluded.start, "end"=excluded."end", '
                "text=excluded.text, comment=excluded.comment, user=excluded.user, updated_at=excluded.updated_at, "
                "span_source=excluded.span_source, doc_sha256=excluded.doc_sha256",
                (answer_id, verdict, c.doc_id, c.start, c.end, c.text or None, comment, user, at, at,
                 c.source or None, c.doc_sha256))
            con.execute('INSERT INTO verdict_history (answer_id, verdict, doc_id, start, "end", text, comment, user, '
                        "at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (answer_id, verdict, c.doc_id, c.start, c.end, c.text or None, comment, user, at))
        return self.get(answer_id)

    def purge(self, before: str) -> int:
        """Delete the answers asked before ``before`` (YYYY-MM-DD, UTC), with their verdicts; how many."""
        check_date(before, "--before")
        with self._write() as con:
            return con.execute("DELETE FROM answers WHERE asked_at < ?", (before,)).rowcount

    def delete_user(self, user: str) -> int:
        """Delete everything ``user`` asked or said: their answers, and their verdicts on others' answers."""
        with self._write() as con:
            n = con.execute("DELETE FROM answers WHERE user = ?", (user,)).rowcount
            n += con.execute("DELETE FROM feedback WHERE user = ?", (user,)).rowcount
            con.execute("DELETE FROM verdict_history WHERE user = ?", (user,))
            return n

    # --- reading ---
    def get(self, answer_id: str) -> Feedback:
        rows = self._select("a.answer_id = ?", (answer_id,), with_verdict=False)
        if not rows:
            raise BadFeedback(f"no answer with id {answer_id!r}; use the answer_id that /chat returned")
        return rows[0]

    def conversation_of(self, answer_id: str) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT conversation_id FROM answers WHERE answer_id=?", (answer_id,)).fetchone()
        return row[0] if row else None

    def rows(self, *, verdict: str | None = None, since: str | None = None, until: str | None = None,
             report: str | None = None, reports: Mapping[str, str] | None = None) -> list[Feedback]:
        """Answers that have a verdict, oldest verdict first. ``since``/``until`` (YYYY-MM-DD, inclusive) filter on
        the verdict's date; ``report`` on the answer's or the correction's report. ``reports`` ({id: sha256} of the
        current index) marks rows whose report is gone or changed as stale."""
        where, args = ["f.verdict IS NOT NULL"], []
        if verdict is not None:
            check_verdict(verdict, None)
            where.append("f.verdict = ?")
            args.append(verdict)
        if since:
            where.append("f.updated_at >= ?")
            args.append(check_date(since, "--since"))
        if until:
            where.append("substr(f.updated_at, 1, 10) <= ?")
            args.append(check_date(until, "--until"))
        if report:
            where.append("(a.doc_id = ? OR f.doc_id = ?)")
            args += [report, report]
        return [mark_stale(r, reports) for r in self._select(" AND ".join(where), args, with_verdict=True)]

    def history(self, answer_id: str) -> list[dict]:
        with self._connect() as con:
            return [dict(r) for r in con.execute("SELECT * FROM verdict_history WHERE answer_id=? ORDER BY id",
                                                 (answer_id,))]

    def count_answers(self) -> int:
        with self._connect() as con:
            return con.execute("SELECT count(*) FROM answers").fetchone()[0]

    def counts_by_report(self) -> dict[str, dict[str, int]]:
        """{report id: {verdict: n}} over the verdicts on answers taken from, or corrected to, each report."""
        sql = ("SELECT d, verdict, count(*) FROM (SELECT a.doc_id AS d, f.verdict, f.answer_id FROM feedback f JOIN "
               "answers a USING (answer_id) UNION SELECT f.doc_id, f.verdict, f.answer_id FROM feedback f "
               "WHERE f.doc_id IS NOT NULL) WHERE d IS NOT NULL GROUP BY d, verdict")
        out: dict[str, dict[str, int]] = {}
        with self._connect() as con:
            for doc_id, verdict, n in con.execute(sql):
                out.setdefault(doc_id, {})[verdict] = n
        return out

    def _select(self, where: str, args: Sequence, with_verdict: bool) -> list[Feedback]:
        join = "JOIN" if with_verdict else "LEFT JOIN"
        sql = (f'SELECT a.*, f.verdict, f.doc_id AS f_doc, f.start, f."end", f.text, f.comment, f.user AS f_user, '
               f"f.updated_at, f.span_source, f.doc_sha256 FROM answers a {join} feedback f USING (answer_id) "
               f"WHERE {where} ORDER BY coalesce(f.updated_at, a.asked_at), a.rowid")
        with self._connect() as con:
            return [_feedback(r) for r in con.execute(sql, tuple(args))]


def _feedback(r: sqlite3.Row) -> Feedback:
    corr = None
    if r["text"] is not None or r["f_doc"] is not None:
        corr = Correction(r["text"] or "", r["f_doc"], r["start"], r["end"], r["span_source"] or "typed",
                          r["doc_sha256"])
    return Feedback(r["answer_id"], r["asked_at"], r["user"], r["conversation_id"], r["question"],
                    r["resolved_question"], r["answer"], r["confidence"], tuple(json.loads(r["citations"])),
                    r["doc_id"], r["index_generation"], r["reader_version"], r["verdict"], corr, r["comment"],
                    r["f_user"], r["updated_at"])


def migrate(con: sqlite3.Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` (each step in one transaction); the version it was at."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise BadFeedback(f"the feedback database has schema version {version}; this report-qa reads up to "
                          f"{SCHEMA_VERSION}. Upgrade report-qa, or point --feedback-db at another file")
    con.execute("BEGIN IMMEDIATE")
    try:
        start = con.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated meanwhile
        for n in range(start, SCHEMA_VERSION):
            for statement in MIGRATIONS[n].split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute(f"PRAGMA user_version={n + 1}")
            log.info("feedback database migrated to schema version %d", n + 1)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return version


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back what is open, if anything: SQLite rolls a transaction back itself on some errors (a full disk, an
    I/O error), and a ROLLBACK then would raise in place of the error that matters."""
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def check_verdict(verdict: str, correction: Correction | None) -> None:
    if verdict not in VERDICTS:
        raise BadFeedback(f"unknown verdict {verdict!r}; use one of {', '.join(VERDICTS)}")
    if correction is not None and correction.text and verdict not in CORRECTABLE:
        raise BadFeedback(f"a right answer goes with the verdict 'wrong' or 'is_there', not {verdict!r}")


def mark_stale(row: Feedback, reports: Mapping[str, str] | None) -> Feedback:
    """``row`` with ``stale`` set when the report it depends on is no longer in ``reports`` ({id: sha256}) or changed."""
    if reports is None:
        return row
    c = row.correction
    if c is not None and c.doc_id is not None:
        stale = c.doc_id not in reports or (c.doc_sha256 is not None and reports[c.doc_id] != c.doc_sha256)
    elif row.doc_id is not None:
        cited = (row.citations[0] if row.citations else {}).get("doc_sha256")
        stale = row.doc_id not in reports or (cited is not None and reports[row.doc_id] != cited)
    else:
        stale = False
    return row if stale == row.stale else dataclasses.replace(row, stale=stale)
