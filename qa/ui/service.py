"""The chat's work, without Gradio: ``ChatService`` answers, renders, records verdicts and indexes uploads.

``app.py`` builds the page and wires each event to one method here; what a person sees as an error is a
:class:`~qa.errors.QAError` (or ``ValueError``) whose message the page shows as it is.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.assistant import Assistant
from qa.errors import BadFeedback, IndexNotFound, IngestError, QAError
from qa.feedback.store import CORRECTABLE, Feedback, FeedbackStore
from qa.feedback.verdicts import give_verdict, record
from qa.ingest.files import SUPPORTED_SUFFIXES, load_file
from qa.models.files import usable_cores
from qa.serving.allocator import Trimmer
from qa.serving.client import ask_backend
from qa.serving.limits import Admission, RateLimiter
from qa.settings import Settings
from qa.store.index import current_generation
from qa.store.indexer import Indexer
from qa.types import Answer, Document, answers_from_dicts
from qa.ui.render import (VERDICT_DONE, answer_html, answer_text, esc, feedback_html, question_html, replace_feedback,
                          report_rows)

log = logging.getLogger(__name__)
MAX_HISTORY = 20  # earlier answers kept per conversation for follow-ups
MAX_MESSAGES = 2 * 50  # chat messages kept on the page per session (the last 50 questions and answers)
# Serving limits (docs/reliability.md): questions waiting, questions answered at once. Past QUEUE_SIZE waiting,
# Gradio's queue answers HTTP 503 ("This application is currently busy").
QUEUE_SIZE = 64  # questions waiting in the server's queue (env QA_QUEUE_SIZE)
# questions answered at once: one a core, each on one intra-op thread (app.py --concurrency; docs/performance.md)
CHAT_CONCURRENCY = usable_cores()
BACKEND_CONCURRENCY = 16  # with --backend: questions forwarded to `qa serve --ray` at once (its replicas queue more)
DEFAULT_MAX_UPLOAD_MB = 20.0


def upload_id(name: str) -> str:
    """The report id of an uploaded file: its name's stem, with runs of anything but word characters, dots and
    hyphens as one hyphen (never a path, never empty)."""
    return re.sub(r"[^\w.-]+", "-", Path(name).stem).strip("-.") or "upload"


@dataclasses.dataclass(frozen=True)
class Turn:
    """What one question changes on the chat page."""

    messages: list[dict]  # the chat's messages, the new question and answer last
    history: list[Answer]  # the conversation's answers, for follow-ups
    copy_text: str  # the answer as plain text
    conversation: str  # the conversation's id (new on its first question)


@dataclasses.dataclass(frozen=True)
class VerdictShown:
    """What a verdict button changes: the messages (the answer's buttons redrawn), whether the right-answer panel
    opens (with its heading), and a status line."""

    messages: list[dict]
    ask_right_answer: bool
    heading: str
    status: str


class ChatService:
    """One Assistant for every session, opened on first use; uploads and removals go through its Indexer."""

    def __init__(self, index_dir: str | os.PathLike, *, seeds: str | os.PathLike | None = None,
                 settings: Settings | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
                 feedback_db: str | os.PathLike | None = None, batch_wait_ms: float | None = None,
                 rate_limit: int = 0, max_pending: int | None = None, concurrency: int = CHAT_CONCURRENCY,
                 backend: str | None = None, root: str | os.PathLike = ".") -> None:
        if max_upload_mb <= 0:
            raise ValueError("max_upload_mb must be positive")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency  # questions answered at once; the rest wait in the queue
        max_pending = QUEUE_SIZE + concurrency if max_pending is None else max_pending
        self.batch_wait_ms = batch_wait_ms  # None: every question runs its own forward passes
        self.rate_limiter = RateLimiter(rate_limit)  # questions a minute per client; 0: no limit
        self.admission = Admission(max_pending)
        self.backend = backend  # `qa serve --ray`'s URL: questions go there; this process renders and indexes
        self._trimmer = Trimmer()  # without jemalloc: glibc's free pages back to the system now and then
        self.index_dir = Path(index_dir)
        self.feedback_db = Path(feedback_db) if feedback_db else self.index_dir / "feedback.sqlite3"
        self._feedback: FeedbackStore | None = None
        self.seeds = Path(seeds) if seeds is not None else None  # what to index when there is no index yet
        self.root = str(root)  # sources are shown relative to this folder
        self.settings = (settings or Settings.from_env()).with_(index_dir=str(self.index_dir))
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self._assistant: Assistant | None = None
        self._lock = threading.Lock()

    def ensure_index(self, say: Callable[[str], None] = log.info) -> None:
        """Build the index from ``seeds`` when the index folder has none (without ``seeds``: IndexNotFound)."""
        try:
            current_generation(self.index_dir)
            return
        except IndexNotFound:
            if self.seeds is None:
                raise IndexNotFound(f'no index in {self.index_dir}/: run "qa index REPORTS --index {self.index_dir}"'
                                    " or give ChatService seeds=FOLDER to build it from") from None
        say(f"No index in {self.index_dir}/: building it from {self.seeds}/ ...")
        report = Indexer(self.settings).sync([self.seeds])
        say(f"Built the index: {report.summary()}")
        for skip in report.skipped:
            say(f"  skipped {skip}")

    @property
    def assistant(self) -> Assistant:
        with self._lock:
            if self._assistant is None:
                self.ensure_index()
                self._assistant = Assistant.open(self.index_dir, settings=self.settings)
                if self.batch_wait_ms is not None and not self.backend:
                    self._assistant.batch_concurrent(self.batch_wait_ms)
            return self._assistant

    # --- questions ---
    def ask(self, question: str, history: Sequence[Answer] = (), k: int | None = None,
            threshold: float | None = None, doc_ids: Sequence[str] | None = None, date_from: str | None = None,
            date_to: str | None = None, client: str = "") -> Answer:
        """``client`` (a user name or an address) is what the rate limit counts by; ``Busy`` past a limit."""
        self.rate_limiter.check(client)
        with self.admission.slot():
            a = self.assistant
            a.reload_if_changed()  # pick up writes by other processes (qa index ...)
            if self.backend:
                return ask_backend(self.backend, question, history[-MAX_HISTORY:], k, threshold, doc_ids,
                                   date_from, date_to)  # the replica's Assistant reads the dates
            answer = a.ask(question, list(history)[-MAX_HISTORY:], int(k) if k else None,
                           doc_ids=list(doc_ids) if doc_ids else None, date_from=date_from, date_to=date_to,
                           threshold=threshold)
        self._trimmer.asked()
        return answer

    def turn(self, message: str, messages: Sequence[dict] | None, history: Sequence[Answer] | None, k: float,
             threshold: float, scope: Sequence[str] | None, date_from: str | None, date_to: str | None,
             conversation: str | None, *, client: str = "", user: str | None = None) -> Turn:
        """One question asked on the chat page: answered, recorded, rendered, appended to the conversation."""
        answer = self.ask(message, list(history or []), int(k), float(threshold), scope or None, date_from, date_to,
                          client=client)
        conversation = conversation or uuid.uuid4().hex
        answer_id = self.record(answer, conversation, user)
        html = answer_html(answer, self.assistant.store.documents, threshold, self.root, answer_id=answer_id)
        messages = (list(messages or []) + [{"role": "user", "content": question_html(message)},
                                            {"role": "assistant", "content": html}])[-MAX_MESSAGES:]
        history = (list(history or []) + [answer])[-MAX_HISTORY:]
        return Turn(messages, history, answer_text(answer, threshold, self.root), conversation)

    def chat(self, question: str, history: Sequence[dict] | None = None, k: int | None = None,
             threshold: float | None = None, doc_ids: Sequence[str] | None = None, date_from: str | None = None,
             date_to: str | None = None, *, client: str = "", user: str | None = None) -> dict[str, Any]:
        """The /chat API: ``Answer.to_dict()`` plus answer_id and conversation_id; ``history`` holds earlier answers'
        dicts as /chat returned them, oldest first (a follow-up joins the conversation it follows)."""
        past = answers_from_dicts(history, "/chat")
        answer = self.ask(question, past, k, threshold, doc_ids, date_from, date_to, client=client)
        earlier = (history or [{}])[-1].get("answer_id")
        conversation = (self.conversation_of(earlier) if earlier else None) or uuid.uuid4().hex
        answer_id = self.record(answer, conversation, user)
        return {**answer.to_dict(), "answer_id": answer_id, "conversation_id": conversation}

    # --- the reports ---
    def reports(self) -> list[list[object]]:
        store = self.assistant.store
        counts = store.chunk_counts()
        try:
            verdicts = self.feedback.counts_by_report()
        except (sqlite3.Error, OSError, QAError):  # an unwritable or damaged feedback file must not hide the reports
            log.exception("cannot read the feedback database %s", self.feedback_db)
            verdicts = {}
        return report_rows(store.data.documents, [counts[d.id] for d in store.data.documents], self.root, verdicts)

    def choices(self) -> list[tuple[str, str]]:
        return [(f"{d.title[:80] or d.id} ({d.id})", d.id) for d in self.assistant.store.data.documents]

    def load_upload(self, path: str) -> list[Document]:
        """One uploaded file as Documents (source "upload: NAME"); IngestError says why it cannot be used."""
        name = Path(path).name
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise IngestError(f"{name}: {suffix or 'no extension'} files are not supported; "
                              f"upload {', '.join(sorted(SUPPORTED_SUFFIXES))}")
        size = os.path.getsize(path)
        if size > self.max_upload_bytes:
            raise IngestError(f"{name} is {size / 2**20:.1f} MB; the limit is {self.max_upload_bytes / 2**20:g} MB "
                              "(--max-upload-mb or QA_MAX_UPLOAD_MB)")
        docs = load_file(path, doc_id=upload_id(name), max_bytes=self.max_upload_bytes)
        return [dataclasses.replace(d, source=f"upload: {name}") for d in docs]

    def add_files(self, paths: Sequence[str], progress: Callable[[str, int, int], None] | None = None
                  ) -> tuple[list[str], list[str]]:
        """Index uploaded files; (lines saying what happened, error lines). The index changes only on success."""
        docs: list[Document] = []
        errors: list[str] = []
        for path in paths:
            try:
                docs.extend(self.load_upload(path))
            except IngestError as e:
                errors.append(str(e).replace(str(Path(path).parent) + os.sep, ""))
        if not docs:
            return [], errors or ["no files"]
        try:
            report = self.assistant.indexer().upsert(docs, progress=progress)
        except (QAError, OSError, ValueError, RuntimeError) as e:
            log.exception("indexing the upload failed")
            return [], errors + [f"indexing failed ({e}); the index is unchanged"]
        self.assistant.reload_if_changed()
        done = [f"added {i}" for i in report.added] + [f"replaced {i}" for i in report.updated]
        done += [f"{i} unchanged" for i in report.unchanged]
        return done + [f"{report.n_documents} reports, {report.n_chunks} passages in the index"], errors

    @staticmethod
    def upload_status(done: Sequence[str], errors: Sequence[str]) -> str:
        """``add_files``' lines as the Markdown list the page shows."""
        return "\n".join([f"- {esc(x)}" for x in done] + [f"- **Not added:** {esc(x)}" for x in errors])

    def remove(self, ids: Sequence[str]) -> str:
        report = self.assistant.indexer().remove(ids)
        self.assistant.reload_if_changed()
        return f"removed {', '.join(report.removed) or 'nothing'}; {report.n_documents} reports in the index"

    # --- staff verdicts (qa/feedback/store.py) ---
    @property
    def feedback(self) -> FeedbackStore:
        with self._lock:
            if self._feedback is None:
                self._feedback = FeedbackStore(self.feedback_db)
            return self._feedback

    def record(self, answer: Answer, conversation_id: str | None = None, user: str | None = None) -> str | None:
        """Keep an answer given; its answer_id (None when the feedback database cannot be written: the answer is
        still given, without verdict buttons)."""
        a = self.assistant
        try:
            return record(self.feedback, answer, a.store, a.reader, conversation_id=conversation_id, user=user)
        except (sqlite3.Error, OSError, QAError):
            log.exception("cannot record the answer in the feedback database %s", self.feedback_db)
            return None

    def conversation_of(self, answer_id: str) -> str | None:
        try:
            return self.feedback.conversation_of(answer_id)
        except (sqlite3.Error, OSError, QAError):
            log.exception("cannot read the feedback database %s", self.feedback_db)
            return None

    def give_feedback(self, answer_id: str, verdict: str, *, doc_id: str | None = None, start: int | None = None,
                      end: int | None = None, text: str | None = None, comment: str | None = None,
                      user: str | None = None) -> Feedback:
        return give_verdict(self.feedback, answer_id, verdict, self.assistant.store, doc_id=doc_id, start=start,
                            end=end, text=text, comment=comment, user=user)

    @staticmethod
    def feedback_block(row: Feedback) -> str:
        """The verdict buttons under an answer, showing the verdict given."""
        return feedback_html(row.answer_id, row.answer is not None, row.verdict,
                             row.correction.text if row.correction else None, row.comment)

    def verdict(self, answer_id: str, verdict: str, messages: Sequence[dict] | None,
                user: str | None = None) -> VerdictShown:
        """A verdict button pressed under an answer: stored; "Wrong" / "It is there" open the right-answer panel."""
        row = self.give_feedback(answer_id, verdict, user=user)
        messages = replace_feedback(messages or [], answer_id, self.feedback_block(row))
        ask = verdict in CORRECTABLE
        heading = (f"**{VERDICT_DONE[verdict]}** · answer to *{esc(row.asked)}*. Select the right answer in a cited "
                   "passage (or in \"Show the whole report\"), or type it, then send it." if ask else "")
        return VerdictShown(messages, ask, heading, "" if ask else f"{VERDICT_DONE[verdict]}: saved.")

    def correction(self, answer_id: str, verdict: str, span: str, text: str, comment: str,
                   messages: Sequence[dict] | None, user: str | None = None) -> tuple[list[dict], str]:
        """The right answer sent from the panel: ``span`` is the page's selection as JSON ({doc, start, end}, or
        empty for typed ``text``). The messages with the answer's buttons redrawn, and a status line."""
        try:
            where = json.loads(span) if span else {}
        except json.JSONDecodeError:
            where = None
        if not isinstance(where, dict):
            raise BadFeedback("the selection did not come through; select the answer again, or type it")
        if not where and not (text or "").strip():
            raise BadFeedback("select the right answer in a passage, or type it, before sending")
        row = self.give_feedback(answer_id, verdict, doc_id=where.get("doc"), start=where.get("start"),
                                 end=where.get("end"), text=None if where else text, comment=comment, user=user)
        c = row.correction
        said = f" «{esc(c.text)}»" + (f" ({esc(c.doc_id)}, characters {c.start}-{c.end})" if c and c.doc_id else "") \
            if c else ""
        return replace_feedback(messages or [], answer_id, self.feedback_block(row)), \
            f"{VERDICT_DONE[verdict]}: saved{said}."
