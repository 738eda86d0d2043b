"""The SQuAD metric: hand-checked cases, properties, and parity with the official published figures."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import shared_dir
from qa.reading.answer_types import question_type
from qa.eval.metrics import (
    exact_score,
    f1_score,
    find_best_thresh,
    normalize_answer,
    score_predictions,
    squad_gold,
)

DATA = Path(__file__).parent / "data" / "eval"


def _squad_dir() -> Path | None:
    base = shared_dir()
    squad = base / "data" / "squad" if base else None
    return squad if squad and (squad / "dev-v1.1.json").is_file() else None


SQUAD = _squad_dir()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Quick, brown fox!", "quick brown fox"),
        ("An apple a day", "apple day"),
        ("theater of the absurd", "theater of absurd"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("  A  ", ""),
        ("Saint-Étienne's", "saintétiennes"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_ignores_case_articles_and_punctuation() -> None:
    assert exact_score("the Denver Broncos.", ["Denver Broncos"]) == 1.0
    assert exact_score("Denver", ["Denver Broncos"]) == 0.0


def test_partial_overlap_f1_by_hand() -> None:
    # pred tokens {big, red, barn}, gold {red, barn, door}: 2 shared, P = R = 2/3, F1 = 2/3
    assert f1_score("the big red barn", ["a red barn door"]) == pytest.approx(2 / 3)
    # repeated tokens count once per gold occurrence: P = 1/3, R = 1/2, F1 = 2PR/(P+R) = 0.4
    assert f1_score("red red red", ["red barn"]) == pytest.approx(0.4)
    assert f1_score("green", ["red barn"]) == 0.0


def test_multi_answer_takes_the_max() -> None:
    golds = ["Denver Broncos", "Broncos", "the Broncos"]
    assert exact_score("Broncos", golds) == 1.0
    assert f1_score("Denver", golds) == pytest.approx(2 / 3)  # P = 1, R = 1/2 against "Denver Broncos"


def test_unanswerable_right_and_wrong() -> None:
    assert exact_score("", []) == 1.0 and f1_score("", []) == 1.0
    assert exact_score("Paris", []) == 0.0 and f1_score("Paris", []) == 0.0
    # golds that normalise to nothing mean unanswerable; so does a prediction like "the"
    assert exact_score("", ["", "the"]) == 1.0
    assert exact_score("the", []) == 1.0
    # an answerable question answered with nothing scores 0
    assert exact_score("", ["Paris"]) == 0.0 and f1_score("", ["Paris"]) == 0.0


def _toy() -> tuple[dict, dict, dict]:
    gold = {"a": ["Paris"], "b": ["blue whale"], "c": [], "d": []}
    preds = {"a": "Paris", "b": "whale", "c": "", "d": "London"}
    na_probs = {"a": 0.1, "b": 0.6, "c": 0.9, "d": 0.7}
    return gold, preds, na_probs


def test_score_predictions_splits_by_hand() -> None:
    gold, preds, _ = _toy()
    out = score_predictions(gold, preds)
    # exact a=1 b=0 c=1 d=0; f1 b = 2/3 (P=1, R=1/2)
    assert out["exact"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert out["total"] == 4
    assert out["HasAns_exact"] == pytest.approx(50.0) and out["HasAns_f1"] == pytest.approx(100 * (5 / 3) / 2)
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 2
    assert out["NoAns_exact"] == pytest.approx(50.0) and out["NoAns_f1"] == pytest.approx(50.0)
    assert "best_f1" not in out


def test_best_threshold_on_toy_set_by_hand() -> None:
    gold, preds, na_probs = _toy()
    out = score_predictions(gold, preds, na_probs)
    # sweep by na_prob a(.1) b(.6) d(.7) c(.9), starting from 2 (both unanswerable right):
    # exact: a -> 3 (best, thresh .1), b +0 -> 3, d (wrong non-empty) -> 2, c -> 2
    assert out["best_exact"] == pytest.approx(75.0) and out["best_exact_thresh"] == pytest.approx(0.1)
    # f1: a -> 3 (.1), b +2/3 -> 3.667 (best, thresh .6), d -> 2.667, c -> 2.667
    assert out["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4) and out["best_f1_thresh"] == pytest.approx(0.6)
    # unthresholded figures are unchanged by passing na_probs at the default threshold 1.0
    assert out["exact"] == pytest.approx(50.0)


def test_na_prob_threshold_abstains_above_it() -> None:
    gold, preds, na_probs = _toy()
    out = score_predictions(gold, preds, na_probs, na_prob_thresh=0.5)
    # b (.6) and d (.7) and c (.9) abstain: b -> 0, d -> 1, c -> 1; a keeps 1
    assert out["exact"] == pytest.approx(75.0) and out["f1"] == pytest.approx(75.0)
    assert out["HasAns_f1"] == pytest.approx(50.0) and out["NoAns_exact"] == pytest.approx(100.0)


def test_find_best_thresh_counts_raw_nonempty_prediction_as_wrong() -> None:
    # like the official script, an unanswerable question answered " " costs 1 in the sweep
    preds = {"x": " "}
    scores = {"x": 1.0}
    assert find_best_thresh(preds, scores, {"x": 0.2}, {"x": False}) == (100.0, 0.0)


def test_missing_predictions_count_as_empty(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qa.eval.metrics"):
        out = score_predictions({"a": ["x"], "b": ["y"], "c": []}, {"a": "x"})
    assert out["total"] == 3
    assert out["exact"] == pytest.approx(200 / 3)  # a right, b missing (wrong), c missing = '' (right)
    assert "2 of 3 questions have no prediction" in caplog.text


def test_bad_inputs_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="na_probs lacks 1"):
        score_predictions({"a": ["x"], "b": []}, {"a": "x"}, {"a": 0.5})
    with pytest.raises(ValueError, match="no gold questions"):
        score_predictions({}, {})
    with pytest.raises(ValueError, match="not a SQuAD dataset"):
        squad_gold({"questions": []})


def test_squad_gold_reads_v2_fixture() -> None:
    gold = squad_gold(json.loads((DATA / "squad_tiny.json").read_text()))
    assert gold == {"s1": ["Jane Porter", "Jane Porter", "by Jane Porter"], "s2": [], "s3": ["1975"], "s4": ["Ada Voss"]}


@given(st.text(max_size=40))
def test_answer_matches_itself(text: str) -> None:
    assert exact_score(text, [text]) == 1.0
    assert f1_score(text, [text]) == 1.0


@given(st.text(max_size=30), st.lists(st.text(max_size=30), max_size=4))
def test_scores_are_bounded_and_exact_implies_full_f1(pred: str, golds: list[str]) -> None:
    em, f1 = exact_score(pred, golds), f1_score(pred, golds)
    assert em in (0.0, 1.0) and 0.0 <= f1 <= 1.0
    if em == 1.0:
        assert f1 == 1.0


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("In what year did the Normans arrive?", "when"),
        ("When was the mill founded?", "when"),
        ("Which century saw the revolt?", "when"),
        ("Who designed the bridge?", "who"),
        ("Whose army won?", "who"),
        ("Where is Northport?", "where"),
        ("How many pupils attend?", "how many"),
        ("How much did it cost?", "how much"),
        ("How long is the pier?", "how"),
        ("What did the mill produce?", "what"),
        ("What is the year of the census called?", "what"),
        ("Which river does the bridge cross?", "which"),
        ("Why did it close?", "why"),
        ("The mill closed in what year?", "when"),
        ("Name the founder.", "other"),
        ("What's the name of the man who founded it?", "what"),
    ],
)
def test_question_type(question: str, expected: str) -> None:
    assert question_type(question) == expected


PARITY = [
    ("dev-v1.1.json", "v1.1_BERT_ensemble_GoogleAI.json", 86.21, 92.20, 10570, None),
    ("dev-v1.1.json", "v1.1_LogisticRegression_baseline_Stanford.json", 40.14, 50.98, 10570, None),
    ("dev-v2.0.json", "v2.0_BERT_single_GoogleAI.json", 78.74, 81.78, 11873, (5928, 5945)),
]


@pytest.mark.shared
@pytest.mark.skipif(SQUAD is None, reason="SQuAD dev sets not found under ../shared/data/squad (or $QA_SHARED_DIR/data/squad)")
@pytest.mark.parametrize(("dev", "predictions", "em", "f1", "total", "splits"), PARITY)
def test_reproduces_official_published_figures(
    dev: str, predictions: str, em: float, f1: float, total: int, splits: tuple[int, int] | None
) -> None:
    assert SQUAD is not None
    gold = squad_gold(json.loads((SQUAD / dev).read_text(encoding="utf-8")))
    preds = json.loads((SQUAD / "reference_predictions" / predictions).read_text(encoding="utf-8"))
    out = score_predictions(gold, preds)
    assert round(out["exact"], 2) == em
    assert round(out["f1"], 2) == f1
    assert out["total"] == total
    if splits is None:
        assert "NoAns_total" not in out and out["HasAns_total"] == total
    else:
        assert (out["HasAns_total"], out["NoAns_total"]) == splits
