"""training/calibrate_open.py and the reader's ask_threshold: a not-found threshold for questions asked of a collection.

The choice is tested on made-up readings (real Hit and Span objects through the shipped answer choice); the reader,
the assistant and the gold-context reader are tested on which threshold each uses.
"""
import json
import math
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
from calibrate_open import adopt, answers_at, balanced_open, choose, holds_answer  # noqa: E402

from qa.assistant import GoldContextReader, not_found_threshold  # noqa: E402
from qa.eval.metrics import f1_score, normalize_answer  # noqa: E402
from qa.reading.reader import SpanReader  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import Chunk, Document, Hit, Span  # noqa: E402

DOCS = {d: Document(d, "x" * 200, d) for d in ("a", "b")}


def _reading(text: str, confidence: float, doc: str = "a"):
    chunk = Chunk(doc, 0, 0, 200, "x" * 200)
    margin = math.log(confidence / (1 - confidence))
    return [Hit(chunk, 1.0)], [Span(chunk, 10, 10 + len(text), text, confidence, margin)]


def test_a_passage_holds_an_answer_as_whole_words_after_normalising():
    assert holds_answer(["It opened in 1990, in Paris."], ["1990"], normalize_answer)
    assert holds_answer(["The Treaty of Rome."], ["the treaty of rome"], normalize_answer)
    assert not holds_answer(["It opened in 19901."], ["1990"], normalize_answer)
    assert not holds_answer(["anything"], ["", "  "], normalize_answer)  # no answer text holds nothing


def test_balanced_open_weighs_answers_and_abstentions_the_same():
    rows = [{"answers": ("Paris",), "neg": "r"}, {"answers": ("Lyon",), "neg": None}, {"answers": ("Nice",), "neg": "r"}]
    picks = [{"has": "Paris", "neg": None}, {"has": None, "neg": None}, {"has": "Rome", "neg": "Milan"}]
    # W: F1 1, 0 (not found), 0 -> 33.3; U: of the two kept negatives one is not answered -> 50
    got = balanced_open(rows, picks, f1_score)
    assert got["W"] == pytest.approx(100 / 3) and got["U"] == 50.0 and got["B"] == pytest.approx((100 / 3 + 50) / 2)
    with pytest.raises(ValueError):
        balanced_open(rows[1:2], picks[1:2], f1_score)  # no unanswerable reading kept


def test_the_threshold_is_chosen_on_one_half_and_checked_on_the_other():
    # answerable readings: right answers at confidence 0.9; the unanswerable ones answered at 0.6 and 0.7
    rows = [{"id": str(i), "answers": ("Paris",), "has": _reading("Paris", 0.9),
             "neg": _reading("Lyon", 0.6 if i % 2 else 0.7, "b")} for i in range(4)]
    picks = answers_at(rows, 0.65, 0.7, DOCS)
    assert [p["has"] for p in picks] == ["Paris"] * 4 and [p["neg"] for p in picks] == ["Lyon", None, "Lyon", None]
    res = choose(rows, [0, 1, 0, 1], 0.5, 0.7, DOCS, f1_score)
    # every threshold between 0.7 and 0.9 answers all right and abstains on all negatives: B 100; ties go higher
    assert 0.7 < res["threshold_half1"] < 0.9 and 0.7 < res["threshold_all"] < 0.9
    assert res["held_out_at_current"] == {"W": 100.0, "U": 0.0, "B": 50.0}
    assert res["held_out_at_half1_threshold"] == {"W": 100.0, "U": 100.0, "B": 100.0}
    assert res["held_out_gain"] == 50.0 and res["n_fit"] == 2 and res["n_held_out"] == 2


def test_adopt_writes_ask_threshold_only_for_a_large_enough_gain(tmp_path):
    cfg = tmp_path / "reader_config.json"
    cfg.write_text(json.dumps({"null_threshold": -4.0547}))
    assert adopt(cfg, {"held_out_gain": 0.49, "threshold_all": 0.62}, 0.5) is False
    assert "ask_threshold" not in json.loads(cfg.read_text())
    (tmp_path / "training_summary.json").write_text(json.dumps({"selected": "soup"}))
    assert adopt(cfg, {"held_out_gain": 0.7, "threshold_all": 0.623456}, 0.5) is True
    assert json.loads(cfg.read_text()) == {"null_threshold": -4.0547, "ask_threshold": 0.6235}
    s = json.loads((tmp_path / "training_summary.json").read_text())
    assert s["ask_calibration"]["ask_threshold_before"] is None and s["ask_calibration"]["ask_threshold"] == 0.6235


def test_questions_asked_of_a_collection_use_the_ask_threshold_and_one_paragraph_the_reader_s_own(tmp_path):
    (tmp_path / "reader_config.json").write_text(json.dumps({"null_threshold": -4.0, "ask_threshold": 0.62}))
    reader = SpanReader(tmp_path)  # reads its config; the weights load only on warm_up
    assert reader.ask_threshold == 0.62
    assert not_found_threshold(Settings(), reader) == 0.62
    assert GoldContextReader(reader, Settings()).threshold == 0.5
    # a threshold in the settings wins in both cases
    assert not_found_threshold(Settings(not_found_threshold=0.3), reader) == 0.3
    assert GoldContextReader(reader, Settings(not_found_threshold=0.3)).threshold == 0.3
    # a reader without one answers collections at its own threshold
    (tmp_path / "reader_config.json").write_text(json.dumps({"null_threshold": -4.0}))
    assert SpanReader(tmp_path).ask_threshold is None
    assert not_found_threshold(Settings(), SpanReader(tmp_path)) == 0.5
