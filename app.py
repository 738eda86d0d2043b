"""report-qa staff chat: ask questions about the reports, get cited answers; add and remove reports.

    python app.py [--host 127.0.0.1] [--port 7860] [--index index/] [--auth user:pass] [--max-upload-mb 20]

Environment: QA_HOST, QA_PORT, QA_INDEX_DIR, QA_AUTH, QA_MAX_UPLOAD_MB (and QA_READER, QA_DEVICE for the library).
On first run an empty index folder is filled from seeds/. API: ``Client(url).predict(question, api_name="/chat")``
returns ``Answer.to_dict()`` plus ``answer_id``, which ``/feedback`` takes with a verdict (``qa/feedback/store.py``;
``--feedback-db``, env QA_FEEDBACK_DB). Thin by design: this file builds the page and wires its events to
``qa.ui.service.ChatService``, where the work is (rendering: ``qa/ui/render.py``). ``demo`` (for ``gradio app.py``)
is built on first use, from the environment's settings.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, no version check: the page stays offline
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model comes from a package
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio's queue rebuilds a pandas table of every event it remembers (up to 10,000) after each event, for its
# monitoring summary: O(events) of CPU a question, and pyarrow's strings in mimalloc heaps of its worker threads that
# grew the server's memory by ~45 MB every 1,000 questions (benchmarks/web_memory.py, docs/reliability.md). Remember
# 1,000 events, summarise every 100, and let pyarrow allocate from the process's allocator, which returns memory.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

if __name__ == "__main__":  # first, before the heavy imports: run again with jemalloc (qa/serving/allocator.py)
    from qa.serving.allocator import relaunch_with_jemalloc

    relaunch_with_jemalloc()

import gradio as gr  # noqa: E402

from qa.errors import BadFeedback, QAError  # noqa: E402
from qa.ingest.files import SUPPORTED_SUFFIXES  # noqa: E402
from qa.models.files import serve_with_threads, serving_threads, usable_cores  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.ui.render import CSS, HEAD_JS, REPORT_COLUMNS, esc  # noqa: E402
from qa.ui.service import (BACKEND_CONCURRENCY, CHAT_CONCURRENCY, DEFAULT_MAX_UPLOAD_MB, QUEUE_SIZE,  # noqa: E402
                           ChatService)

log = logging.getLogger("report-qa.app")
ROOT = Path(__file__).resolve().parent
EXAMPLES = ["When did Iraq pass its anti-trafficking law?", "Who dismantled the two networks?",
            "Which ministry helped them?", "How many foreign nationals were in the two networks?",
            "What is the capital of France?"]
# What one browser session keeps and for how long, and how many sessions (docs/reliability.md; the questions
# waiting and answered at once: qa/ui/service.py).
SESSION_TTL_S = 12 * 3600  # a session's state is dropped this long after its last question
MAX_SESSIONS = 1000  # sessions whose state is held at once; the oldest goes first
STATUS_EVERY_S = 1.0  # seconds between queue-position messages to waiting clients (app.py --status-every)
MIN_STATUS_EVERY_S = 0.1  # shorter would keep Gradio's notifier loop busy
THEME = gr.themes.Default(font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])
PRIVATE = dict(api_visibility="private")  # page events, not API endpoints


def client_id(request: gr.Request | None) -> str:
    """Who is asking, for the rate limit: the logged-in user, else the client's address."""
    if request is None:
        return ""
    return getattr(request, "username", None) or (request.client.host if request.client else "")


def user_of(request: gr.Request | None) -> str | None:
    """The signed-in user (with --auth), else None."""
    return getattr(request, "username", None) or None


def shown_error(e: Exception) -> gr.Error:
    """A library error as the message the person sees."""
    return gr.Error(str(e))


def build_demo(service: ChatService) -> gr.Blocks:
    """The page: a chat tab (with filters and settings) and a reports tab (upload, list, remove)."""
    with gr.Blocks(title="report-qa", analytics_enabled=False) as demo:
        gr.Markdown("**report-qa** · answers quoted from the reports, each with its sources", elem_id="title")
        with gr.Tab("Chat"):
            chat = chat_tab()
        with gr.Tab("Reports") as tab:
            reports = reports_tab()
        wire_chat(service, chat)
        wire_feedback(service, chat["fb"], chat["chatbot"])
        lists = wire_reports(service, reports, tab, chat)
        wire_api(service)

        def on_load():
            a = service.assistant
            return (*lists(), gr.update(value=a.settings.k), gr.update(value=a.threshold))

        demo.load(on_load, None, [reports["table"], chat["scope"], reports["to_remove"], chat["k"], chat["threshold"]],
                  **PRIVATE)
    return demo


def chat_tab() -> dict[str, Any]:
    """The chat, the question box, the filters and settings, and the plain-text copy of the last answer."""
    ui: dict[str, Any] = dict(answers=gr.State([], time_to_live=SESSION_TTL_S))
    ui["chatbot"] = gr.Chatbot(elem_id="chat", label="report-qa", height=560, latex_delimiters=[], buttons=[],
                               feedback_options=None, group_consecutive_messages=False,
                               placeholder="Ask a question about the reports. Every answer cites its passages.")
    ui["conversation"] = gr.State(None, time_to_live=SESSION_TTL_S)
    ui["fb"] = feedback_panel()
    with gr.Row():
        ui["question"] = gr.Textbox(elem_id="question", show_label=False, scale=8, autofocus=True,
                                    placeholder="Ask a question about the reports, e.g. when did Iraq pass …")
        ui["ask"] = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
        ui["clear"] = gr.Button("New conversation", elem_id="clear", scale=1, min_width=80)
    gr.Examples(EXAMPLES, inputs=[ui["question"]], label="Example questions")
    with gr.Accordion("Limit the search · settings", open=False):
        with gr.Row():
            ui["scope"] = gr.Dropdown(label="Only these reports (none: all)", multiselect=True, choices=[],
                                      elem_id="scope", scale=2)
            ui["date_from"] = gr.Textbox(label="Reports dated from", placeholder="YYYY-MM-DD", elem_id="from")
            ui["date_to"] = gr.Textbox(label="to", placeholder="YYYY-MM-DD", elem_id="to")
        with gr.Row():
            ui["k"] = gr.Slider(1, 20, value=Settings.k, step=1, label="Passages read per question (k)", elem_id="k")
            # step 0.0001: a calibrated threshold (0.9627) is not snapped to 0.96 by the browser
            ui["threshold"] = gr.Slider(0.0, 1.0, value=0.5, step=0.0001, elem_id="threshold",
                                        label="Not-found threshold (answers less confident than this are "
                                              "reported as not found)")
    ui["copy_box"] = gr.Textbox(label="Last answer as plain text", lines=5, max_lines=12, interactive=False,
                                buttons=["copy"], elem_id="copy-text")
    return ui


def reports_tab() -> dict[str, Any]:
    """Upload, the list of reports, removal."""
    ui: dict[str, Any] = {}
    ui["files"] = gr.File(label="Add reports (" + " ".join(sorted(SUPPORTED_SUFFIXES)) + ")", file_count="multiple",
                          file_types=sorted(SUPPORTED_SUFFIXES), type="filepath", elem_id="upload")
    ui["status"] = gr.Markdown(elem_id="upload-status")
    ui["table"] = gr.Dataframe(headers=REPORT_COLUMNS, interactive=False, wrap=True, elem_id="reports",
                               label="Reports in the index")
    with gr.Row():
        ui["to_remove"] = gr.Dropdown(label="Remove reports", multiselect=True, choices=[], elem_id="remove", scale=3)
        ui["remove_btn"] = gr.Button("Remove", variant="stop", elem_id="remove-btn", scale=1)
        ui["refresh"] = gr.Button("Refresh", elem_id="refresh", scale=1)
    return ui


def wire_chat(service: ChatService, ui: dict[str, Any]) -> None:
    """Ask (Enter or the button), a new conversation, the chat's own clear button."""

    def respond(message: str, messages: list, history: list, k: float, threshold: float, scope: list[str] | None,
                date_from: str, date_to: str, conversation: str | None, request: gr.Request):
        try:
            turn = service.turn(message, messages, history, k, threshold, scope, date_from, date_to, conversation,
                                client=client_id(request), user=user_of(request))
        except QAError as e:  # BadQuestion, a bad date (BadFilter), a model that cannot be read: the message says what
            raise shown_error(e) from e  # to do
        return turn.messages, turn.history, "", turn.copy_text, turn.conversation

    chat_in = [ui[n] for n in ("question", "chatbot", "answers", "k", "threshold", "scope", "date_from", "date_to",
                               "conversation")]
    chat_out = [ui[n] for n in ("chatbot", "answers", "question", "copy_box", "conversation")]
    for trigger in (ui["question"].submit, ui["ask"].click):
        trigger(respond, chat_in, chat_out, concurrency_limit=service.concurrency, concurrency_id="ask", **PRIVATE)
    ui["clear"].click(lambda: ([], [], "", None), None,
                      [ui["chatbot"], ui["answers"], ui["copy_box"], ui["conversation"]], **PRIVATE)
    ui["chatbot"].clear(lambda: ([], "", None), None, [ui["answers"], ui["copy_box"], ui["conversation"]],
                        **PRIVATE)  # its own trash button


def wire_reports(service: ChatService, ui: dict[str, Any], tab: gr.Tab, chat: dict[str, Any]):
    """Upload, remove and refresh; returns ``listing``, the values of the report table and the two report lists."""

    def listing():
        choices = service.choices()
        return (service.reports(), gr.update(choices=choices), gr.update(choices=choices, value=[]))

    def upload(files: list[str] | None, progress=gr.Progress()):
        if not files:
            return ("", *listing(), None)
        progress(0, desc="Reading the files")
        done, errors = service.add_files(
            files, lambda stage, i, n: progress((i, n), desc=f"Indexing: {stage}", unit="steps"))
        for e in errors:
            gr.Warning(e)
        return (service.upload_status(done, errors), *listing(), None)

    def remove(ids: list[str] | None):
        if not ids:
            raise gr.Error("choose the reports to remove first")
        return (esc(service.remove(ids)), *listing())

    lists = [ui["table"], chat["scope"], ui["to_remove"]]
    writes = dict(concurrency_id="index-write", concurrency_limit=1, **PRIVATE)
    ui["files"].upload(upload, [ui["files"]], [ui["status"], *lists, ui["files"]], show_progress_on=[ui["files"]],
                       **writes)
    ui["remove_btn"].click(remove, [ui["to_remove"]], [ui["status"], *lists], **writes)
    for trigger in (ui["refresh"].click, tab.select):
        trigger(listing, None, lists, **PRIVATE)
    return listing


def wire_api(service: ChatService) -> None:
    """/chat and /feedback, for programs (gradio_client)."""

    def chat(question: str, history: list[dict] | None = None, k: int | None = None,
             threshold: float | None = None, doc_ids: list[str] | None = None, date_from: str | None = None,
             date_to: str | None = None, request: gr.Request = None) -> dict[str, Any]:
        """Answer a question from the reports. Returns Answer.to_dict(): text (None when not found), score,
        citations with report offsets, plus answer_id (for /feedback) and conversation_id. history: earlier
        answers' dicts, oldest first, for follow-up questions."""
        try:
            return service.chat(question, history, k, threshold, doc_ids, date_from, date_to,
                                client=client_id(request), user=user_of(request))
        except (ValueError, QAError) as e:  # BadQuestion, k / threshold out of range, a model that cannot be read
            raise shown_error(e) from e

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
            raise shown_error(e) from e

    gr.api(chat, api_name="chat", concurrency_limit=service.concurrency, concurrency_id="ask")
    gr.api(feedback, api_name="feedback", concurrency_limit=8)


# after "Wrong" / "It is there": focus the right-answer box once the panel is on the page (keyboard users start there)
FOCUS_ANSWER_BOX = """() => { (function f(n) { const t = document.querySelector('#fb-text textarea');
  if (t && t.offsetParent) t.focus(); else if (n) setTimeout(() => f(n - 1), 100); })(30); }"""


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

    def verdict(answer_id: str, verdict: str, messages: list, request: gr.Request):
        try:
            shown = service.verdict(answer_id, verdict, messages, user=user_of(request))
        except BadFeedback as e:
            raise shown_error(e) from e
        return (shown.messages, gr.update(visible=shown.ask_right_answer), shown.heading, "", "", answer_id, verdict,
                shown.status)

    def correction(answer_id: str, verdict: str, span: str, text: str, comment: str, messages: list,
                   request: gr.Request):
        try:
            messages, status = service.correction(answer_id, verdict, span, text, comment, messages,
                                                  user=user_of(request))
        except (BadFeedback, ValueError) as e:
            raise shown_error(e) from e
        return messages, gr.update(visible=False), status

    fb["go"].click(verdict, [fb["answer"], fb["verdict"], chatbot],
                   [chatbot, fb["panel"], fb["heading"], fb["text"], fb["comment"], fb["answer"], fb["verdict"],
                    fb["status"]], js="(...a) => window.qaFb.verdict(...a)", **PRIVATE).then(
        None, None, None, js=FOCUS_ANSWER_BOX)
    fb["send"].click(correction, [fb["answer"], fb["verdict"], fb["span"], fb["text"], fb["comment"], chatbot],
                     [chatbot, fb["panel"], fb["status"]],
                     js="(a, v, s, t, c, m) => [a, v, window.qaFb.span(t), t, c, m]", **PRIVATE)
    fb["cancel"].click(lambda: gr.update(visible=False), None, fb["panel"], **PRIVATE)


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
    p.add_argument("--status-every", type=float, default=float(env("QA_STATUS_EVERY") or STATUS_EVERY_S),
                   help="seconds between the queue-position messages sent to waiting clients; 0: after every answer, "
                        f"to every waiting client (Gradio's 'auto') (default {STATUS_EVERY_S}; env QA_STATUS_EVERY)")
    p.add_argument("--concurrency", type=int, default=int(env("QA_CONCURRENCY")) if env("QA_CONCURRENCY") else None,
                   help="questions answered at once, the rest wait; each gets cores // N intra-op threads, unless "
                        "OMP_NUM_THREADS is set (default: one a core, each on one thread; with --backend or "
                        f"--batch-wait-ms, {BACKEND_CONCURRENCY}) (env QA_CONCURRENCY)")
    p.add_argument("--max-upload-mb", type=float, default=float(env("QA_MAX_UPLOAD_MB") or DEFAULT_MAX_UPLOAD_MB),
                   help="largest file accepted for upload, in MB (env QA_MAX_UPLOAD_MB)")
    p.add_argument("--batch-wait-ms", type=float, default=float(env("QA_BATCH_WAIT_MS") or 0),
                   help="read concurrent questions through one model thread, waiting up to this long for company; "
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
    if args.concurrency is None:
        args.concurrency = BACKEND_CONCURRENCY if args.backend or args.batch_wait_ms else CHAT_CONCURRENCY
    if args.rate_limit < 0 or args.queue_size < 1 or args.concurrency < 1:
        p.error("--rate-limit must be >= 0, --queue-size >= 1 and --concurrency >= 1")
    if not (args.status_every == 0 or MIN_STATUS_EVERY_S <= args.status_every < math.inf):
        p.error(f"--status-every must be 0 (after every answer) or at least {MIN_STATUS_EVERY_S} seconds")
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
        service = service_from_args(args)
        service.ensure_index(say=print)
        if args.backend:  # the models load here only for uploads, when one comes
            print(f"Questions go to {args.backend}; reports are read from {service.index_dir}/", flush=True)
        else:
            print(f"Loading the models for {service.index_dir}/ ...", flush=True)
            service.assistant.warm_up(every_shape=True)  # all its memory taken now (qa/models/shapes.py)
        from qa.serving.allocator import current_allocator

        print(f"Memory allocator: {current_allocator()}", flush=True)
    except QAError as e:  # a missing or damaged model or index: one line that says what to do, not a traceback
        raise SystemExit(f"error: {e}") from e
    print(f"report-qa is serving on http://{args.host}:{args.port}" + (" (login required)" if args.auth else ""),
          flush=True)
    queued(build_demo(service), args).launch(**launch_options(args, service))


def queued(demo: gr.Blocks, args: argparse.Namespace) -> gr.Blocks:
    """``demo`` with its queue bounded at --queue-size and waiting clients told their place every --status-every
    seconds. Gradio's default tells every waiting client after every answer: with 20 clients and 2 answered at once,
    some 18 messages an answer to send and to parse; once a second, a chat server with gradio_client clients answered
    8% more questions a second (benchmarks/concurrency.py, docs/performance.md)."""
    return demo.queue(max_size=args.queue_size, status_update_rate=args.status_every or "auto")


def service_from_args(args: argparse.Namespace) -> ChatService:
    """The chat's service for these settings, nothing opened yet; in a process that answers questions itself (no
    --backend), the models' intra-op threads are chosen here, before any model work: cores // --concurrency (all
    cores with --batch-wait-ms, where one model thread reads for every question), unless OMP_NUM_THREADS says or the
    process chose already (``gradio app.py`` reads ``demo`` after main() ran)."""
    if not args.backend and "OMP_NUM_THREADS" not in os.environ and serving_threads() is None:
        cores = usable_cores()
        serve_with_threads(cores if args.batch_wait_ms else max(1, cores // args.concurrency))
    return ChatService(args.index, seeds=ROOT / "seeds", root=ROOT, max_upload_mb=args.max_upload_mb,
                       feedback_db=args.feedback_db, rate_limit=args.rate_limit,
                       max_pending=args.queue_size + args.concurrency, concurrency=args.concurrency,
                       backend=args.backend, batch_wait_ms=args.batch_wait_ms or None)


def env_args() -> argparse.Namespace:
    """app.py's settings from the environment alone (what ``gradio app.py`` gets). An environment setting app.py would
    refuse is a QAError here, not an exit."""
    try:
        return parse_args([])
    except (SystemExit, ValueError) as e:  # argparse has printed which one
        raise QAError(f"a QA_* setting in the environment is not valid ({e}); see docs/app.md") from None


def env_service(args: argparse.Namespace | None = None) -> ChatService:
    """The service ``gradio app.py`` and imports get: settings from the environment (``env_args``, as app.py's
    defaults) unless given, nothing opened until the first request."""
    return service_from_args(env_args() if args is None else args)


_demo: gr.Blocks | None = None


def __getattr__(name: str) -> Any:
    """``app.demo`` (what ``gradio app.py`` looks for) is built on first use, not at import."""
    global _demo
    if name == "demo":
        if _demo is None:
            args = env_args()
            _demo = queued(build_demo(env_service(args)), args)
        return _demo
    raise AttributeError(f"module 'app' has no attribute {name!r}")


if __name__ == "__main__":
    main()
