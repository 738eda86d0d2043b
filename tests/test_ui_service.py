"""The chat's library side (qa/ui/service.py), without Gradio: dates, upload names, a question's turn on the page,
verdicts, the feedback database, the first run. Real models, real index."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SEED_ID, SEED_QUESTION
from qa.errors import BadFeedback, BadFilter, BadQuestion, IndexNotFound
from qa.settings import Settings
from qa.store.index import current_generation
from qa.ui.render import esc
from qa.assistant import check_date
from qa.ui.service import MAX_HISTORY, ChatService, upload_id


def test_the_service_does_not_need_gradio():
    code = "import sys, qa.ui.service; sys.exit('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_check_date():
    assert check_date("", False) is None and check_date(None, True) is None
    assert check_date("2012", False) == "2012-01-01" and check_date("2012", True) == "2012-12-31"
    assert check_date("2012-05", True) == "2012-05-31" and check_date(" 2012-05-06 ", True) == "2012-05-06"
    with pytest.raises(BadFilter, match="YYYY-MM-DD"):
        check_date("May 2012", False)


@pytest.mark.parametrize("name,expected", [("Annual report 2012.pdf", "Annual-report-2012"), ("../../x.txt", "x"),
                                           ("....txt", "upload"), ("a..b.md", "a..b"), ("<script>.txt", "script"),
                                           ("名前.txt", "名前")])
def test_upload_id_is_a_name_never_a_path(name, expected):
    assert upload_id(name) == expected


def test_unsupported_or_large_uploads_say_why(tmp_path):
    service = ChatService(tmp_path / "index", settings=Settings(), max_upload_mb=0.001)
    (tmp_path / "notes.exe").write_bytes(b"MZ")
    (tmp_path / "big.txt").write_text("word " * 1000)
    done, errors = service.add_files([str(tmp_path / "notes.exe"), str(tmp_path / "big.txt")])
    assert done == [] and errors[0].startswith("notes.exe: .exe files are not supported")
    assert errors[1].startswith("big.txt is 0.0 MB; the limit is") and "--max-upload-mb" in errors[1]
    assert not (tmp_path / "index").exists()  # nothing valid: the index was not even opened
    with pytest.raises(ValueError):
        ChatService(tmp_path / "index", max_upload_mb=0)


def test_feedback_db_default_and_override(tmp_path):
    assert ChatService(tmp_path / "i").feedback_db == tmp_path / "i" / "feedback.sqlite3"
    assert ChatService(tmp_path / "i", feedback_db=tmp_path / "f.db").feedback_db == tmp_path / "f.db"


def test_an_unwritable_feedback_database_never_stops_an_answer(seed_index_copy, tmp_path):
    service = ChatService(seed_index_copy, settings=Settings(), feedback_db=tmp_path)  # a folder, not a file
    answer = service.ask(SEED_QUESTION)
    assert answer.text == "2012" and service.record(answer) is None
    assert [r[0] for r in service.reports()] == [SEED_ID]


def test_a_turn_answers_renders_and_keeps_the_conversation(seed_index_copy, tmp_path):
    service = ChatService(seed_index_copy, settings=Settings(), feedback_db=tmp_path / "f.db")
    turn = service.turn(SEED_QUESTION, [], [], 5, 0.5, None, "", "", None, user="ann")
    assert [m["role"] for m in turn.messages] == ["user", "assistant"] and "qa-fb" in turn.messages[1]["content"]
    assert turn.copy_text.startswith(f"Q: {SEED_QUESTION}\nA: 2012 (confidence")
    assert [a.text for a in turn.history] == ["2012"]
    again = service.turn("Who dismantled the two networks?", turn.messages, turn.history, 5, 0.5, None, "", "",
                         turn.conversation)
    assert len(again.messages) == 4 and len(again.history) == 2 and again.conversation == turn.conversation
    with pytest.raises(BadFilter):
        service.turn(SEED_QUESTION, [], [], 5, 0.5, None, "last May", "", None)
    assert MAX_HISTORY >= 2


def test_the_api_turn_and_a_verdict_with_its_right_answer(seed_index_copy, tmp_path):
    service = ChatService(seed_index_copy, settings=Settings(), feedback_db=tmp_path / "f.db")
    first = service.chat(SEED_QUESTION)
    follow = service.chat("Who dismantled the two networks?", [first])
    assert first["text"] == "2012" and follow["conversation_id"] == first["conversation_id"]
    with pytest.raises(BadQuestion, match="history must be a list of earlier answers"):
        service.chat(SEED_QUESTION, [{"no": "answer"}])
    messages = [{"role": "assistant", "content": service.feedback_block(service.feedback.get(first["answer_id"]))}]
    shown = service.verdict(first["answer_id"], "wrong", messages)
    assert shown.ask_right_answer and "Marked wrong" in shown.heading and "qa-on" in shown.messages[0]["content"]
    with pytest.raises(BadFeedback, match="select the right answer"):
        service.correction(first["answer_id"], "wrong", "", " ", "", messages)
    with pytest.raises(BadFeedback, match="did not come through"):
        service.correction(first["answer_id"], "wrong", "[1, 2]", "", "", messages)
    report = service.assistant.store.documents[SEED_ID].text
    s = report.index("2012")
    _, status = service.correction(first["answer_id"], "wrong", json.dumps({"doc": SEED_ID, "start": s, "end": s + 4}),
                                   "", "", messages)
    assert status == f"Marked wrong: saved «2012» ({esc(SEED_ID)}, characters {s}-{s + 4})."  # Markdown-safe
    assert service.verdict(first["answer_id"], "right", messages).status == "Marked right: saved."


def test_first_run_builds_the_index_from_seeds(tmp_path):
    said: list[str] = []
    service = ChatService(tmp_path / "index", seeds=ROOT / "seeds", settings=Settings())
    service.ensure_index(say=said.append)
    assert current_generation(tmp_path / "index").exists()
    assert "building it from" in said[0] and "seeds" in said[0] and "1 reports" in said[1]
    service.ensure_index(say=said.append)  # an index is there now: nothing to do
    assert len(said) == 2


def test_without_seeds_a_missing_index_is_a_clear_error_and_nothing_is_built(tmp_path):
    service = ChatService(tmp_path / "index", settings=Settings())
    with pytest.raises(IndexNotFound, match="qa index REPORTS"):
        service.ensure_index()
    assert not (tmp_path / "index").exists()
