"""benchmarks/answer_ranking.py: how a passage's retrieval score is scaled, which ranking rule the tuning rule ships,
and the ceilings no rule can beat."""
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from answer_ranking import ceilings, choose_rule, parse_rule, retrieval_scale, rule_pick  # noqa: E402

from qa.eval.questions import Question  # noqa: E402
from qa.types import Chunk, Hit, Span  # noqa: E402


def _hit(score: float, index: int) -> Hit:
    return Hit(Chunk("d", index, index * 100, index * 100 + 50, "x" * 50), score, index)


def test_scalings_put_the_best_passage_at_one_and_keep_retrieval_order():
    reads = [(_hit(s, i), None) for i, s in enumerate([0.8, 0.6, 0.4, 0.4])]
    assert retrieval_scale(reads, "ratio") == pytest.approx([1.0, 0.75, 0.5, 0.5])
    assert retrieval_scale(reads, "minmax") == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert retrieval_scale(reads, "rank") == pytest.approx([1.0, 0.75, 0.5, 0.25])
    # one passage, or passages that all score the same, are all "best"
    assert retrieval_scale(reads[:1], "minmax") == [1.0]
    assert retrieval_scale([(_hit(0.5, 0), None), (_hit(0.5, 1), None)], "minmax") == [1.0, 1.0]


def test_a_larger_retrieval_weight_lets_the_better_retrieved_passage_win():
    hits = [_hit(0.9, 0), _hit(0.5, 1)]
    spans = [Span(hits[0].chunk, 0, 5, "Paris", 0.9, margin=2.0),
             Span(hits[1].chunk, 100, 105, "Lyons", 0.95, margin=3.0)]
    reads = list(zip(hits, spans))
    # minmax: passage 2 gets no bonus; weight 0.05 adds 0.5 logits to passage 1 (2.5 < 3), weight 0.2 adds 2 (4 > 3)
    assert rule_pick(reads, 2, "margin", 0.05, 0.5, {}, "minmax") == "Lyons"
    assert rule_pick(reads, 2, "margin", 0.2, 0.5, {}, "minmax") == "Paris"
    # reading only the first passage leaves only its answer; a threshold above both leaves none
    assert rule_pick(reads, 1, "margin", 0.0, 0.5, {}, "rank") == "Paris"
    assert rule_pick(reads, 2, "vote", 3.0, 0.99, {}, "rank") is None


def test_the_rule_ships_the_simplest_setting_near_the_best():
    assert parse_rule("k5-margin-w0.5") == (5, "margin", "ratio", 0.5)
    assert parse_rule("k10-vote-rank-w1.5") == (10, "vote", "rank", 1.5)
    rules = {"k3-margin-w0.5": {"f1": 70.0},  # 3 passages are not a choice
             "k5-margin-w0.5": {"f1": 60.0}, "k5-margin-minmax-w1.0": {"f1": 60.2},
             "k5-vote-w0.7": {"f1": 60.2}, "k8-margin-w0.5": {"f1": 60.5}, "k10-margin-w0.5": {"f1": 60.1}}
    # best 60.5; within 0.3: k5 ratio vote (60.2) beats k5 minmax margin (scaling first), and both beat k8
    assert choose_rule(rules, 0.5) == "k5-vote-w0.7"
    # nothing near the best but the best itself
    assert choose_rule(rules, 0.5, margin=0.1) == "k8-margin-w0.5"
    # among equals, the weight nearest the shipped one
    assert choose_rule({"k5-margin-w0.3": {"f1": 60.0}, "k5-margin-w1.0": {"f1": 60.0}}, 0.5) == "k5-margin-w0.3"
    # and between weights equally far from it, the smaller (0.7 - 0.5 is a hair under 0.2 in floating point)
    assert choose_rule({"k5-margin-w0.7": {"f1": 60.0}, "k5-margin-w0.3": {"f1": 60.0}}, 0.5) == "k5-margin-w0.3"


def test_ceilings_say_what_no_ranking_rule_could_beat():
    def read(doc, index, text, conf):
        hit = Hit(Chunk(doc, index, 0, 50, "x" * 50), 1.0, index)
        return hit, (Span(hit.chunk, 0, len(text), text, conf) if text else None)

    q1 = Question("1", "q?", ("Paris",), doc_id="own")
    q2 = Question("2", "q?", ("Rome",), doc_id="own")
    empty = [read("x", i, None, 0) for i in range(2, 10)]
    data = [(q1, [read("other", 0, "Lyon", 0.9), read("own", 1, "Paris", 0.4)] + empty),
            (q2, [read("other", 0, "Milan", 0.3), read("x", 1, None, 0)] + empty)]
    c = ceilings(data, 0.5)
    # one passage: q1's first span is wrong and q2's too weak; two: q1's right span is read but below the threshold
    assert c["k1"] == {"em_best_span_above_threshold": 0.0, "em_best_span": 0.0, "own_paragraph_read": 0.0,
                       "em_own_paragraph_when_read": None, "not_found": 50.0}
    assert c["k3"] == {"em_best_span_above_threshold": 0.0, "em_best_span": 50.0, "own_paragraph_read": 50.0,
                       "em_own_paragraph_when_read": 100.0, "not_found": 50.0}
