"""The assistant end to end with the shipped models: answers, citations, not-found, follow-ups, bad input."""
import pytest

from qa.assistant import Assistant, check_question
from qa.errors import BadQuestion
from qa.followup import resolve_followup
from qa.settings import Settings
from qa.types import Answer

from conftest import SEED_ID, SEED_QUESTION


def _check_citations(answer: Answer, seed_assistant):
    assert answer.citations
    for c in answer.citations:
        doc = seed_assistant.store.documents[c.doc_id]
        assert doc.text[c.passage_start:c.passage_end] == c.passage
        assert c.passage[c.answer_start - c.passage_start:c.answer_end - c.passage_start] == answer.text
        assert doc.text[c.answer_start:c.answer_end] == answer.text
        assert 0.0 <= c.score <= 1.0


def test_seed_question_answers_2012_and_cites_the_seed(seed_assistant):
    answer = seed_assistant.ask(SEED_QUESTION)
    assert answer.text == "2012"
    assert 0.5 <= answer.score <= 1.0
    assert answer.citations[0].doc_id == SEED_ID
    assert answer.citations[0].source.endswith("iraq-trafficking-networks.txt")
    _check_citations(answer, seed_assistant)
    assert {"embed", "bm25", "dense_search", "fusion", "reading", "total"} <= set(answer.timings_ms)
    d = answer.to_dict()
    assert d["text"] == "2012" and d["citations"][0]["answer_start"] == answer.citations[0].answer_start
    assert Answer.from_dict(d).citations == answer.citations


@pytest.mark.parametrize("question,expected", [
    ("How many foreign nationals were in the two networks?", "40"),
    ("In which city were the networks dismantled?", "Baghdad"),
    ("What law did Iraq pass in 2012?", "Anti-Human Trafficking Law"),
])
def test_other_seed_questions(seed_assistant, question, expected):
    answer = seed_assistant.ask(question)
    assert answer.text is not None and expected in answer.text
    _check_citations(answer, seed_assistant)


@pytest.mark.parametrize("question", ["What is the capital of France?", "Who won the football world cup in 2010?"])
def test_unrelated_question_is_not_found(seed_assistant, question):
    answer = seed_assistant.ask(question)
    assert answer.text is None and not answer.found
    assert answer.score < seed_assistant.threshold
    # the closest passages are still shown, without an answer position
    assert answer.citations and all(c.answer_start is None for c in answer.citations)


def test_threshold_setting_changes_the_verdict(seed_assistant):
    strict = seed_assistant.ask(SEED_QUESTION, threshold=1.0)
    assert strict.text is None
    lenient = seed_assistant.ask("What is the capital of France?", threshold=0.0)
    assert lenient.text is not None


def test_followups_through_history(seed_assistant):
    first = seed_assistant.ask("Who dismantled the two networks?")
    assert first.text and "Intelligence Service" in first.text
    second = seed_assistant.ask("Which ministry helped them?", history=[first])
    assert second.resolved_question and "Intelligence Service" in second.resolved_question
    assert second.text and "Ministry of Interior" in second.text
    law = seed_assistant.ask("What law did Iraq pass to fight trafficking?")
    assert law.text and "Anti-Human Trafficking Law" in law.text
    when = seed_assistant.ask("When was it passed?", history=[law])
    assert when.text == "2012"


def test_followup_resolution_rules():
    prev = Answer("Who dismantled the two networks?", "the Iraqi National Intelligence Service", 0.9)
    r = resolve_followup("Which ministry helped them?", [prev])
    assert r.is_followup and r.reader_question == "Which ministry helped the Iraqi National Intelligence Service?"
    assert "dismantl" in r.search_query
    assert not resolve_followup("When did Iraq pass its anti-trafficking law?", []).is_followup
    standalone = resolve_followup("What is the capital of France?", [prev])
    assert standalone.reader_question == "What is the capital of France?"


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "?!?...", "x" * 100_000, "\x00\x01\x02"])
def test_bad_questions_are_refused_clearly(seed_assistant, bad):
    with pytest.raises(BadQuestion) as e:
        seed_assistant.ask(bad)
    assert "question" in str(e.value)


def test_question_cleaning():
    assert check_question("  when?\x00 ", 100) == "when?"
    with pytest.raises(BadQuestion, match="limit"):
        check_question("a" * 101, 100)


def test_other_scripts_and_punctuation_do_not_crash(seed_assistant):
    for q in ["متى أقر العراق قانون مكافحة الاتجار؟", "伊拉克什么时候通过了反人口贩卖法？", "when??? did Iraq... pass it!!!"]:
        a = seed_assistant.ask(q)
        assert isinstance(a, Answer)


def test_report_filters(seed_assistant):
    none = seed_assistant.ask(SEED_QUESTION, doc_ids=["no-such-report"])
    assert none.text is None and not none.citations
    dated = seed_assistant.ask(SEED_QUESTION, date_from="2030-01-01")
    assert dated.text is None  # the seed report has no date, so a date range excludes it


def test_rules_reader_fallback(seed_index):
    a = Assistant.open(seed_index, settings=Settings(reader="rules"))
    assert a.ask(SEED_QUESTION).text == "2012"
    assert a.ask("What is the capital of France?").text is None


def test_gold_context_reader(seed_assistant):
    ctx = "The Rhine flows for 1,230 kilometres. It rises in the Swiss Alps and ends in the North Sea."
    a = seed_assistant.read("Where does the Rhine rise?", ctx)
    assert a.text and "Swiss Alps" in a.text
    c = a.citations[0]
    assert ctx[c.answer_start:c.answer_end] == a.text


# --- ranking answers across passages (qa.assistant._compose_answer), with hand-built hits and spans ---
def _passages(*texts):
    from qa.types import Chunk, Document

    docs = {f"r{i}": Document(f"r{i}", t, f"Report {i}") for i, t in enumerate(texts)}
    chunks = [Chunk(f"r{i}", 0, 0, len(t), t) for i, t in enumerate(texts)]
    return docs, chunks


def _span(chunk, text, score, margin=None):
    from qa.types import Span

    start = chunk.text.index(text)
    return Span(chunk, start, start + len(text), text, score, margin)


def _compose(hits, spans, docs, threshold=0.5, weight=0.5):
    from qa.assistant import _compose_answer

    return _compose_answer("q?", hits, spans, docs, weight, threshold)


def test_answers_rank_by_margin_plus_retrieval():
    from qa.types import Hit

    docs, (a, b) = _passages("The law passed in 2012.", "Some say it passed in 2010.")
    hits = [Hit(a, 0.9), Hit(b, 0.5)]
    # both near-certain: the margins tell them apart, where their confidences (both ~1.0) would not
    ans = _compose(hits, [_span(a, "2012", 0.99995, 10.0), _span(b, "2010", 0.999999, 14.0)], docs)
    assert ans.text == "2010"  # 14 + 5*0.5/0.9 = 16.8 beats 10 + 5 = 15
    ans = _compose(hits, [_span(a, "2012", 0.99995, 10.0), _span(b, "2010", 0.99997, 11.0)], docs)
    assert ans.text == "2012"  # 10 + 5 = 15 beats 11 + 2.8
    assert ans.citations[0].doc_id == "r0"


def test_equal_ranks_go_to_the_better_retrieved_passage_and_equal_answers_merge():
    from qa.types import Hit

    docs, (a, b, c) = _passages("It was 2012.", "Also 2012 here.", "Or 2011.")
    hits = [Hit(a, 0.8), Hit(b, 0.8), Hit(c, 0.8)]
    spans = [_span(c, "2011", 0.9, 3.0), _span(b, "2012", 0.9, 3.0), _span(a, "2012", 0.9, 3.0)]
    ans = _compose(hits, spans, docs)
    assert ans.text == "2012" and [x.doc_id for x in ans.citations] == ["r0", "r1"]


def test_rules_reader_spans_without_margin_rank_by_the_logit_of_their_score():
    from qa.types import Hit

    docs, (a, b) = _passages("Founded in 1990.", "Founded in 1995.")
    ans = _compose([Hit(a, 0.5), Hit(b, 0.5)], [_span(a, "1990", 0.4), _span(b, "1995", 0.7)], docs, threshold=0.3)
    assert ans.text == "1995"


def test_a_retrieval_bonus_never_turns_a_confident_answer_into_not_found():
    from qa.types import Hit

    docs, (a, b) = _passages("Maybe 2001.", "Clearly 2003.")
    hits = [Hit(a, 0.9), Hit(b, 0.5)]
    # the top passage's weak span outranks the other (margin -0.4 + 5 > 1.7 + 2.8) but is below the threshold
    ans = _compose(hits, [_span(a, "2001", 0.40, -0.4), _span(b, "2003", 0.85, 1.7)], docs)
    assert ans.text == "2003" and ans.score == 0.85
    none = _compose(hits, [_span(a, "2001", 0.40, -0.4), _span(b, "2003", 0.45, -0.2)], docs)
    assert none.text is None and none.score == 0.45 and len(none.citations) == 2


def test_a_span_from_a_passage_not_among_the_hits_still_counts_without_bonus():
    from qa.types import Hit

    docs, (a, b) = _passages("Rome.", "Paris.")
    ans = _compose([Hit(a, 0.9)], [_span(a, "Rome", 0.6, 0.4), _span(b, "Paris", 0.99, 6.0)], docs)
    assert ans.text == "Paris"  # 6 + 0 beats 0.4 + 5
