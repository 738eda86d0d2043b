"""report-qa staff chat: ask questions about the reports, get cited answers; add and remove reports.

    python app.py [--host 127.0.0.1] [--port 7860] [--index index/] [--auth user:pass] [--max-upload-mb 20]

Environment: QA_HOST, QA_PORT, QA_INDEX_DIR, QA_AUTH, QA_MAX_UPLOAD_MB (and QA_READER, QA_DEVICE for the library).
On first run an empty index folder is filled from seeds/. API: ``Client(url).predict(question, api_name="/chat")``
returns ``Answer.to_dict()`` plus ``answer_id``, which ``/feedback`` takes with a verdict (``qa/feedback/store.py``;
``--feedback-db``, env QA_FEEDBACK_DB). Thin by design: rendering lives in qa/ui/render.py, the work in qa/.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
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

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, no version check: the page stays offline
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model comes from a package
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if __name__ == "__main__":  # first, before the heavy imports: run again with jemalloc (qa/serving/allocator.py)
    from qa.serving.allocator import relaunch_with_jemalloc

    relaunch_with_jemalloc()

import gradio as gr  # noqa: E402

from qa.assistant import Assistant  # noqa: E402
from qa.ui.render import (CSS, HEAD_JS, REPORT_COLUMNS, answer_html, answer_text, esc, question_html,  # noqa: E402
                     report_rows)
from qa.ui.render import VERDICT_DONE, feedback_html, replace_feedback  # noqa: E402
from qa.errors import BadFeedback, BadQuestion, Busy, IndexNotFound, IngestError, QAError  # noqa: E402
from qa.feedback.store import CORRECTABLE, Feedback, FeedbackStore  # noqa: E402
from qa.store.indexer import Indexer  # noqa: E402
from qa.serving.allocator import release_free_memory  # noqa: E402
from qa.serving.limits import BUSY_MESSAGE, Admission, RateLimiter  # noqa: E402
from qa.ingest.files import SUPPORTED_SUFFIXES, load_file  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store.index import current_generation  # noqa: E402
from qa.types import Answer, Document  # noqa: E402
from qa.feedback.verdicts import give_verdict, record  # noqa: E402

log = logging.getLogger("report-qa.app")
ROOT = Path(__file__).resolve().parent
EXAMPLES = ["When did Iraq pass its anti-trafficking law?", "Who dismantled the two networks?",
            "Which ministry helped them?", "How many foreign nationals were in the two networks?",
            "What is the capital of France?"]
MAX_HISTORY = 20  # earlier answers kept per conversation for follow-ups
# Serving limits (README, "Reliability"): what one browser session keeps, how long, how many sessions, and how many
# questions wait. Past QUEUE_SIZE waiting, Gradio's queue answers HTTP 503 ("This application is currently busy").
MAX_MESSAGES = 2 * 50  # chat messages kept on the page per session (the last 50 questions and answers)
SESSION_TTL_S = 12 * 3600  # a session's state is dropped this long after its last question
MAX_SESSIONS = 1000  # sessions whose state is held at once; the oldest goes first
QUEUE_SIZE = 64  # questions waiting in the server's queue (env QA_QUEUE_SIZE)
CHAT_CONCURRENCY = 16  # questions answered at once: their passages share forward passes (qa/serving/batching.py)
TRIM_EVERY = 100  # questions between malloc_trim calls when the server runs on glibc's malloc (qa/serving/allocator.py)
THEME = gr.themes.Default(font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


def check_date(value: str | None, end: bool) -> str | None:
    """'' -> None; YYYY, YYYY-MM or YYYY-MM-DD -> a full date (the first or last day of the period)."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise gr.Error(f"'{value}' is not a date; write YYYY-MM-DD (or YYYY, YYYY-MM)")
    return value + ("-12-31" if end else "-01-01")[len(value) - 4:]


def client_id(request: gr.Request | None) -> str:
    """Who is asking, for the rate limit: the logged-in user, else the client's address."""
    if request is None:
        return ""
    return getattr(request, "username", None) or (request.client.host if request.client else "")


def ask_backend(url: str, question: str, history: Sequence[Answer], k, threshold, doc_ids, date_from, date_to,
                attempts: int = 3) -> Answer:
    """Ask `qa serve --ray`'s endpoint. A replica that dies with the question is retried on another (questions have
    no side effects); 503 (its queue is full) is Busy; 400 is the replica's message about the question."""
    import json
    import time
    import urllib.error
    import urllib.request

    body = json.dumps({"question": question, "history": [h.to_dict() for h in history], "k": int(k) if k else None,
                       "threshold": threshold, "doc_ids": list(doc_ids) if doc_ids else None,
                       "date_from": date_from, "date_to": date_to}).encode()
    for attempt in range(attempts):
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return Answer.from_dict(json.loads(r.read()))
        except urllib.error.HTTPError as e:
            if e.code in (429, 503):
                raise Busy(BUSY_MESSAGE) from e
            if e.code == 400:
                raise BadQuestion(json.loads(e.read() or b"{}").get("error") or "the backend refused the question") from e
            failure: Exception = e
        except (urllib.error.URLError, OSError) as e:
            failure = e
        log.warning("backend %s failed (%s); attempt %d of %d", url, failure, attempt + 1, attempts)
        time.sleep(0.5 * (attempt + 1))
    raise QAError(f"the backend at {url} does not answer ({failure}); check that `qa serve --ray` runs there")


class ChatService:
    """One Assistant for every session, opened on first use; uploads and removals go through its Indexer."""

    def __init__(self, index_dir: str | os.PathLike, *, seeds: str | os.PathLike = ROOT / "seeds",
                 settings: Settings | None = None, max_upload_mb: float = 20.0,
                 feedback_db: str | os.PathLike | None = None, batch_wait_ms: float | None = None,
                 rate_limit: int = 0, max_pending: int = QUEUE_SIZE + CHAT_CONCURRENCY,
                 backend: str | None = None) -> None:
        if max_upload_mb <= 0:
            raise ValueError("max_upload_mb must be positive")
        self.batch_wait_ms = batch_wait_ms  # None: every question runs its own forward passes
        self.rate_limiter = RateLimiter(rate_limit)  # questions a minute per client; 0: no limit
        self.admission = Admission(max_pending)
        self.backend = backend  # `qa serve --ray`'s URL: questions go there; this process renders and indexes
        self._asked = itertools.count(1)
        self.index_dir = Path(index_dir)
        self.feedback_db = Path(feedback_db) if feedback_db else self.index_dir / "feedback.sqlite3"
        self._feedback: FeedbackStore | None = None
        self.seeds = Path(seeds)
        self.settings = (settings or Settings.from_env()).with_(index_dir=str(self.index_dir))
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self._assistant: Assistant | None = None
        self._lock = threading.Lock()

    def ensure_index(self, say: Callable[[str], None] = log.info) -> None:
        """Build the index from seeds/ when the index folder has none."""
        try:
            current_generation(self.index_dir)
            return
        except IndexNotFound:
            pass
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
                                   check_date(date_from, False), check_date(date_to, True))
            answer = a.ask(question, list(history)[-MAX_HISTORY:], int(k) if k else None,
                           doc_ids=list(doc_ids) if doc_ids else None, date_from=check_date(date_from, False),
                           date_to=check_date(date_to, True), threshold=threshold)
        if next(self._asked) % TRIM_EVERY == 0:  # without jemalloc: glibc's free pages back to the system
            release_free_memory()
        return answer

    def reports(self) -> list[list[object]]:
        store = self.assistant.store
        counts = store.chunk_counts()
        try:
            verdicts = self.feedback.counts_by_report()
        except (sqlite3.Error, OSError, QAError):  # an unwritable or damaged feedback file must not hide the reports
            log.exception("cannot read the feedback database %s", self.feedback_db)
            verdicts = {}
        return report_rows(store.data.documents, [counts[d.id] for d in store.data.documents], str(ROOT), verdicts)

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
        doc_id = re.sub(r"[^\w.-]+", "-", Path(name).stem).strip("-.") or "upload"
        docs = load_file(path, doc_id=doc_id, max_bytes=self.max_upload_bytes)
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

    def remove(self, ids: Sequence[str]) -> str:
        report = self.assistant.indexer().remove(ids)
        self.assistant.reload_if_changed()
        return f"removed {', '.join(report.removed) or 'nothing'}; {report.n_documents} reports in the index"


def build_demo(service: ChatService) -> gr.Blocks:
    """The page: a chat tab (with filters and settings) and a reports tab (upload, list, remove)."""

    def respond(message: str, messages: list, history: list[Answer], k: float, threshold: float,
                scope: list[str] | None, date_from: str, date_to: str, conversation: str | None,
                request: gr.Request):
        try:
            answer = service.ask(message, history, int(k), float(threshold), scope or None, date_from, date_to,
                                 client=client_id(request))
        except (BadQuestion, QAError) as e:  # QAError: e.g. a model that cannot be read; the message says what to do
            raise gr.Error(str(e)) from e
        conversation = conversation or uuid.uuid4().hex
        answer_id = service.record(answer, conversation, user_of(request))
        html = answer_html(answer, service.assistant.store.documents, threshold, str(ROOT), answer_id=answer_id)
        messages = (list(messages or []) + [{"role": "user", "content": question_html(message)},
                                            {"role": "assistant", "content": html}])[-MAX_MESSAGES:]
        history = (list(history or []) + [answer])[-MAX_HISTORY:]
        return messages, history, "", answer_text(answer, threshold, str(ROOT)), conversation

    def chat(question: str, history: list[dict] | None = None, k: int | None = None,
             threshold: float | None = None, doc_ids: list[str] | None = None, date_from: str | None = None,
             date_to: str | None = None, request: gr.Request = None) -> dict[str, Any]:
        """Answer a question from the reports. Returns Answer.to_dict(): text (None when not found), score,
        citations with report offsets, plus answer_id (for /feedback) and conversation_id. history: earlier
        answers' dicts, oldest first, for follow-up questions."""
        try:
            past = [Answer.from_dict(d) for d in history or []]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise gr.Error(f"history must be a list of earlier answers as /chat returned them ({e!r})") from e
        try:
            answer = service.ask(question, past, k, threshold, doc_ids, date_from, date_to, client=client_id(request))
        except (ValueError, QAError) as e:  # BadQuestion, k / threshold out of range, a model that cannot be read
            raise gr.Error(str(e)) from e
        earlier = (history or [{}])[-1].get("answer_id")  # a follow-up joins the conversation it follows
        conversation = (service.conversation_of(earlier) if earlier else None) or uuid.uuid4().hex
        answer_id = service.record(answer, conversation, user_of(request))
        return {**answer.to_dict(), "answer_id": answer_id, "conversation_id": conversation}

    def feedback(answer_id: str, verdict: str, doc_id: str | None = None, start: int | None = None,
                 end: int | None = None, text: str | None = None, comment: str | None = None,
                 request: gr.Request = None) -> dict[str, Any]:
        """Give a verdict on an answer /chat returned: right, wrong, not_in_reports (an answer where the reports
        hold none) or is_there (a "not found" the reports do answer). With wrong / is_there, the right answer as
        doc_id + start + end (character offsets into the report) or as text; an optional comment. Calling again
        changes the verdict. Returns the stored verdict."""
        try:
            return service.give_feedback(answer_id, verdict, doc_id=doc_id, start=start, end=end, text=text,
                                         comment=comment, user=user_of(request)).to_dict()
        except BadFeedback as e:
            raise gr.Error(str(e)) from e

    def listing():
        choices = service.choices()
        return (service.reports(), gr.update(choices=choices), gr.update(choices=choices, value=[]))

    def on_load():
        a = service.assistant
        return (*listing(), gr.update(value=a.settings.k), gr.update(value=a.threshold))

    def upload(files: list[str] | None, progress=gr.Progress()):
        if not files:
            return ("", *listing(), None)
        progress(0, desc="Reading the files")
        done, errors = service.add_files(
            files, lambda stage, i, n: progress((i, n), desc=f"Indexing: {stage}", unit="steps"))
        for e in errors:
            gr.Warning(e)
        lines = [f"- {esc(x)}" for x in done] + [f"- **Not added:** {esc(x)}" for x in errors]
        return ("\n".join(lines), *listing(), None)

    def remove(ids: list[str] | None):
        if not ids:
            raise gr.Error("choose the reports to remove first")
        return (esc(service.remove(ids)), *listing())

    with gr.Blocks(title="report-qa", analytics_enabled=False) as demo:
        answers = gr.State([], time_to_live=SESSION_TTL_S)
        gr.Markdown("**report-qa** · answers quoted from the reports, each with its sources", elem_id="title")
        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(elem_id="chat", label="report-qa", height=560, latex_delimiters=[],
                                 buttons=[], feedback_options=None, group_consecutive_messages=False,
                                 placeholder="Ask a question about the reports. Every answer cites its passages.")
            conversation = gr.State(None, time_to_live=SESSION_TTL_S)
            fb = feedback_panel()
            with gr.Row():
                question = gr.Textbox(elem_id="question", show_label=False, scale=8, autofocus=True,
                                      placeholder="Ask a question about the reports, e.g. when did Iraq pass …")
                ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
                clear = gr.Button("New conversation", elem_id="clear", scale=1, min_width=80)
            gr.Examples(EXAMPLES, inputs=[question], label="Example questions")
            with gr.Accordion("Limit the search · settings", open=False):
                with gr.Row():
                    scope = gr.Dropdown(label="Only these reports (none: all)", multiselect=True, choices=[],
                                        elem_id="scope", scale=2)
                    date_from = gr.Textbox(label="Reports dated from", placeholder="YYYY-MM-DD", elem_id="from")
                    date_to = gr.Textbox(label="to", placeholder="YYYY-MM-DD", elem_id="to")
                with gr.Row():
                    k = gr.Slider(1, 20, value=5, step=1, label="Passages read per question (k)", elem_id="k")
                    threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, elem_id="threshold",
                                          label="Not-found threshold (answers less confident than this are "
                                                "reported as not found)")
            copy_box = gr.Textbox(label="Last answer as plain text", lines=5, max_lines=12, interactive=False,
                                  buttons=["copy"], elem_id="copy-text")
        with gr.Tab("Reports") as reports_tab:
            files = gr.File(label="Add reports (" + " ".join(sorted(SUPPORTED_SUFFIXES)) + ")",
                            file_count="multiple", file_types=sorted(SUPPORTED_SUFFIXES), type="filepath",
                            elem_id="upload")
            status = gr.Markdown(elem_id="upload-status")
            table = gr.Dataframe(headers=REPORT_COLUMNS, interactive=False, wrap=True, elem_id="reports",
                                 label="Reports in the index")
            with gr.Row():
                to_remove = gr.Dropdown(label="Remove reports", multiselect=True, choices=[], elem_id="remove",
                                        scale=3)
                remove_btn = gr.Button("Remove", variant="stop", elem_id="remove-btn", scale=1)
                refresh = gr.Button("Refresh", elem_id="refresh", scale=1)

        chat_in = [question, chatbot, answers, k, threshold, scope, date_from, date_to, conversation]
        chat_out = [chatbot, answers, question, copy_box, conversation]
        for trigger in (question.submit, ask.click):
            trigger(respond, chat_in, chat_out, api_visibility="private", concurrency_limit=CHAT_CONCURRENCY,
                    concurrency_id="ask")
        clear.click(lambda: ([], [], "", None), None, [chatbot, answers, copy_box, conversation],
                    api_visibility="private")
        chatbot.clear(lambda: ([], "", None), None, [answers, copy_box, conversation],
                      api_visibility="private")  # its own trash button
        wire_feedback(service, fb, chatbot)
        lists = [table, scope, to_remove]
        files.upload(upload, [files], [status, *lists, files], api_visibility="private", show_progress_on=[files],
                     concurrency_id="index-write", concurrency_limit=1)
        remove_btn.click(remove, [to_remove], [status, *lists], api_visibility="private",
                         concurrency_id="index-write", concurrency_limit=1)
        for trigger in (refresh.click, reports_tab.select):
            trigger(listing, None, lists, api_visibility="private")
        demo.load(on_load, None, [*lists, k, threshold], api_visibility="private")
        gr.api(chat, api_name="chat", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="ask")
        gr.api(feedback, api_name="feedback", concurrency_limit=8)
    return demo


# after "Wrong" / "It is there": focus the right-answer box once the panel is on the page (keyboard users start there)
FOCUS_ANSWER_BOX = """() => { (function f(n) { const t = document.querySelector('#fb-text textarea');
  if (t && t.offsetParent) t.focus(); else if (n) setTimeout(() => f(n - 1), 100); })(30); }"""


def user_of(request: gr.Request | None) -> str | None:
    """The signed-in user (with --auth), else None."""
    return getattr(request, "username", None) or None


def feedback_panel() -> dict[str, Any]:
    """Where the right answer is given after "Wrong" / "It is there" (shown then); hidden parts the page's script
    (qa.ui.render.HEAD_JS) drives: #fb-go sends the verdict button pressed under an answer."""
    with gr.Group(visible=False, elem_id="fb-panel") as panel:
        heading = gr.Markdown(elem_id="fb-heading")
        with gr.Row():
            text = gr.Textbox(label="Right answer: select it in a cited passage or in the opened report, or type it",
                              elem_id="fb-text", scale=3)
            comment = gr.Textbox(label="Comment (optional)", elem_id="fb-comment", scale=2)
        with gr.Row():
            send = gr.Button("Send the right answer", variant="primary", elem_id="fb-send", scale=1)
            cancel = gr.Button("Close", elem_id="fb-cancel", scale=1)
    status = gr.Markdown(elem_id="fb-status")
    hidden = dict(visible="hidden")
    return dict(panel=panel, heading=heading, text=text, comment=comment, send=send, cancel=cancel, status=status,
                answer=gr.Textbox(elem_id="fb-answer", **hidden), verdict=gr.Textbox(elem_id="fb-verdict", **hidden),
                span=gr.Textbox(elem_id="fb-span", **hidden), go=gr.Button("verdict", elem_id="fb-go", **hidden))


def wire_feedback(service: ChatService, fb: dict[str, Any], chatbot: gr.Chatbot) -> None:
    """The verdict buttons and the right-answer panel: one click stores a verdict, without reloading the page."""

    def shown(row: Feedback) -> str:
        return feedback_html(row.answer_id, row.answer is not None, row.verdict,
                             row.correction.text if row.correction else None, row.comment)

    def verdict(answer_id: str, verdict: str, messages: list, request: gr.Request):
        try:
            row = service.give_feedback(answer_id, verdict, user=user_of(request))
        except BadFeedback as e:
            raise gr.Error(str(e)) from e
        messages = replace_feedback(messages or [], answer_id, shown(row))
        ask = verdict in CORRECTABLE
        heading = (f"**{VERDICT_DONE[verdict]}** · answer to *{esc(row.asked)}*. Select the right answer in a cited "
                   "passage (or in \"Show the whole report\"), or type it, then send it." if ask else "")
        return (messages, gr.update(visible=ask), heading, "", "", answer_id, verdict,
                f"{VERDICT_DONE[verdict]}: saved." if not ask else "")

    def correction(answer_id: str, verdict: str, span: str, text: str, comment: str, messages: list,
                   request: gr.Request):
        try:
            where = json.loads(span) if span else {}
        except json.JSONDecodeError:
            where = None
        if not isinstance(where, dict):
            raise gr.Error("the selection did not come through; select the answer again, or type it")
        if not where and not (text or "").strip():
            raise gr.Error("select the right answer in a passage, or type it, before sending")
        try:
            row = service.give_feedback(answer_id, verdict, doc_id=where.get("doc"), start=where.get("start"),
                                        end=where.get("end"), text=None if where else text, comment=comment,
                                        user=user_of(request))
        except (BadFeedback, ValueError) as e:
            raise gr.Error(str(e)) from e
        c = row.correction
        said = f" «{esc(c.text)}»" + (f" ({esc(c.doc_id)}, characters {c.start}-{c.end})" if c and c.doc_id else "") \
            if c else ""
        return replace_feedback(messages or [], answer_id, shown(row)), gr.update(visible=False), \
            f"{VERDICT_DONE[verdict]}: saved{said}."

    private = dict(api_visibility="private")
    fb["go"].click(verdict, [fb["answer"], fb["verdict"], chatbot],
                   [chatbot, fb["panel"], fb["heading"], fb["text"], fb["comment"], fb["answer"], fb["verdict"],
                    fb["status"]], js="(...a) => window.qaFb.verdict(...a)", **private).then(
        None, None, None, js=FOCUS_ANSWER_BOX)
    fb["send"].click(correction, [fb["answer"], fb["verdict"], fb["span"], fb["text"], fb["comment"], chatbot],
                     [chatbot, fb["panel"], fb["status"]],
                     js="(a, v, s, t, c, m) => [a, v, window.qaFb.span(t), t, c, m]", **private)
    fb["cancel"].click(lambda: gr.update(visible=False), None, fb["panel"], **private)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="app.py", description="report-qa staff chat (Gradio)")
    p.add_argument("--host", default=env("QA_HOST") or "127.0.0.1", help="address to bind (env QA_HOST)")
    p.add_argument("--port", type=int, default=int(env("QA_PORT") or 7860), help="port (env QA_PORT)")
    p.add_argument("--index", default=env("QA_INDEX_DIR") or str(ROOT / "index"),
                   help="index folder; built from seeds/ when empty (env QA_INDEX_DIR)")
    p.add_argument("--auth", default=env("QA_AUTH"), help="require USER:PASS to log in (env QA_AUTH; on the command "
                   "line it shows in ps: prefer QA_AUTH or --auth-file)")
    p.add_argument("--auth-file", default=env("QA_AUTH_FILE"),
                   help="read USER:PASS from this file's first line (env QA_AUTH_FILE)")
    p.add_argument("--rate-limit", type=int, default=int(env("QA_RATE_LIMIT") or 0),
                   help="questions a minute one client (user or address) may ask; 0: no limit (env QA_RATE_LIMIT)")
    p.add_argument("--backend", default=env("QA_BACKEND"),
                   help="send questions to `qa serve --ray` at this URL, e.g. http://HOST:8000/ask (env QA_BACKEND)")
    p.add_argument("--queue-size", type=int, default=int(env("QA_QUEUE_SIZE") or QUEUE_SIZE),
                   help="questions that may wait; past it the server answers busy / HTTP 503 (env QA_QUEUE_SIZE)")
    p.add_argument("--max-upload-mb", type=float, default=float(env("QA_MAX_UPLOAD_MB") or 20),
                   help="largest file accepted for upload, in MB (env QA_MAX_UPLOAD_MB)")
    p.add_argument("--batch-wait-ms", type=float, default=float(env("QA_BATCH_WAIT_MS") or 0),
                   help="read concurrent questions in shared forward passes, waiting up to this long for company; "
                        "0: off (the default: no gain measured on a 2-core CPU, see docs) (env QA_BATCH_WAIT_MS)")
    p.add_argument("--feedback-db", default=env("QA_FEEDBACK_DB"),
                   help="SQLite file of answers and staff verdicts (default: feedback.sqlite3 in the index folder; "
                        "env QA_FEEDBACK_DB)")
    args = p.parse_args(argv)
    if args.auth_file:
        try:
            lines = Path(args.auth_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            p.error(f"cannot read --auth-file {args.auth_file}: {e.strerror if isinstance(e, OSError) else e}")
        args.auth = lines[0].strip() if lines else ""
    if args.rate_limit < 0 or args.queue_size < 1:
        p.error("--rate-limit must be >= 0 and --queue-size >= 1")
    if args.auth is not None and not re.fullmatch(r"[^:]+:.+", args.auth):
        p.error("--auth must be USER:PASSWORD")
    return args


def launch_options(args: argparse.Namespace, service: ChatService) -> dict[str, Any]:
    """``Blocks.launch`` keywords: bound to args.host, offline (system fonts, no share link), upload limit, login."""
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    return dict(server_name=args.host, server_port=args.port, auth=auth, share=False, inbrowser=False,
                ssr_mode=False, mcp_server=False, max_file_size=service.max_upload_bytes, theme=THEME, css=CSS,
                head=HEAD_JS, footer_links=["api", "settings"], state_session_capacity=MAX_SESSIONS)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("qa", log.name):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        service = ChatService(args.index, max_upload_mb=args.max_upload_mb, feedback_db=args.feedback_db,
                              rate_limit=args.rate_limit, max_pending=args.queue_size + CHAT_CONCURRENCY,
                              backend=args.backend, batch_wait_ms=args.batch_wait_ms or None)
        service.ensure_index(say=print)
        if args.backend:  # the models load here only for uploads, when one comes
            print(f"Questions go to {args.backend}; reports are read from {service.index_dir}/", flush=True)
        else:
            print(f"Loading the models for {service.index_dir}/ ...", flush=True)
            service.assistant.warm_up()
        from qa.serving.allocator import current_allocator

        print(f"Memory allocator: {current_allocator()}", flush=True)
    except QAError as e:  # a missing or damaged model or index: one line that says what to do, not a traceback
        raise SystemExit(f"error: {e}") from e
    print(f"report-qa is serving on http://{args.host}:{args.port}" + (" (login required)" if args.auth else ""),
          flush=True)
    build_demo(service).queue(max_size=args.queue_size).launch(**launch_options(args, service))


# for `gradio app.py` and imports: env settings, nothing opened until the first request
demo = build_demo(ChatService(os.environ.get("QA_INDEX_DIR") or ROOT / "index",
                              max_upload_mb=float(os.environ.get("QA_MAX_UPLOAD_MB") or 20),
                              feedback_db=os.environ.get("QA_FEEDBACK_DB")))

if __name__ == "__main__":
    main()
