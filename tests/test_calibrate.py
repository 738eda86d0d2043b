"""training/calibrate.py: the balanced threshold choice and its held-out check (pure functions; no model)."""
import json
import math
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
from calibrate import adopt, balanced, best_threshold, build_set, half, kind_of, report  # noqa: E402


def _row(diff: float, f1: float | None) -> tuple:
    """A score_rows row: f1 None = an unanswerable question."""
    if f1 is None:
        return (diff, 0.0, 0.0, 1.0, 1.0, False, "new_wiki_v1.0", True)
    return (diff, float(f1 == 1.0), f1, 0.0, 0.0, True, "new_wiki_v1.0", False)


def test_balanced_weighs_the_two_halves_the_same_whatever_their_counts():
    rows = [_row(-3.0, 1.0), _row(-1.0, 0.5)] + [_row(0.0, None)] * 6 + [_row(-4.0, None)] * 2
    # t = -2: the first answerable question is answered (F1 1), the second withheld (0); 6 of 8 negatives abstain
    assert balanced(rows, -2.0) == {"W": 50.0, "U": 75.0, "B": 62.5}
    # a row with diff == t is withheld (serving would keep it; thresholds are chosen between scores, never on one)
    assert balanced(rows, -1.0)["W"] == 50.0
    assert balanced(rows, math.inf)["U"] == 0.0


def test_each_kind_of_negative_can_weigh_the_same_whatever_its_count():
    rows = [_row(-3.0, 0.4)] + [_row(0.0, None)] * 6 + [_row(-4.0, None)] * 2
    kinds = [""] + ["neg"] * 6 + ["ant"] * 2
    # pooled: 6 of 8 negatives abstain at t = -2; by kind: all 6 "neg" (100) and neither "ant" (0), mean 50
    assert balanced(rows, -2.0) == {"W": 40.0, "U": 75.0, "B": 57.5}
    assert balanced(rows, -2.0, kinds) == {"W": 40.0, "U": 50.0, "B": 45.0}
    # so the rare hard kind moves the threshold: pooled, answering is worth it (57.5 > 50); by kind it is not
    assert best_threshold(rows) == -1.5
    assert best_threshold(rows, kinds) == -5.0
    halves = [0] * len(rows) + [1] * len(rows)  # the same rows in both halves
    r = report(rows + rows, halves, current=-2.0, kinds=kinds + kinds)
    assert r["threshold_all"] == -5.0 and r["held_out_gain"] == 5.0  # B 50 at -5 against 45 at -2
    assert r["unanswered_by_kind"] == {"ant": {"threshold_all": 100.0, "current": 0.0},
                                       "neg": {"threshold_all": 100.0, "current": 100.0}}
    assert "unanswered_by_kind" not in report(rows + rows, halves, current=-2.0)


def test_a_negative_s_kind_is_read_from_its_id():
    assert [kind_of(f"new_wiki_v1.0/57{s}") for s in ("", "/neg", "/cut", "/swap", "/ant", "/not", "/pswap")] == [
        "", "neg", "cut", "swap", "ant", "not", "pswap"]
    with pytest.raises(ValueError, match="unknown calibration set"):
        build_set(ROOT, 0, "five-pooled")


def test_a_row_without_a_span_is_never_answered():
    rows = [_row(math.inf, 1.0), _row(-2.0, 1.0), _row(1.0, None)]
    assert balanced(rows, 1e9)["W"] == 50.0


def test_best_threshold_separates_answers_from_negatives():
    rows = [_row(-3.0, 1.0), _row(-2.5, 1.0), _row(-1.0, None), _row(0.5, None)]
    t = best_threshold(rows)
    assert -2.5 < t < -1.0
    assert balanced(rows, t)["B"] == 100.0


def test_best_threshold_breaks_ties_toward_abstaining():
    # a wrong answer (F1 0) gains nothing by being given: the lowest of the equal thresholds wins
    rows = [_row(-3.0, 1.0), _row(-2.0, 0.0), _row(5.0, None)]
    assert best_threshold(rows) == -2.5


def test_best_threshold_can_abstain_on_everything():
    rows = [_row(1.0, 0.0), _row(-1.0, None)]
    assert best_threshold(rows) == -2.0
    assert balanced(rows, best_threshold(rows)) == {"W": 0.0, "U": 100.0, "B": 50.0}


def test_best_threshold_needs_a_span():
    with pytest.raises(ValueError):
        best_threshold([_row(math.inf, 1.0), _row(math.inf, None)])


def test_a_question_and_its_negatives_fall_in_the_same_half():
    for qid in ("new_wiki_v1.0/5733", "new_wiki_v1.0/abc", "x/1"):
        assert half(qid) == half(qid + "/neg") == half(qid + "/cut") == half(qid + "/swap")
    assert {half(f"new_wiki_v1.0/{i}") for i in range(50)} == {0, 1}


def test_report_chooses_on_one_half_and_checks_on_the_other():
    fit = [_row(-3.0, 1.0), _row(-1.0, None)]  # half 0: any t in (-3, -1] is perfect
    held = [_row(-2.2, 1.0), _row(-1.5, 1.0), _row(0.0, None)]
    r = report(fit + held, [0, 0, 1, 1, 1], current=-2.875)
    assert r["threshold_half1"] == -2.0
    # held out: at -2.0, -2.2 is answered and -1.5 withheld -> W 50, U 100; at -2.875 nothing is answered
    assert r["held_out_at_half1_threshold"] == {"W": 50.0, "U": 100.0, "B": 75.0}
    assert r["held_out_at_current"] == {"W": 0.0, "U": 100.0, "B": 50.0}
    assert r["held_out_gain"] == 25.0
    assert -1.5 < r["threshold_all"] < 0.0
    assert r["n_fit"] == 2 and r["n_held_out"] == 3


def test_adopt_writes_the_threshold_only_for_a_large_enough_held_out_gain(tmp_path):
    cfg = tmp_path / "reader_config.json"
    cfg.write_text(json.dumps({"max_length": 384, "null_threshold": -2.875}))
    res = {"held_out_gain": 0.4999, "threshold_all": -6.71289}
    assert adopt(cfg, res, 0.5) is False
    assert json.loads(cfg.read_text())["null_threshold"] == -2.875
    assert adopt(cfg, {**res, "held_out_gain": 0.5}, 0.5) is True
    assert json.loads(cfg.read_text()) == {"max_length": 384, "null_threshold": -6.7129}
    assert not (tmp_path / "reader_config.json.tmp").exists()
    # with a training summary beside it, the summary says the threshold was recalibrated, from what to what
    (tmp_path / "training_summary.json").write_text(json.dumps({"selected": "soup alpha=0.25"}))
    assert adopt(cfg, {**res, "held_out_gain": 1.0, "threshold_all": -4.73046875}, 0.5) is True
    s = json.loads((tmp_path / "training_summary.json").read_text())
    assert s["selected"] == "soup alpha=0.25"
    assert s["calibration"]["null_threshold_before"] == -6.7129 and s["calibration"]["null_threshold"] == -4.7305


def test_a_new_null_threshold_drops_the_collection_threshold_chosen_with_the_old_one(tmp_path):
    cfg = tmp_path / "reader_config.json"
    cfg.write_text(json.dumps({"null_threshold": -4.0547, "ask_threshold": 0.9627}))
    (tmp_path / "training_summary.json").write_text(json.dumps({"ask_calibration": {"ask_threshold": 0.9627}}))
    assert adopt(cfg, {"held_out_gain": 1.0, "threshold_all": -5.0}, 0.5) is True
    assert json.loads(cfg.read_text()) == {"null_threshold": -5.0}
    s = json.loads((tmp_path / "training_summary.json").read_text())
    assert s["calibration"]["ask_threshold_dropped"] == 0.9627 and "ask_calibration" not in s
    # the same null_threshold again keeps it
    cfg.write_text(json.dumps({"null_threshold": -5.0, "ask_threshold": 0.9}))
    assert adopt(cfg, {"held_out_gain": 1.0, "threshold_all": -5.00001}, 0.5) is True
    assert json.loads(cfg.read_text())["ask_threshold"] == 0.9
