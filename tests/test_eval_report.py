"""Evaluation runs, summaries, run files, comparison and the HTML report.

The assistant here really computes: it retrieves reports by word overlap and reads the sentence
that shares most words with the question, answering with the longest run of new words in it.
Every expected figure below was worked out by hand from tests/data/eval/.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qa.eval.report import write_html_report
from qa.eval.evaluate import (
    Record,
    compare,
    evaluate,
    format_compare,
    format_table,
    load_records,
    summarize,
    write_csv,
    write_predictions,
)
from qa.eval.metrics import score_predictions
from qa.eval.questions import QuestionSet, load_questions
from qa.types import Answer, Chunk, Citation, Hit

DATA = Path(__file__).parent / "data" / "eval"
STOP = frozenset("a an the of in is was by it its for what who when where how many much did does do which after "
                 "has have will to and on at be are were".split())
PRONOUNS = frozenset({"it", "its", "they", "their", "there"})
WORD = re.compile(r"[A-Za-z0-9]+")
SENTENCE = re.compile(r"[^.!?]+[.!?]?")


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


class OverlapAssistant:
    """Word-overlap retriever + reader over (doc_id, title, text) reports."""

    def __init__(self, docs: list[tuple[str, str, str]]) -> None:
        self.docs = {d: (title, text) for d, title, text in docs}
        self.histories: list[int | None] = []  # length of the history each ask received

    def retrieve(self, question: str, k: int) -> list[Hit]:
        content = _words(question) - STOP
        scored = sorted(((len(content & _words(text)), d) for d, (_, text) in self.docs.items()),
                        key=lambda s: (-s[0], s[1]))
        return [Hit(Chunk(d, 0, 0, len(self.docs[d][1]), self.docs[d][1]), float(s), rank=i)
                for i, (s, d) in enumerate(scored[:k]) if s > 0]

    def read(self, question: str, context: str, doc_id: str = "context") -> Answer:
        return self._answer(question, [(doc_id, context)])

    def ask(self, question: str, history: list[Answer] | None = None, k: int | None = None) -> Answer:
        self.histories.append(None if history is None else len(history))
        resolved = question
        cited = [a for a in history or [] if a.citations]
        if cited and _words(question) & PRONOUNS:
            title = cited[-1].citations[0].title
            resolved = WORD.sub(lambda m: title if m.group().lower() in PRONOUNS else m.group(), question)
        hits = self.retrieve(resolved, k or 10)
        answer = self._answer(resolved, [(h.chunk.doc_id, h.chunk.text) for h in hits])
        return replace(answer, question=question, resolved_question=resolved if resolved != question else None)

    def _answer(self, question: str, texts: list[tuple[str, str]]) -> Answer:
        q_words = _words(question)
        content = q_words - STOP
        best = (0, "", "", 0, 0)  # overlap, doc id, text, sentence start, end
        for doc_id, text in texts:
            for m in SENTENCE.finditer(text):
                overlap = len(content & _words(m.group()))
                if overlap > best[0]:
                    best = (overlap, doc_id, text, m.start(), m.end())
        overlap, doc_id, text, start, end = best
        score = overlap / len(content) if content else 0.0
        if overlap < 2:
            return Answer(question=question, text=None, score=score)
        runs: list[list[re.Match]] = [[]]
        for tok in WORD.finditer(text, start, end):
            if tok.group().lower() in q_words or tok.group().lower() in STOP:
                runs.append([])
            else:
                runs[-1].append(tok)
        run = max(runs, key=len)  # the first of the longest
        a_start, a_end = run[0].start(), run[-1].end()
        title = self.docs.get(doc_id, (doc_id, ""))[0]
        cit = Citation(doc_id, title, None, "", text[start:end].strip(), start, end, a_start, a_end, score)
        return Answer(question=question, text=text[a_start:a_end], score=score, citations=(cit,))


def _reports() -> list[tuple[str, str, str]]:
    rows = [json.loads(line) for line in (DATA / "reports.jsonl").read_text().splitlines()]
    return [(r["id"], r["title"], r["text"]) for r in rows]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return evaluate(load_questions(DATA / "questions.jsonl"), OverlapAssistant(_reports()), progress=False)


# id: (prediction, exact, f1, confidence, gold_rank, cited_support, qtype) worked out by hand
EXPECTED = {
    "q1": ("Jane Porter", 1.0, 1.0, 1.0, 1, True, "who"),
    "q2": ("Jane Porter", 0.0, 0.0, 2 / 3, 1, False, "when"),
    "q3": ("400 metres", 1.0, 1.0, 1.0, 1, True, "how"),
    "q4": ("Tamar river", 0.0, 0.0, 2 / 3, 1, False, "who"),
    "q5": ("320", 1.0, 1.0, 1.0, 1, True, "how many"),
    "q6": ("produced wool blankets", 0.0, 0.8, 0.75, 1, True, "what"),
    "q7": ("", 1.0, 1.0, 0.5, None, None, "who"),
    "q8": ("Tamar river", 0.0, 0.0, 2 / 3, None, None, "when"),
    "q9": ("depot near", 0.0, 0.0, 2 / 3, 3, False, "where"),
    "q10": ("", 0.0, 0.0, 0.0, None, None, "who"),
}


def test_evaluate_records_match_hand_worked_values(records: list[Record]) -> None:
    assert [r.id for r in records] == list(EXPECTED)
    for r in records:
        pred, em, f1, conf, rank, cited, qtype = EXPECTED[r.id]
        assert (r.prediction, r.exact, r.gold_rank, r.cited_support, r.qtype) == (pred, em, rank, cited, qtype), r.id
        assert r.f1 == pytest.approx(f1) and r.confidence == pytest.approx(conf)
        assert r.latency_ms > 0
    assert [r.doc_id for r in records][6:] == [None, None, "harbor", "harbor"]


def test_summary_of_evaluated_run(records: list[Record]) -> None:
    s = summarize(records)
    assert s["n"] == 10
    assert s["exact_match"] == pytest.approx(40.0) and s["f1"] == pytest.approx(48.0)
    assert s["has_answer"] == {"n": 8, "exact_match": pytest.approx(37.5), "f1": pytest.approx(47.5)}
    assert s["no_answer"] == {"n": 2, "accuracy": pytest.approx(50.0)}
    # 8 questions name a report; ranks 1,1,1,1,1,1,3,absent
    assert s["retrieval"] == {"recall@1": pytest.approx(75.0), "recall@5": pytest.approx(87.5),
                              "recall@10": pytest.approx(87.5), "mrr": pytest.approx((6 + 1 / 3) / 8)}
    assert s["citation_support"] == pytest.approx(400 / 7)
    # sweep on 1 - confidence: q1,q3,q5 (0) -> 5, q6 (.25) -> 5.8, then q8 answers wrongly -> 4.8
    assert s["best_f1_thresh"] == {"f1": pytest.approx(58.0), "thresh": pytest.approx(0.25)}
    assert s["by_type"]["who"] == {"n": 4, "exact_match": pytest.approx(50.0), "f1": pytest.approx(50.0)}
    assert s["by_type"]["what"] == {"n": 1, "exact_match": 0.0, "f1": pytest.approx(80.0)}
    assert set(s["by_type"]) == {"who", "when", "how", "how many", "what", "where"}
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]


def test_summary_equals_official_scorer(records: list[Record]) -> None:
    s = summarize(records)
    official = score_predictions({r.id: list(r.golds) for r in records}, {r.id: r.prediction for r in records})
    assert s["exact_match"] == official["exact"] and s["f1"] == official["f1"]
    assert s["has_answer"]["f1"] == pytest.approx(official["HasAns_f1"])
    assert s["no_answer"]["accuracy"] == pytest.approx(official["NoAns_exact"])


def _record(rid: str, golds: tuple[str, ...], pred: str, conf: float, rank: int | None = None,
            doc: str | None = None) -> Record:
    from qa.eval.metrics import exact_score, f1_score
    from qa.reading.answer_types import question_type

    q = f"What about {rid}?"
    return Record(rid, q, golds, pred, exact_score(pred, golds), f1_score(pred, golds), conf, rank, 10.0,
                  question_type(q), None, doc)


def test_summarize_hand_records_without_retrieval() -> None:
    recs = [
        _record("a", ("Denver Broncos", "Broncos"), "the Broncos", 0.9),  # multi-answer: EM 1
        _record("b", ("blue whale",), "whale", 0.8),  # F1 2/3
        _record("c", (), "", 0.2),  # unanswerable, abstained
        _record("d", (), "London", 0.7),  # unanswerable, answered
    ]
    s = summarize(recs)
    assert s["exact_match"] == pytest.approx(50.0) and s["f1"] == pytest.approx(100 * (8 / 3) / 4)
    assert s["has_answer"]["f1"] == pytest.approx(100 * (5 / 3) / 2)
    assert s["no_answer"] == {"n": 2, "accuracy": 50.0}
    assert s["retrieval"] == {"recall@1": None, "recall@5": None, "recall@10": None, "mrr": None}
    assert s["citation_support"] is None
    assert s["latency_ms"] == {"p50": 10.0, "p95": 10.0, "max": 10.0}
    # na = .1 a, .2 b, .3 d, .8 c; from 2: a -> 3, b -> 3.667 (thresh .2), d -> 2.667, c -> 2.667
    assert s["best_f1_thresh"]["f1"] == pytest.approx(100 * (11 / 3) / 4)
    assert s["best_f1_thresh"]["thresh"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no records"):
        summarize([])


def test_conversations_run_in_turn_order_with_history() -> None:
    qs = load_questions(DATA / "conversations.jsonl")
    shuffled = QuestionSet(qs.name, tuple(reversed(qs.questions)))
    assistant = OverlapAssistant(_reports())
    recs = evaluate(shuffled, assistant, k=5, progress=False)
    # conversations in order of first appearance (c2 now comes first), each in turn order
    assert [r.id for r in recs] == ["c2:0", "c2:1", "c2:2", "c1:0", "c1:1"]
    assert assistant.histories == [None, 1, 2, None, 1]
    # "its"/"it" resolve to the report cited before, e.g. "What did Acme mill produce for the army?"
    assert [r.prediction for r in recs] == ["Tamar river", "took six", "Tamar river", "Jane Porter",
                                            "produced wool blankets"]
    assert [r.f1 for r in recs] == pytest.approx([0.0, 2 / 3, 0.0, 1.0, 0.8])
    assert [r.gold_rank for r in recs] == [1, 1, None, 1, 1]
    # without the history the follow-up shares one word with any sentence: no answer
    assert OverlapAssistant(_reports()).ask("What did it produce for the army?").text is None


def test_gold_context_mode_uses_read_and_skips_retrieval() -> None:
    qs = load_questions(DATA / "squad_tiny.json")
    recs = evaluate(qs, OverlapAssistant(list(qs.corpus)), gold_context=True, progress=True)
    assert [r.prediction for r in recs] == ["Jane Porter", "Jane Porter", "1975", "Tamar river"]
    assert [r.exact for r in recs] == [1.0, 0.0, 1.0, 0.0]
    assert all(r.gold_rank is None and r.doc_id is None for r in recs)
    assert recs[2].qtype == "when"
    s = summarize(recs)
    assert s["exact_match"] == pytest.approx(50.0) and s["retrieval"]["mrr"] is None
    # the same set through retrieval: every paragraph of the corpus is a report
    recs = evaluate(qs, OverlapAssistant(list(qs.corpus)), progress=False)
    assert [r.gold_rank for r in recs] == [1, 1, 1, 1]


def test_evaluate_rejects_what_it_cannot_run() -> None:
    qs = load_questions(DATA / "questions.jsonl")
    with pytest.raises(ValueError, match="no gold context"):
        evaluate(qs, OverlapAssistant(_reports()), gold_context=True, progress=False)
    with pytest.raises(TypeError, match="read"):
        evaluate(qs, object(), gold_context=True, progress=False)


def test_run_files_round_trip_and_compare(records: list[Record], tmp_path: Path) -> None:
    write_predictions(records, tmp_path / "predictions.json")
    assert json.loads((tmp_path / "predictions.json").read_text())["q9"] == "depot near"
    write_csv(records, tmp_path / "records.csv")
    assert load_records(tmp_path) == records
    worse = [replace(r, prediction="", exact=0.0, f1=0.0) if r.id == "q1" else r for r in records]
    better = [replace(r, prediction="wool blankets", exact=1.0, f1=1.0) if r.id == "q6" else r for r in worse]
    cmp = compare(records, better)
    assert cmp["better"] == ["q6"] and cmp["worse"] == ["q1"] and cmp["n_common"] == 10
    assert cmp["delta"]["exact_match"] == pytest.approx(0.0)
    assert cmp["delta"]["f1"] == pytest.approx(-8.0)  # -1 on q1, +0.2 on q6, over 10 questions
    text = format_compare(cmp)
    assert "1 better, 1 worse" in text and "q6" in text
    table = format_table(summarize(records))
    assert "exact_match" in table and "40.00" in table and "how many" in table
    with pytest.raises(FileNotFoundError, match="records.csv"):
        load_records(tmp_path / "nowhere")


class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_is_self_contained_and_escaped(records: list[Record], tmp_path: Path) -> None:
    evil = replace(records[1], id="evil", question="<script>alert(1)</script> When did it close?")
    recs = records + [evil]
    path = write_html_report(recs, summarize(recs), tmp_path / "report.html", title="Run <1>")
    page = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert page.count("<svg") == 3
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Run &lt;1&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "Calibration" in page and "Latency" in page and "question type" in page


def test_flagged_questions_show_old_and_new_answers_escaped(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    recs = [_record("fb-1", (f"{evil} 913",), f"{evil} 913", 0.9), _record("fb-2", (), "", 0.1),
            _record("other", ("x",), "y", 0.5)]
    flagged = {"fb-1": {"verdict": "wrong", "old_answer": f"{evil} 2031"}, "fb-2": {"verdict": "not_in_reports",
                                                                                 "old_answer": "May"}}
    page = write_html_report(recs, summarize(recs), tmp_path / "r.html", title="t", flagged=flagged).read_text()
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == [] and "<img" not in page
    section = re.search(r"<h2>Flagged by staff</h2><p>(.*?)</p>(.*?)</table>", page, re.S)
    assert section.group(1) == "2 of 2 questions answered as staff said."
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr class[^>]*>(.*?)</tr>", section.group(2))]
    esc = "&lt;img src=x onerror=alert(1)&gt;"
    assert [r[2:6] for r in rows] == [["wrong", f"{esc} 2031", f"{esc} 913", f"{esc} 913"],
                                      ["not_in_reports", "May", "(not in the reports)", "(not found)"]]
    assert "Flagged by staff" not in write_html_report(recs, summarize(recs), tmp_path / "s.html", title="t").read_text()
