"""Question-set loaders (JSONL, conversations, CSV, SQuAD JSON) and sampling."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.eval.questions import Question, QuestionSet, load_questions, sample

DATA = Path(__file__).parent / "data" / "eval"


def test_jsonl_rows() -> None:
    qs = load_questions(DATA / "questions.jsonl")
    assert qs.name == "questions" and len(qs.questions) == 10 and qs.corpus == ()
    q1 = qs.questions[0]
    assert q1 == Question(id="q1", question="Who founded the Acme mill?", answers=("Jane Porter",), doc_id="acme")
    assert qs.questions[4].doc_id == "school"  # "source" is accepted for doc_id
    assert qs.questions[4].answers == ("320", "320 pupils")
    assert qs.questions[6].answers == () and qs.questions[6].doc_id is None
    assert qs.questions[9].id == "q10"  # no id: named after its line


def test_jsonl_conversations() -> None:
    qs = load_questions(DATA / "conversations.jsonl")
    assert [q.id for q in qs.questions] == ["c1:0", "c1:1", "c2:0", "c2:1", "c2:2"]
    assert [(q.conversation, q.turn) for q in qs.questions] == [("c1", 0), ("c1", 1), ("c2", 0), ("c2", 1), ("c2", 2)]
    assert qs.questions[3].answers == ("six years", "six")
    assert qs.questions[4].answers == ()


def test_csv() -> None:
    qs = load_questions(DATA / "questions.csv")
    assert [q.id for q in qs.questions] == ["c-1", "q3", "c-3"]  # the second data row is on line 3
    assert qs.questions[0].answers == ("Jane Porter", "Porter") and qs.questions[0].doc_id == "acme"
    assert qs.questions[1].question == "How long is the main pier, in metres?"
    assert qs.questions[2].answers == () and qs.questions[2].doc_id is None


def test_squad_json_builds_questions_and_corpus() -> None:
    qs = load_questions(DATA / "squad_tiny.json")
    assert [q.id for q in qs.questions] == ["s1", "s2", "s3", "s4"]
    s1 = qs.questions[0]
    assert s1.answers == ("Jane Porter", "by Jane Porter")  # deduplicated, order kept
    assert s1.doc_id == "Acme_mill#0" and s1.context is not None and s1.context.startswith("The Acme mill")
    assert qs.questions[1].answers == ()  # is_impossible
    assert qs.questions[2].doc_id == "Acme_mill#1"
    assert [(d, t) for d, t, _ in qs.corpus] == [("Acme_mill#0", "Acme_mill"), ("Acme_mill#1", "Acme_mill"),
                                                 ("Kell_bridge#0", "Kell_bridge")]
    assert qs.corpus[1][2] == "It closed in 1975 after a fire."


def test_json_list_of_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"question": "Who?", "answers": ["me"]}, {"question": "Why?", "answers": []}]))
    qs = load_questions(path)
    assert [(q.id, q.answers) for q in qs.questions] == [("q1", ("me",)), ("q2", ())]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"question": "a?", "answers": []}\n{"question": "b?", "answers": [}\n', r"bad\.jsonl:2: bad JSON"),
        ("bad.jsonl", '{"question": "a?", "answers": []}\n\n{"answers": ["x"]}\n', r"bad\.jsonl:3: missing 'question'"),
        ("bad.jsonl", '{"question": "a?", "answers": "x"}\n', r"bad\.jsonl:1: 'answers' must be a list"),
        ("bad.jsonl", '{"question": "a?"}\n', r"bad\.jsonl:1: missing 'answers'"),
        ("bad.jsonl", '{"id": "c", "turns": [{"question": "a?", "answers": []}, {"question": "", "answers": []}]}\n',
          r"bad\.jsonl:1 \(turn 1\): missing 'question'"),
        ("bad.jsonl", '{"id": "x", "question": "a?", "answers": []}\n{"id": "x", "question": "b?", "answers": []}\n',
          r"question id 'x' appears twice"),
        ("bad.jsonl", "\n\n", r"no questions found"),
        ("bad.csv", "question,answer\nWho?,me\n", r"bad\.csv:1: missing column 'answers'"),
        ("bad.csv", "question,answers\nWho?,me\nWhy?,because,extra\n", r"bad\.csv:3: bad row"),
        ("bad.csv", "question,answers,id\nWho?,me,a\nWhy?\n", r"bad\.csv:3: bad row"),
        ("bad.csv", "question,answers\nWho?,me\n  ,x\n", r"bad\.csv:3: missing 'question'"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_questions(path)


def test_malformed_squad_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(ValueError, match=r"squad\.json: malformed SQuAD JSON"):
        load_questions(path)
    with pytest.raises(FileNotFoundError, match="no question file"):
        load_questions(tmp_path / "absent.jsonl")


def _set(n_single: int, conversations: dict[str, int]) -> QuestionSet:
    qs = [Question(id=f"s{i}", question=f"q {i}?", answers=("a",)) for i in range(n_single)]
    for conv, turns in conversations.items():
        qs += [Question(id=f"{conv}:{t}", question=f"{conv} {t}?", answers=(), conversation=conv, turn=t)
               for t in range(turns)]
    return QuestionSet(name="set", questions=tuple(qs), corpus=(("d", "D", "text"),))


def test_sample_is_reproducible_and_keeps_order() -> None:
    qs = _set(50, {})
    a, b = sample(qs, 10, seed=7), sample(qs, 10, seed=7)
    assert a == b and len(a.questions) == 10
    positions = [qs.questions.index(q) for q in a.questions]
    assert positions == sorted(positions)
    assert sample(qs, 10, seed=8) != a
    assert a.corpus == qs.corpus
    assert sample(qs, None, seed=1) is qs and sample(qs, 500, seed=1) is qs


def test_sample_takes_whole_conversations() -> None:
    qs = _set(4, {"c1": 3, "c2": 3, "c3": 2})
    for seed in range(20):
        picked = sample(qs, 5, seed=seed).questions
        assert 1 <= len(picked) <= 5
        for conv, turns in {"c1": 3, "c2": 3, "c3": 2}.items():
            assert sum(q.conversation == conv for q in picked) in (0, turns)
    with pytest.raises(ValueError, match="positive"):
        sample(qs, 0, seed=1)


def test_a_provenance_line_is_not_a_question(tmp_path):
    path = tmp_path / "staff.jsonl"
    path.write_text('{"provenance": {"source": "qa feedback export", "verdicts": 2}}\n'
                    '{"id": "a", "question": "When?", "answers": ["2012"], "old_answer": "2011"}\n', encoding="utf-8")
    qs = load_questions(path)
    assert [(q.id, q.answers) for q in qs.questions] == [("a", ("2012",))]
    path.write_text('{"provenance": {}, "answers": []}\n', encoding="utf-8")  # anything more is a question, checked
    with pytest.raises(ValueError, match="missing 'question'"):
        load_questions(path)
