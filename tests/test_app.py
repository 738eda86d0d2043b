"""The chat app: rendering helpers (escaping, highlight offsets) in-process, and the /chat API through gradio_client
against the app served on a free local port over a copy of the seed index (real span reader, real FAISS)."""
from __future__ import annotations

import html
import re
import shutil

import sys
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from conftest import ROOT, SEED_ID, SEED_QUESTION, damaged_model, free_port

if str(ROOT) not in sys.path:  # app.py lives at the repository root, beside qa/
    sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from qa.ui.render import (REPORT_COLUMNS, answer_html, answer_text, esc, excerpt, feedback_html,  # noqa: E402
                          highlight, question_html, replace_feedback, report_rows, source_html)
from qa.settings import Settings  # noqa: E402
from qa.store.index import current_generation  # noqa: E402
from qa.types import Answer, Citation, Document  # noqa: E402

INJECTION = ('<script>alert(1)</script> <img src=x onerror="alert(2)"> ![x](http://198.51.100.7/p.png) '
             '[link](javascript:alert(3)) <a href="http://198.51.100.7/">a</a> www.example.org $$x^2$$ **bold**')


def unrender(markup: str) -> str:
    """The text a browser shows for esc()'d markup."""
    return html.unescape(markup.replace("<br>", "\n"))


# --- rendering helpers ---
@hsettings(max_examples=300, deadline=None)
@given(st.text())
def test_esc_round_trips_and_leaves_nothing_active(text):
    out = esc(text)
    assert unrender(out) == text.replace("\r\n", "\n").replace("\r", "\n")
    assert not re.search(r"[<>\[\]()!`*_$:\\]", out.replace("<br>", ""))
    assert "\n" not in out  # one line: the chat's Markdown renderer sees a single raw HTML block


def test_esc_makes_injection_inert():
    out = esc(INJECTION)
    for active in ("<script", "<img", "<a ", "](", "javascript:", "http://", "www.", "$$", "**"):
        assert active not in out
    assert unrender(out) == INJECTION


@pytest.mark.parametrize("start,end,marked", [(12, 16, "2012"), (9, 16, "In 2012"), (23, 31, "<passed>"),
                                              (4, 8, "e:"), (0, 3, None), (40, 45, None), (12, 12, None)])
def test_highlight_marks_report_offsets(start, end, marked):
    report = "Passage: In 2012, Iraq <passed> a law."
    text, offset = report[6:], 6  # a passage starting at 6 in its report
    out = highlight(text, offset, start, end)
    got = re.findall(r"<mark>(.*?)</mark>", out)
    if marked is None:  # outside the passage, or empty: nothing to mark
        assert got == []
    else:  # a span crossing the passage's start is clipped to it
        assert [unrender(g) for g in got] == [report[max(start, offset):end]] == [marked]
    assert unrender(re.sub(r"</?mark>", "", out)) == text
    assert highlight(text, offset, None, None) == esc(text)


def test_highlight_clips_a_span_that_runs_past_the_passage():
    out = highlight("abcdef", 100, 98, 102)
    assert out == "<mark>ab</mark>cdef"


def _cit(doc: Document, s: int, e: int, ps: int = 0, pe: int | None = None) -> Citation:
    pe = len(doc.text) if pe is None else pe
    return Citation(doc.id, doc.title, doc.date, doc.source, doc.text[ps:pe], ps, pe, s, e, 0.9)


def test_excerpt_keeps_the_answer_and_cuts_at_spaces():
    text = " ".join(f"w{i}" for i in range(400)) + " ANSWER " + " ".join(f"v{i}" for i in range(400))
    doc = Document("d", text, "T")
    s = text.index("ANSWER")
    part, offset, left, right = excerpt(_cit(doc, s, s + 6), window=50)
    assert left and right and "ANSWER" in part
    assert text[offset:offset + len(part)] == part and not part.startswith(" ") and not part.endswith(" ")
    assert len(part) <= 6 + 2 * 50


def test_answer_html_for_a_seed_answer(seed_assistant):
    ans = seed_assistant.ask(SEED_QUESTION)
    out = answer_html(ans, seed_assistant.store.documents, 0.5)
    doc = seed_assistant.store.documents[SEED_ID]
    c = ans.citations[0]
    assert out.startswith('<div class="qa-answer"><p class="qa-short"><strong>2012</strong>')
    assert re.search(r"\(confidence \d+%\)", out) and "[1]" in out
    assert f'<div class="qa-cite qa-doc-iraq-trafficking-networks qa-dx-{SEED_ID.encode().hex()}">' in out
    marks = [unrender(m) for m in re.findall(r"<mark>(.*?)</mark>", out)]
    assert marks[0] == doc.text[c.answer_start:c.answer_end] == "2012"
    assert len(marks) == 2 * len(ans.citations)  # in the quote and in the whole report
    whole = re.search(r'<div class="qa-report">(.*?)</div></details>', out).group(1)
    assert unrender(re.sub(r"</?(mark|span)[^>]*>", "", whole)) == doc.text  # the whole (short) report
    assert f'<span class="qa-passage"><span class="qa-t qa-at-{c.passage_start}">' in whole
    # every line of report text on the page names its offset in the report (the page maps selections with it)
    runs = [(int(at), unrender(re.sub(r"</?mark>", "", t))) for at, t in
            re.findall(r'<span class="qa-t qa-at-(\d+)">(.*?)</span>', out)]
    assert len(runs) > 10 and all(doc.text[at:at + len(t)] == t and "\n" not in t for at, t in runs)
    text = answer_text(ans, 0.5)
    assert text.startswith(f"Q: {SEED_QUESTION}\nA: 2012 (confidence") and "«2012»" in text and "[1] " in text
    assert "<" not in text


def test_answer_html_not_found_lists_closest_passages(seed_assistant):
    ans = seed_assistant.ask("What is the capital of France?")
    assert not ans.found and ans.citations
    out = answer_html(ans, seed_assistant.store.documents, 0.5)
    assert "<strong>Not found.</strong> The reports do not contain the answer" in out
    assert "(best confidence 0%, below the 50% threshold)" in out
    assert "The closest passages:" in out and "[1]" in out and "<mark>" not in out
    assert "A: Not found" in answer_text(ans, 0.5)


def test_injected_report_renders_as_text():
    text = f"Harbour log. {INJECTION} In 2031 the harbour recorded 913 inspections. {INJECTION}"
    doc = Document("evil", text, "<b>title</b> <img src=x onerror=alert(9)>", "2031-01-01", "upload: <evil>.txt")
    s = text.index("913")
    ans = Answer("<img src=x onerror=alert(7)>?", "913", 0.9, (_cit(doc, s, s + 3),))
    out = answer_html(ans, {"evil": doc}, 0.5)
    for active in ("<script", "<img", "<a ", "<b>", "](", "javascript:", "http://", "www.", "$$"):
        assert active not in out
    assert unrender(re.sub(r"<[^>]+>", "", out)).count("<script>alert(1)</script>") == 4  # 2 copies: quote + report
    assert question_html(ans.question) == (
        '<div class="qa-question">&#60;img src&#61;x onerror&#61;alert&#40;7&#41;&#62;?</div>')


def test_feedback_buttons_escape_what_people_typed():
    aid = "0123456789abcdef0123456789abcdef"
    out = feedback_html(aid, True, "wrong", INJECTION, INJECTION)
    for active in ("<script", "<img", "<a ", "](", "javascript:", "http://", "www.", "$$", "**"):
        assert active not in out
    assert unrender(re.sub(r"<[^>]+>", "", out)).count(INJECTION) == 2
    assert re.findall(r'class="qa-fb-b qa-v-(\w+)( qa-on)?"', out) == [("right", ""), ("wrong", " qa-on"),
                                                                       ("not_in_reports", "")]
    assert re.findall(r"qa-v-(\w+)", feedback_html(aid, False)) == ["right", "is_there"]  # under a "not found"
    with pytest.raises(ValueError, match="not an answer id"):
        feedback_html('x" onclick="alert(1)', True)
    # the chat hands its messages back as text or as a list of text parts: either way only that answer changes
    other = "f" * 32
    msgs = [{"role": "assistant", "content": f'<div class="qa-answer">x{feedback_html(aid, True)}</div>'},
            {"role": "assistant", "content": [{"type": "text", "text": feedback_html(aid, True)}]},
            {"role": "assistant", "content": feedback_html(other, True)}]
    new = replace_feedback(msgs, aid, out)
    assert new[0]["content"] == f'<div class="qa-answer">x{out}</div>' and new[1]["content"][0]["text"] == out
    assert new[2] == msgs[2]


def test_rendered_lines_name_their_report_offsets():
    text = "Line one &amp; <b>\r\nsmile 😀 here\rthird\n\nlast www.x.org"
    out = source_html(text, 100, 100 + text.index("here"), 100 + text.index("here") + 4)
    runs = re.findall(r'<span class="qa-t qa-at-(\d+)">(.*?)</span>', out)
    assert [unrender(re.sub(r"</?mark>", "", t)) for _, t in runs] == [
        "Line one &amp; <b>", "smile 😀 here", "third", "last www.x.org"]
    assert all(text[int(at) - 100:int(at) - 100 + len(unrender(re.sub(r"</?mark>", "", t)))]
               == unrender(re.sub(r"</?mark>", "", t)) for at, t in runs)
    assert re.findall(r"<mark>(.*?)</mark>", out) == ["here"] and out.count("<br>") == 4


def test_reports_table_counts_verdicts():
    docs = [Document("a", "x", "A"), Document("b", "y", "B")]
    rows = report_rows(docs, [3, 1], None, {"a": {"right": 2, "wrong": 1, "is_there": 1}})
    assert rows == [["a", "A", "", "", 3, "2 right · 1 wrong · 1 it is there"], ["b", "B", "", "", 1, ""]]
    assert REPORT_COLUMNS[-1] == "feedback"


def test_flags_and_environment(monkeypatch):
    for var in ("QA_HOST", "QA_PORT", "QA_INDEX_DIR", "QA_AUTH", "QA_MAX_UPLOAD_MB"):
        monkeypatch.delenv(var, raising=False)
    a = app.parse_args([])
    assert (a.host, a.port, a.index, a.auth, a.max_upload_mb) == ("127.0.0.1", 7860, str(app.ROOT / "index"), None, 20)
    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_PORT", "9000")
    monkeypatch.setenv("QA_INDEX_DIR", "/tmp/x")
    monkeypatch.setenv("QA_AUTH", "ann:secret:1")
    a = app.parse_args([])
    assert (a.host, a.port, a.index, a.auth) == ("0.0.0.0", 9000, "/tmp/x", "ann:secret:1")
    assert app.parse_args(["--port", "7000", "--host", "127.0.0.1"]).port == 7000
    with pytest.raises(SystemExit):
        app.parse_args(["--auth", "nopassword"])


def test_feedback_db_flag(monkeypatch, tmp_path):
    monkeypatch.delenv("QA_FEEDBACK_DB", raising=False)
    assert app.parse_args([]).feedback_db is None
    monkeypatch.setenv("QA_FEEDBACK_DB", "/tmp/f.sqlite3")
    assert app.parse_args([]).feedback_db == "/tmp/f.sqlite3"
    assert app.parse_args(["--feedback-db", "x.sqlite3"]).feedback_db == "x.sqlite3"


def test_demo_is_built_on_first_use_not_at_import(monkeypatch, tmp_path):
    """``gradio app.py`` finds ``demo``; importing app builds no page and opens nothing."""
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(app, "_demo", None)
    assert "demo" not in vars(app)
    demo = app.demo
    assert isinstance(demo, app.gr.Blocks) and app.demo is demo
    assert not (tmp_path / "index").exists()  # nothing opened until the first request


# --- the app, served ---
@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory):
    """(url, service): the app on a free port over a private copy of the seed index, with the default reader."""
    index = tmp_path_factory.mktemp("app") / "index"
    shutil.copytree(seed_index, index)
    service = app.ChatService(index, settings=Settings(), max_upload_mb=1)
    demo = app.build_demo(service)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        ssr_mode=False, max_file_size=service.max_upload_bytes)
    yield f"http://127.0.0.1:{port}/", service
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served[0], verbose=False)


def test_chat_api_answers_with_a_citation(client, served):
    d = client.predict(SEED_QUESTION, api_name="/chat")
    ans = Answer.from_dict(d)
    assert d["found"] is True and ans.text == "2012" and 0.5 <= ans.score <= 1
    c = ans.citations[0]
    assert c.doc_id == SEED_ID and c.source.endswith("seeds/iraq-trafficking-networks.txt")
    report = served[1].assistant.store.documents[SEED_ID].text
    assert report[c.answer_start:c.answer_end] == "2012" and report[c.passage_start:c.passage_end] == c.passage


def test_chat_api_follow_up_uses_history(client):
    first = client.predict("Who dismantled the two networks?", api_name="/chat")
    assert "Intelligence Service" in first["text"]
    second = client.predict("Which ministry helped them?", [first], api_name="/chat")
    assert "Ministry of Interior" in second["text"]
    assert "Intelligence Service" in second["resolved_question"]


def test_chat_api_not_found_and_limits(client):
    d = client.predict("What is the capital of France?", api_name="/chat")
    assert d["found"] is False and d["text"] is None and d["citations"][0]["answer_start"] is None
    assert client.predict("What is the capital of France?", threshold=0.0, api_name="/chat")["found"] is True
    crimes = "What crimes were the networks involved in?"
    assert client.predict(crimes, None, 3, 0.5, api_name="/chat")["found"] is True
    strict = client.predict(crimes, None, 3, 0.999, api_name="/chat")
    assert strict["found"] is False and 0.5 < strict["score"] < 0.999
    assert len(client.predict(SEED_QUESTION, k=1, api_name="/chat")["citations"]) == 1
    other = client.predict(SEED_QUESTION, doc_ids=["no-such-report"], api_name="/chat")
    assert other["found"] is False and other["citations"] == []
    undated = client.predict(SEED_QUESTION, date_from="2000", date_to="2030-06", api_name="/chat")
    assert undated["citations"] == []  # the seed report states no date, so a date range excludes it


def test_chat_api_rejects_bad_questions(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="the question is empty"):
        client.predict("   ", api_name="/chat")
    with pytest.raises(AppError, match="limit is 2,000"):
        client.predict("why " * 600, api_name="/chat")
    with pytest.raises(AppError, match="not a date"):
        client.predict(SEED_QUESTION, date_from="last week", api_name="/chat")
    with pytest.raises(AppError, match="k must be between 1 and 100"):
        client.predict(SEED_QUESTION, k=500, api_name="/chat")
    with pytest.raises(AppError, match="threshold must be between 0 and 1"):
        client.predict(SEED_QUESTION, threshold=5, api_name="/chat")
    with pytest.raises(AppError, match="history must be a list of earlier answers"):
        client.predict("Which ministry helped them?", [{"text": "x"}], api_name="/chat")


def test_chat_api_answer_ids_and_feedback(client, served):
    from gradio_client.exceptions import AppError

    service = served[1]
    d = client.predict("Who announced that the networks had been dismantled?", api_name="/chat")
    assert re.fullmatch(r"[0-9a-f]{32}", d["answer_id"]) and re.fullmatch(r"[0-9a-f]{32}", d["conversation_id"])
    assert Answer.from_dict(d).to_dict().keys() <= d.keys()  # every key /chat returned before is still there
    follow = client.predict("When was it announced?", [d], api_name="/chat")
    assert follow["conversation_id"] == d["conversation_id"] and follow["answer_id"] != d["answer_id"]
    report = service.assistant.store.documents[SEED_ID].text
    s = report.index("Iraqi Security Media Cell")
    got = client.predict(d["answer_id"], "wrong", SEED_ID, s - 1, s + 25, None, "<b>the cell</b>",
                         api_name="/feedback")
    c = got["correction"]
    assert (got["verdict"], c["text"], c["start"], c["end"], c["source"]) == (
        "wrong", "Iraqi Security Media Cell", s, s + 25, "selected")  # the space before it trimmed off
    assert got["comment"] == "<b>the cell</b>" and got["index_generation"] == service.assistant.store.generation.name
    typed = client.predict(follow["answer_id"], "wrong", text="on Saturday", api_name="/feedback")
    assert typed["correction"]["source"] == "located" and report[typed["correction"]["start"]:].startswith("on Sat")
    for args, msg in [((d["answer_id"], "meh"), "unknown verdict"), (("0" * 32, "right"), "no answer with id"),
                      ((d["answer_id"], "wrong", SEED_ID, 10, 10 ** 6), "outside report"),
                      ((d["answer_id"], "wrong", "gone", 0, 4), "no report 'gone'"),
                      ((d["answer_id"], "right", None, None, None, "2012"), "goes with the verdict")]:
        with pytest.raises(AppError, match=msg):
            client.predict(*args, api_name="/feedback")
    assert client.predict(d["answer_id"], "right", api_name="/feedback")["correction"] is None  # changed
    assert [h["verdict"] for h in service.feedback.history(d["answer_id"])] == ["wrong", "right"]
    row = next(r for r in service.reports() if r[0] == SEED_ID)
    assert "1 right" in row[-1] and "1 wrong" in row[-1]


def test_upload_is_answerable_at_once_and_removable(client, served, tmp_path):
    service = served[1]
    path = tmp_path / "lighthouse-survey.txt"
    path.write_text("Lighthouse survey\nDate: 2 March 2024\nThe Kelmar lighthouse keeper counted 1,337 seals on the "
                    "northern rocks during the spring survey.\n", encoding="utf-8")
    steps: list[tuple[str, int, int]] = []
    done, errors = service.add_files([str(path)], progress=lambda *a: steps.append(a))
    assert errors == [] and done[0] == "added lighthouse-survey" and steps
    d = client.predict("How many seals did the Kelmar lighthouse keeper count?", api_name="/chat")
    assert d["text"] == "1,337" and d["citations"][0]["doc_id"] == "lighthouse-survey"
    assert d["citations"][0]["source"] == "upload: lighthouse-survey.txt"
    assert ["lighthouse-survey", "Lighthouse survey", "2024-03-02"] == service.reports()[-1][:3]
    assert "removed lighthouse-survey" in service.remove(["lighthouse-survey"])
    assert [r[0] for r in service.reports()] == [SEED_ID]
    gone = client.predict("How many seals did the Kelmar lighthouse keeper count?", api_name="/chat")
    assert all(c["doc_id"] == SEED_ID for c in gone["citations"])


def test_bad_uploads_never_touch_the_index(served, tmp_path):
    service = served[1]
    before = current_generation(service.index_dir)
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    (tmp_path / "big.txt").write_text("word " * 300_000)  # 1.4 MB: over this app's 1 MB limit
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    done, errors = service.add_files([str(tmp_path / n) for n in ("tool.exe", "big.txt", "binary.txt", "broken.pdf")])
    assert done == [] and len(errors) == 4
    assert ".exe files are not supported; upload .docx" in errors[0]
    assert "big.txt is 1.4 MB; the limit is 1 MB" in errors[1]
    assert errors[2].startswith("binary.txt: binary file") and errors[3].startswith("broken.pdf")
    assert current_generation(service.index_dir) == before == service.assistant.store.generation


def test_login_required_with_auth(seed_index_copy):
    """The options main() launches with: --auth guards the page and the API."""
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    args = app.parse_args(["--port", str(free_port()), "--index", str(seed_index_copy), "--auth", "ann:s3cret"])
    service = app.ChatService(args.index, settings=Settings())
    opts = app.launch_options(args, service)
    assert (opts["server_name"], opts["share"], opts["max_file_size"]) == ("127.0.0.1", False, 20 * 2**20)
    demo = app.build_demo(service)
    demo.queue().launch(**opts, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(url + "config")
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("ann", "wrong"), verbose=False)
        client = Client(url, auth=("ann", "s3cret"), verbose=False)
        d = client.predict(SEED_QUESTION, api_name="/chat")
        assert d["text"] == "2012"
        client.predict(d["answer_id"], "right", api_name="/feedback")
        row = service.feedback.get(d["answer_id"])
        assert (row.user, row.verdict_user, row.verdict) == ("ann", "ann", "right")  # the signed-in user
        assert service.feedback_db == seed_index_copy / "feedback.sqlite3"  # beside the index by default
    finally:
        demo.close()


def test_a_damaged_model_stops_the_app_with_one_line(seed_index_copy, tmp_path, monkeypatch, capsys):
    weights = damaged_model(tmp_path, monkeypatch, "reader", "model.safetensors", lambda b: b[:4096])
    with pytest.raises(SystemExit) as stop:
        app.main(["--index", str(seed_index_copy), "--port", str(free_port())])
    assert str(stop.value).startswith("error: cannot read the model weights")
    assert str(weights) in str(stop.value)
