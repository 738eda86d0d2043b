"""qa feedback end to end: verdicts on real answers over the seed index -> export (JSONL, SQuAD) -> `qa eval` with the
real readers -> `qa eval --compare`, and the HTML report's flagged questions (escaped)."""
from __future__ import annotations

import csv
import json
import re

import pytest

from qa.assistant import Assistant
from qa.cli import main
from qa.feedback.store import FeedbackStore
from qa.feedback.verdicts import give_verdict, record
from qa.eval.metrics import exact_score
from qa.eval.questions import load_questions
from qa.settings import Settings

from conftest import SEED_ID, SEED_QUESTION

ANNOUNCED = "Who announced that the networks had been dismantled?"
CELL = "Iraqi Security Media Cell"


@pytest.fixture(scope="module")
def rules_assistant(seed_index, encoder):
    from qa.reading.rules_reader import RulesReader

    return Assistant.open(seed_index, settings=Settings(index_dir=str(seed_index), reader="rules"),
                          reader=RulesReader())


@pytest.fixture
def verdicts(seed_assistant, tmp_path):
    """A feedback database with four verdicts on the span reader's answers; (path, {question: gold answers})."""
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    index, a = seed_assistant.store, seed_assistant

    def said(question: str, verdict: str, **kw):
        aid = record(store, a.ask(question, threshold=kw.pop("threshold", None)), index, a.reader, user="ann")
        give_verdict(store, aid, verdict, index, user="ann", **kw)

    text = index.documents[SEED_ID].text
    said(SEED_QUESTION, "right")
    s = text.index(CELL)
    # at threshold 0 the reader gives its best guess here, which is wrong (the intelligence service, not the cell)
    said(ANNOUNCED, "wrong", threshold=0.0, doc_id=SEED_ID, start=s, end=s + len(CELL),
         comment="<script>alert(1)</script>")
    said("What is the capital of France?", "right")  # a right "not found"
    said("How many people were convicted under the law in 2019?", "not_in_reports", threshold=0.0)
    said("Who dismantled the two networks?", "wrong")  # no right answer given: left out of the export
    return store.path, {SEED_QUESTION: ["2012"], ANNOUNCED: [CELL], "What is the capital of France?": [],
                        "How many people were convicted under the law in 2019?": []}


def test_list_and_stats(verdicts, seed_index, capsys):
    db, _ = verdicts
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and all("[stale]" not in line for line in out)
    assert f"right answer: {CELL} ({SEED_ID}" in out[1] and "comment: <script>" in out[1] and "by ann" in out[1]
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "list", "--verdict", "wrong", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["question"] for r in rows] == [ANNOUNCED, "Who dismantled the two networks?"]
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "stats", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["all"] == {"n": 5, "right": 40.0, "wrong": 40.0, "not_in_reports": 20.0, "is_there": 0.0}
    assert s["by_type"]["who"]["wrong"] == 100.0 and s["by_type"]["when"]["right"] == 100.0
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "list", "--since", "May"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_export_eval_compare_round_trip(verdicts, seed_index, seed_assistant, rules_assistant, tmp_path, capsys,
                                       monkeypatch):
    db, golds = verdicts
    exported = tmp_path / "staff.jsonl"
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "export", "-o", str(exported)]) == 0
    assert "4 questions (2 answerable, 2 unanswerable) from 5 verdicts" in capsys.readouterr().err
    prov = json.loads(exported.read_text().splitlines()[0])["provenance"]
    assert prov["index_generations"] == [seed_assistant.store.generation.name] and prov["verdicts"] == 5
    assert prov["left_out"] == {"no_right_answer": 1} and prov["reader_versions"][0].startswith("span:reader:")
    qs = load_questions(exported)  # qa eval's own loader reads the export as is
    assert {q.question: list(q.answers) for q in qs.questions} == golds
    assert {q.question: q.doc_id for q in qs.questions if q.answers} == {SEED_QUESTION: SEED_ID, ANNOUNCED: SEED_ID}
    runs = {}
    for reader, assistant in (("span", seed_assistant), ("rules", rules_assistant)):
        out = tmp_path / reader
        assert main(["eval", str(exported), "--index", str(seed_index), "--reader", reader, "--no-progress",
                     "--json", "--out", str(out)]) == 0
        summary = json.loads(capsys.readouterr().out)
        records = {r["question"]: float(r["EM"]) for r in csv.DictReader((out / "records.csv").open())}
        expected = {q: exact_score(assistant.ask(q).text or "", g) for q, g in golds.items()}  # asked directly
        assert records == expected
        assert summary["exact_match"] == pytest.approx(100 * sum(expected.values()) / 4)
        runs[reader] = (out, expected)
    # the span reader still misses what staff flagged (a wrong answer or none); the rules reader names the cell
    assert runs["span"][1][ANNOUNCED] == 0.0 and runs["rules"][1][ANNOUNCED] == 1.0
    assert main(["eval", "--compare", str(runs["span"][0]), str(runs["rules"][0]), "--json"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    ids = {q.question: q.id for q in qs.questions}
    better = [ids[q] for q in golds if runs["rules"][1][q] > runs["span"][1][q]]
    assert set(cmp["better"]) >= set(better) and ids[ANNOUNCED] in cmp["better"]
    # the evaluators' view: flagged questions, old answer beside the new one, everything escaped
    page = (runs["rules"][0] / "report.html").read_text()
    section = re.search(r"<h2>Flagged by staff</h2>(.*?)</table>", page, re.S).group(1)
    row = re.search(rf"<tr[^>]*><td>{ids[ANNOUNCED]}</td>.*?</tr>", section).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    old = seed_assistant.ask(ANNOUNCED, threshold=0.0).text  # the answer staff marked wrong
    assert old and old != CELL
    assert cells[2:6] == ["wrong", old, CELL, rules_assistant.ask(ANNOUNCED).text]
    assert "<script" not in page
    # SQuAD export: carries the report's text, so qa eval runs it without an index
    squad = tmp_path / "staff.json"
    assert main(["feedback", "--db", str(db), "--index", str(seed_index), "export", "--format", "squad",
                 "-o", str(squad)]) == 0
    capsys.readouterr()
    data = json.loads(squad.read_text())
    assert data["provenance"]["questions"] == 4 and data["data"][0]["title"] == SEED_ID
    assert data["data"][0]["paragraphs"][0]["context"] == seed_assistant.store.documents[SEED_ID].text
    qa_ = {q["question"]: q for q in data["data"][0]["paragraphs"][0]["qas"]}
    context = data["data"][0]["paragraphs"][0]["context"]
    start = qa_[ANNOUNCED]["answers"][0]["answer_start"]
    assert context[start:start + len(CELL)] == CELL and qa_["What is the capital of France?"]["is_impossible"]
    monkeypatch.chdir(tmp_path)  # qa eval caches the set's corpus index under .cache/
    assert main(["eval", str(squad), "--reader", "rules", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4


def test_stale_verdicts_are_listed_and_left_out_of_exports(verdicts, seed_index_copy, tmp_path, capsys):
    db, _ = verdicts
    assert main(["remove", SEED_ID, "--index", str(seed_index_copy)]) == 0
    capsys.readouterr()
    assert main(["feedback", "--db", str(db), "--index", str(seed_index_copy), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("[stale]" in line for line in lines)  # every answer came from that report
    assert main(["feedback", "--db", str(db), "--index", str(seed_index_copy), "export"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["provenance"]["left_out"] == {"stale": 5} and len(out) == 1


def test_purge_and_delete_user(verdicts, seed_index, capsys):
    db, _ = verdicts
    assert main(["feedback", "--db", str(db), "purge", "--before", "2000-01-01"]) == 0
    assert "deleted 0 answers" in capsys.readouterr().out
    assert main(["feedback", "--db", str(db), "delete", "--user", "ann"]) == 0
    assert "deleted 5 answers" in capsys.readouterr().out
    assert FeedbackStore(db).count_answers() == 0
    assert main(["feedback", "--db", str(db), "purge", "--before", "01/02/2025"]) == 2
    assert main(["feedback", "--db", str(db.parent / "none.sqlite3"), "list"]) == 2
    assert "no feedback database at" in capsys.readouterr().err
