"""Serving: micro-batched answers equal single-user answers; overload and abuse limits; bounded per-session state."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from qa.assistant import Assistant
from qa.serving.batching import BatchedEncoder, BatchedReader, MicroBatcher
from qa.errors import Busy, QAError
from qa.serving.limits import BUSY_MESSAGE, Admission, RateLimiter
from qa.settings import Settings
from qa.store.index import IndexStore
from qa.types import Chunk

from conftest import ROOT, SEED_QUESTION

QUESTIONS = [SEED_QUESTION, "Who dismantled the two networks?", "Which ministry helped the intelligence service?",
             "How many foreign nationals were in the two networks?", "What is the capital of France?",
             "What was seized from the members of the networks?", "Who were most of the victims?",
             "What do enforcement agencies often lack?"]


def _plain(answer) -> dict:
    d = answer.to_dict()
    d.pop("timings_ms", None)
    return d


def _in_threads(fn, items) -> list:
    out = [None] * len(items)
    barrier = threading.Barrier(len(items))

    def run(i):
        barrier.wait()
        out[i] = fn(items[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_batched_answers_equal_single_user_answers(seed_index, encoder, span_reader):
    settings = Settings(index_dir=str(seed_index))
    alone = Assistant(IndexStore.open(seed_index), encoder, span_reader, settings)
    single = {q: _plain(alone.ask(q)) for q in QUESTIONS}
    batched = Assistant(IndexStore.open(seed_index), encoder, span_reader, settings)
    batched.batch_concurrent(wait_ms=20)
    got = _in_threads(lambda q: _plain(batched.ask(q)), QUESTIONS * 2)
    assert got == [single[q] for q in QUESTIONS * 2]
    assert single[SEED_QUESTION]["text"] == "2012"
    reader: BatchedReader = batched.reader
    assert reader.batcher.requests == 2 * len(QUESTIONS)
    assert reader.batcher.batches < reader.batcher.requests  # some questions did share a forward pass
    assert isinstance(batched.encoder, BatchedEncoder) and batched.encoder.batcher.batches < 2 * len(QUESTIONS)


@pytest.fixture(scope="module", params=["fp32", "auto"])
def reader_any_precision(request, span_reader):
    """The reader in fp32 and as it runs here by default (bf16 on a CPU that has it)."""
    if request.param == "auto":
        return span_reader
    from qa.reading.reader import SpanReader

    r = SpanReader(precision="fp32")
    r.warm_up()
    return r


def test_on_a_cpu_every_input_runs_alone(span_reader):
    from qa.models.shapes import invariant_batch_cap

    assert invariant_batch_cap(16) == 1 and invariant_batch_cap(16, "cuda") == 16
    assert span_reader._batch_cap == 1


def test_window_logits_do_not_depend_on_batch_mates(reader_any_precision):
    span_reader = reader_any_precision
    text = "The bridge over the Ouse opened in 1998 after four years of work. " * 12
    chunks = [Chunk("d", i, 0, 60 + 40 * i, text[: 60 + 40 * i]) for i in range(6)]
    alone = [span_reader.forward([("When did the bridge open?", [c])])[0][1] for c in chunks]
    together = span_reader.forward([("When did the bridge open?", chunks[:3]), ("When did the bridge open?", chunks[3:])])
    windows = [w for _, logits in together for w in logits]
    assert len(windows) == len(alone)
    for a, b in zip(alone, windows):
        assert (a[0] == b).all()  # bitwise


def test_batches_are_cut_into_power_of_two_sizes():
    from qa.models.shapes import power_of_two_batches, power_of_two_sizes

    assert power_of_two_sizes(16) == [1, 2, 4, 8, 16] and power_of_two_sizes(12) == [1, 2, 4, 8]
    assert [len(b) for b in power_of_two_batches(list(range(13)), 16)] == [8, 4, 1]
    assert [len(b) for b in power_of_two_batches(list(range(40)), 16)] == [16, 16, 8]
    assert [x for b in power_of_two_batches(list(range(23)), 4) for x in b] == list(range(23))
    assert list(power_of_two_batches([], 16)) == []


def test_the_reader_sees_only_the_shapes_its_warm_up_ran(span_reader, monkeypatch):
    """A server's memory plateaus once every input shape has been seen (qa/models/shapes.py): the shapes of any
    reading, however many windows of whatever lengths, are among those ``warm_up_shapes`` runs at start-up."""
    seen: list[tuple[int, int]] = []
    model = span_reader._encoder

    def recording(ids, mask, tt):  # the real model, with its input shapes written down
        seen.append(tuple(ids.shape))
        return model(ids, mask, tt)

    monkeypatch.setattr(span_reader, "_encoder", recording)
    span_reader.warm_up_shapes()
    warmed = set(seen)
    assert len(warmed) == len(seen) == 12  # one shape per width: on a CPU each window runs alone (shapes.py)
    seen.clear()
    text = "The bridge over the Ouse opened in 1998 after four years of work. "
    for n in (1, 3, 5, 7, 13, 21):
        chunks = [Chunk("d", i, 0, 0, text * (1 + (i * 7) % 40)) for i in range(n)]
        span_reader.forward([("When did the bridge open?", chunks), ("Which river does it cross?", chunks[: n // 2])])
    assert seen and set(seen) <= warmed, set(seen) - warmed


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_encoder_query_vectors_do_not_depend_on_batch_mates(precision):
    from qa.models.encoder import Encoder

    encoder = Encoder(precision=precision)
    qs = ["when", "Who dismantled the two networks?", "Which ministry helped the intelligence service in Iraq?"] * 2
    together = encoder.encode_queries(qs)
    for q, v in zip(qs, together):
        assert (encoder.encode_queries([q])[0] == v).all()


def test_a_failing_request_fails_only_its_own_caller():
    def square_or_fail(xs: list[int]) -> list[int]:
        if -1 in xs:
            raise ValueError("negative")
        return [x * x for x in xs]

    batcher = MicroBatcher(square_or_fail, wait_ms=50)

    def ask(x):
        try:
            return batcher.submit(x)
        except ValueError as e:
            return str(e)

    assert _in_threads(ask, [1, 2, -1, 3]) == [1, 4, "negative", 9]


def test_admission_refuses_past_its_limit_and_frees_slots_on_errors():
    adm = Admission(2)
    with adm.slot(), adm.slot():
        with pytest.raises(Busy, match="busy, try again in a moment"):
            with adm.slot():
                pass
    with pytest.raises(RuntimeError):
        with adm.slot():
            raise RuntimeError("a failed question")
    assert adm.in_progress == 0
    with adm.slot():
        assert adm.in_progress == 1
    assert BUSY_MESSAGE == "The assistant is busy, try again in a moment."


def test_rate_limit_per_client_and_its_memory_is_bounded():
    rl = RateLimiter(3)
    for t in (0.0, 1.0, 2.0):
        rl.check("ann", now=t)
    with pytest.raises(Busy, match=r"limit is 3 a minute\); try again in 58 s"):
        rl.check("ann", now=2.0)
    rl.check("bob", now=2.0)  # another client is not held back
    rl.check("ann", now=60.5)  # the first question is a minute old
    for i in range(1000):
        rl.check(f"client-{i}", now=100.0)
    rl.check("zed", now=200.0)  # a minute later the idle clients are forgotten
    assert len(rl) == 1
    RateLimiter(0).check("anyone")  # 0: no limit
    with pytest.raises(ValueError):
        RateLimiter(-1)


# --- the app: bounded sessions, a bounded queue, the rate limit, the password off the command line ---
def _app():
    if str(ROOT) not in sys.path:  # app.py lives at the repository root, beside qa/
        sys.path.insert(0, str(ROOT))
    import app

    return app


def test_sessions_history_and_messages_are_bounded(seed_index_copy, monkeypatch):
    """Each API client is a session: past MAX_SESSIONS the oldest session's state goes; a long conversation keeps its
    last MAX_HISTORY answers and MAX_MESSAGES messages; the conversation's state has a time to live."""
    from gradio_client import Client

    from conftest import free_port

    app = _app()
    import qa.ui.service

    monkeypatch.setattr(app, "MAX_SESSIONS", 3)  # the page's setting; what a conversation keeps is the service's
    monkeypatch.setattr(qa.ui.service, "MAX_HISTORY", 2)
    monkeypatch.setattr(qa.ui.service, "MAX_MESSAGES", 4)
    args = app.parse_args(["--port", str(free_port()), "--index", str(seed_index_copy)])
    service = app.ChatService(args.index, settings=Settings())
    service.assistant.warm_up()
    demo = app.queued(app.build_demo(service), args)  # as main() launches it
    demo.launch(**app.launch_options(args, service), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        for _ in range(5):
            assert Client(url, verbose=False, httpx_kwargs={"timeout": 300}).predict(SEED_QUESTION, api_name="/chat")["text"] == "2012"
        assert len(demo.state_holder.session_data) == 3
        # Gradio's own event log (its monitoring summary, rebuilt as a pandas table) is bounded by app.py. These are
        # Gradio 6's private names (the misspelling is Gradio's): an upgrade that renames them fails here, not silently
        queue = demo._queue
        assert (queue.ANALYTICS_MAX_EVENTS, queue.ANAYLTICS_CACHE_FREQUENCY) == (1000, 100)
        assert len(queue.event_analytics) > 0  # the log these bound is the one this server writes
        states = [b for b in demo.blocks.values() if type(b).__name__ == "State"]
        assert states and all(s.time_to_live == app.SESSION_TTL_S for s in states)
    finally:
        demo.close()
    # and pyarrow (pandas' strings, in that summary) allocates from the process's allocator, in a fresh app process
    # (in this one another test may have used pyarrow's pool before app.py was imported)
    backend = subprocess.run([sys.executable, "-c", "import app, pandas, pyarrow; pandas.Series(['a', 'b']).str.len(); "
                              "print(pyarrow.default_memory_pool().backend_name)"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300, env={k: v for k, v in os.environ.items()
                                                          if k != "ARROW_DEFAULT_MEMORY_POOL"})
    assert backend.stdout.split()[-1:] == ["system"], backend.stderr[-2000:]
    respond = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "respond")
    messages, history, conversation = [], [], None
    for q in ("Who dismantled the two networks?", "Which ministry helped them?", SEED_QUESTION):
        messages, history, _, _, conversation = respond(q, messages, history, 5, 0.5, None, "", "", conversation,
                                                        None)
    assert len(history) == 2 and len(messages) == 4
    assert history[-1].text == "2012" and history[0].question == "Which ministry helped them?"


def test_busy_server_answers_503_past_its_queue_and_the_rate_limit_is_a_setting(seed_index_copy, monkeypatch):
    import time

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from conftest import free_port

    app = _app()
    args = app.parse_args(["--port", str(free_port()), "--index", str(seed_index_copy), "--queue-size", "1",
                           "--rate-limit", "2"])
    service = app.ChatService(args.index, settings=Settings(), rate_limit=args.rate_limit, concurrency=1)
    service.assistant.warm_up()
    gate = threading.Event()
    real_ask = service.assistant.ask

    def held(*a, **kw):  # the real answer, once the test lets it go: the queue fills meanwhile
        gate.wait(120)
        return real_ask(*a, **kw)

    monkeypatch.setattr(service.assistant, "ask", held)
    demo = app.queued(app.build_demo(service), args)  # as main() launches it
    demo.launch(**app.launch_options(args, service), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        first = Client(url, verbose=False, httpx_kwargs={"timeout": 300}).submit(SEED_QUESTION, api_name="/chat")  # being answered (held)
        time.sleep(2)
        second = Client(url, verbose=False, httpx_kwargs={"timeout": 300}).submit(SEED_QUESTION, api_name="/chat")  # waits: the queue is full
        time.sleep(2)
        third = Client(url, verbose=False, httpx_kwargs={"timeout": 300}).submit(SEED_QUESTION, api_name="/chat")
        with pytest.raises(Exception, match="Queue is full"):  # gradio_client's words for HTTP 503 at join
            third.result(timeout=60)
        gate.set()
        assert first.result(timeout=300)["text"] == "2012" and second.result(timeout=300)["text"] == "2012"
        with pytest.raises(AppError, match="Too many questions from this client"):  # a third in a minute
            Client(url, verbose=False, httpx_kwargs={"timeout": 300}).predict(SEED_QUESTION, api_name="/chat")
    finally:
        gate.set()
        demo.close()


def test_the_queue_is_bounded_and_tells_waiting_clients_their_place_every_so_often(monkeypatch, tmp_path):
    """--queue-size bounds the queue and --status-every spaces its position messages (0: after every answer, Gradio's
    'auto'), for app.py's main and for `gradio app.py` (app.demo, settings from the environment) alike."""
    app = _app()
    for var in ("QA_QUEUE_SIZE", "QA_STATUS_EVERY"):
        monkeypatch.delenv(var, raising=False)
    default = app.queued(app.gr.Blocks(), app.parse_args([]))._queue
    assert (default.max_size, default.live_updates, default.update_intervals) == (app.QUEUE_SIZE, False,
                                                                                  app.STATUS_EVERY_S)
    live = app.queued(app.gr.Blocks(), app.parse_args(["--status-every", "0", "--queue-size", "3"]))._queue
    assert (live.max_size, live.live_updates) == (3, True)
    for bad in ("-1", "0.001", "inf", "nan"):
        with pytest.raises(SystemExit):
            app.parse_args(["--status-every", bad])
    monkeypatch.setattr(app, "_demo", None)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_QUEUE_SIZE", "7")
    monkeypatch.setenv("QA_STATUS_EVERY", "2.5")
    served = app.demo._queue
    assert (served.max_size, served.live_updates, served.update_intervals) == (7, False, 2.5)


def test_auth_comes_from_a_file_or_the_environment_not_the_command_line(tmp_path, monkeypatch):
    app = _app()
    secret = tmp_path / "auth"
    secret.write_text("ann:s3cret\n")
    assert app.parse_args(["--auth-file", str(secret)]).auth == "ann:s3cret"
    monkeypatch.setenv("QA_AUTH", "bob:pw")
    assert app.parse_args([]).auth == "bob:pw"
    with pytest.raises(SystemExit):
        app.parse_args(["--auth-file", str(tmp_path / "missing")])


def test_qa_serve_says_what_it_needs(tmp_path, capsys):
    from qa.cli import main

    assert main(["serve", "--index", str(tmp_path)]) == 2
    assert "add --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--replicas", "0", "--index", str(tmp_path)]) == 2
    assert "--replicas must be >= 1" in capsys.readouterr().err


def test_replica_requests_are_checked_and_errors_say_whose_they_are():
    from qa.errors import BadFilter, BadQuestion, BadSetting, IndexCorrupt
    from qa.serving.ray_serve import error_response, parse_body
    from qa.types import Answer

    earlier = Answer(question="Who?", text="the police", score=0.8).to_dict()
    ok = parse_body({"question": "q?", "k": 3, "threshold": None, "history": [{**earlier, "replica": "r1"}],
                     "doc_ids": ["a"]})
    assert ok["question"] == "q?" and ok["history"] == [Answer.from_dict(earlier)] and ok["k"] == 3
    for bad, said in [([1], "send JSON"), ({"k": 3}, "send JSON"), ({"question": "q", "kk": 1}, "unknown field"),
                      ({"question": "q", "k": "5"}, "k must be int"), ({"question": "q", "k": True}, "k must be"),
                      ({"question": "q", "threshold": "x"}, "threshold must be a number"),
                      ({"question": "q", "doc_ids": [["x"]]}, "doc_ids must be a list of report ids"),
                      ({"question": "q", "history": [{"text": 1}]}, "history must be"),
                      ({"question": "q", "history": [{**earlier, "question": 5}]}, "question must be str"),
                      ({"question": "q", "history": [{**earlier, "text": 5}]}, "text must be str")]:
        with pytest.raises(BadQuestion, match=said):
            parse_body(bad)
    for client_error in (BadQuestion("empty"), BadFilter("bad date"), BadSetting("k must be between 1 and 20")):
        assert error_response(client_error) == (400, {"error": str(client_error)})
    status, said = error_response(IndexCorrupt("chunks.jsonl is truncated"))
    assert status == 500 and "cannot answer" in said["error"] and "truncated" in said["error"]
    for bug in (KeyError("a bug"), ValueError("operands could not be broadcast")):  # the server's, not the client's
        status, said = error_response(bug)
        assert status == 500 and type(bug).__name__ in said["error"] and str(bug) not in said["error"]


def test_backend_client_passes_busy_with_retry_after_and_sends_again_after_a_server_error(monkeypatch):
    """ask_backend against a real HTTP server: a 500 then an answer; a 503 with Retry-After; a 503 without one (no
    replica running) then an answer, and twice; 500s to the end. What
    the client sends is what a replica accepts."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from qa.serving import client
    from qa.serving.client import ask_backend
    from qa.serving.ray_serve import parse_body
    from qa.types import Answer

    monkeypatch.setattr(client, "UNAVAILABLE_WAIT_S", 0.1)
    replies: list[tuple[int, dict, dict]] = []
    sent: list[dict] = []
    answer = Answer(question="q?", text="2012", score=0.9)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            sent.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status, body, headers = replies.pop(0)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ask"
    try:
        replies[:] = [(500, {"error": "this replica cannot answer: damaged"}, {}), (200, answer.to_dict(), {})]
        assert ask_backend(url, "q?", [answer], 3, 0.5, ["a"], "2020-01-01", None) == answer
        assert len(sent) == 2 and parse_body(sent[0])["history"] == [answer]
        replies[:] = [(503, {"error": "queue full"}, {"Retry-After": "7"})]
        with pytest.raises(Busy, match="busy, try again") as busy:
            ask_backend(url, "q?", [], None, None, None, None, None)
        assert busy.value.retry_after_s == 7.0 and replies == []
        # Ray Serve's "deployment unavailable" (no replica running) has no Retry-After: sent once more, answered if a
        # replica is back by then; else the servers are said to be down, not busy
        replies[:] = [(503, {"error": "unavailable"}, {}), (200, answer.to_dict(), {})]
        assert ask_backend(url, "q?", [], None, None, None, None, None) == answer and replies == []
        replies[:] = [(503, {"error": "unavailable"}, {})] * 2
        with pytest.raises(QAError, match="not running just now") as down:
            ask_backend(url, "q?", [], None, None, None, None, None, attempts=3)
        assert not isinstance(down.value, Busy) and replies == []
        replies[:] = [(500, {"error": "this replica cannot answer: /srv/index damaged"}, {})] * 2
        with pytest.raises(QAError, match="cannot answer just now") as failed:
            ask_backend(url, "q?", [], None, None, None, None, None, attempts=2)
        assert "/srv/index" not in str(failed.value)  # the replica's details stay in the logs
    finally:
        server.shutdown()


def test_new_processes_get_jemalloc_when_it_is_there_and_glibc_servers_trim(monkeypatch, tmp_path):
    from qa.serving import allocator
    from qa.serving.ray_serve import actor_options

    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    monkeypatch.setattr(allocator, "JEMALLOC_PATHS", (str(lib),))
    monkeypatch.delenv("QA_ALLOCATOR", raising=False)
    monkeypatch.delenv("MALLOC_CONF", raising=False)
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    env = allocator.jemalloc_env()
    assert env == {"LD_PRELOAD": f"{lib}:/opt/other.so", "MALLOC_CONF": allocator.JEMALLOC_CONF}
    assert actor_options(0.5) == {"num_cpus": 0.5, "runtime_env": {"env_vars": env}}
    monkeypatch.setenv("LD_PRELOAD", f"/opt/other.so:{lib}")  # already there: left as it is
    monkeypatch.setenv("MALLOC_CONF", "narenas:1")  # the operator's settings are kept
    assert allocator.jemalloc_env() == {"LD_PRELOAD": f"/opt/other.so:{lib}", "MALLOC_CONF": "narenas:1"}
    monkeypatch.setenv("QA_ALLOCATOR", "glibc")
    assert allocator.jemalloc_env() == {} and actor_options(1) == {"num_cpus": 1}
    monkeypatch.setattr(allocator, "JEMALLOC_PATHS", (str(tmp_path / "missing.so"),))
    monkeypatch.delenv("QA_ALLOCATOR")
    assert allocator.jemalloc_env() == {}

    trims = []
    monkeypatch.setattr(allocator, "release_free_memory", lambda: trims.append(1) or True)
    monkeypatch.setattr(allocator, "current_allocator", lambda: "glibc")
    t = allocator.Trimmer(every=3)
    for _ in range(7):
        t.asked()
    assert len(trims) == 2
    monkeypatch.setattr(allocator, "current_allocator", lambda: "jemalloc")
    t = allocator.Trimmer(every=1)
    t.asked()
    assert len(trims) == 2  # jemalloc gives pages back itself


def test_a_replica_reads_a_year_as_the_chat_does(tmp_path, encoder, span_reader):
    """Date filters are read by the Assistant itself, so `/ask` on a replica (and the library) take YYYY and YYYY-MM as
    the chat does: a bare year is the whole year, not a string that no report date equals."""
    from qa.errors import BadFilter
    from qa.store.indexer import Indexer
    from qa.types import Document

    settings = Settings(index_dir=str(tmp_path / "index"))
    text = "Tide bulletin\nThe tide gauge at Kelso read 4321 millimetres on Tuesday morning."
    Indexer(settings, encoder).upsert([Document("tide", text, "Tide bulletin", "2021-06-15", "tide.txt")])
    a = Assistant(IndexStore.open(settings.index_dir), encoder, span_reader, settings)
    q = "What did the tide gauge at Kelso read?"
    assert "4321" in a.ask(q, date_from="2021-01-01", date_to="2021-12-31").text
    assert "4321" in a.ask(q, date_from="2021", date_to="2021").text
    assert "4321" in a.ask(q, date_from="2021-06", date_to="2021-06").text
    assert a.ask(q, date_from="2022").text is None and a.ask(q, date_to="2020").text is None
    with pytest.raises(BadFilter, match="not a date"):
        a.ask(q, date_from="May 2012")


def test_a_server_gives_each_question_its_share_of_the_cores_and_keeps_it(monkeypatch):
    """app.py answers --concurrency questions at once (one a core by default), each on cores / N intra-op threads;
    the number stays when a model loads later (place() -> set_cpu_threads, which otherwise takes every core)."""
    import torch

    from qa.models import files

    app = _app()
    for var in ("QA_CONCURRENCY", "QA_BACKEND", "QA_BATCH_WAIT_MS"):
        monkeypatch.delenv(var, raising=False)
    assert app.parse_args([]).concurrency == files.usable_cores()
    assert app.parse_args(["--batch-wait-ms", "5"]).concurrency == app.BACKEND_CONCURRENCY
    assert app.parse_args(["--backend", "http://h:8000/ask"]).concurrency == app.BACKEND_CONCURRENCY
    assert app.parse_args(["--concurrency", "3"]).concurrency == 3
    with pytest.raises(SystemExit):
        app.parse_args(["--concurrency", "0"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    files.serve_with_threads(1)  # conftest's _model_threads_restored puts the process's number back afterwards
    assert torch.get_num_threads() == 1
    files.place("cpu", "fp32")  # what a model's warm_up does
    assert torch.get_num_threads() == 1


def test_the_service_chooses_threads_from_its_settings_once(monkeypatch, tmp_path):
    """service_from_args (app.py's main and `gradio app.py`'s env_service): cores // --concurrency threads; all cores
    with --batch-wait-ms; none chosen with --backend or OMP_NUM_THREADS; the first choice stays."""
    from qa.models import files

    app = _app()
    chosen: list[int] = []
    monkeypatch.setattr(app, "usable_cores", lambda: 4)
    monkeypatch.setattr(app, "serve_with_threads", chosen.append)
    monkeypatch.setattr(files, "_serving_threads", None)
    for var in ("QA_CONCURRENCY", "QA_BACKEND", "QA_BATCH_WAIT_MS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    index = ["--index", str(tmp_path / "index")]
    for argv, threads in ((["--concurrency", "2"], [2]), (["--concurrency", "8"], [1]), (["--batch-wait-ms", "5"], [4]),
                          (["--backend", "http://h:8000/ask"], [])):
        chosen.clear()
        assert app.service_from_args(app.parse_args(index + argv)).concurrency == app.parse_args(index + argv).concurrency
        assert chosen == threads, argv
    chosen.clear()
    monkeypatch.setenv("QA_CONCURRENCY", "2")
    assert app.env_service().concurrency == 2 and chosen == [2]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    chosen.clear()
    app.env_service()
    assert chosen == []  # the operator's number stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(files, "_serving_threads", 1)
    app.env_service()
    assert chosen == []  # chosen already (main ran before gradio read app.demo)
    monkeypatch.setenv("QA_CONCURRENCY", "-1")
    with pytest.raises(QAError, match="QA_\\* setting"):
        app.env_service()
