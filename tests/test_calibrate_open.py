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
from calibrate_open import adopt, answers_at, balanced_open, choose, holds_answer, readings  # noqa: E402

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
    # punctuation, ASCII or not, separates words on both sides
    assert holds_answer(["written by E.F. Schumacher in 1973"], ["E. F. Schumacher"], normalize_answer)
    assert holds_answer(["the 1914\u20131918 war"], ["1914"], normalize_answer)
    assert holds_answer(["\u201cSmall Is Beautiful\u201d"], ["Small Is Beautiful"], normalize_answer)


def test_balanced_open_weighs_answers_and_abstentions_the_same():
    rows = [{"answers": ("Paris",), "neg": "r"}, {"answers": ("Lyon",), "neg": None},
            {"answers": ("Nice",), "neg": "r"}]
    picks = [{"has": "Paris", "neg": None}, {"has": None, "neg": None}, {"has": "Rome", "neg": "Milan"}]
    # W: F1 1, 0 (not found), 0 -> 33.3; U: of the two kept negatives one is not answered -> 50
    got = balanced_open(rows, picks, f1_score)
    assert got["W"] == pytest.approx(100 / 3) and got["U"] == 50.0 and got["B"] == pytest.approx((100 / 3 + 50) / 2)
    with pytest.raises(ValueError):
        balanced_open(rows[1:2], picks[1:2], f1_score)  # no unanswerable reading kept


def test_the_threshold_is_chosen_on_one_half_and_checked_on_the_other():
    # answerable readings: right answers at confidence 0.9; the unanswerable ones answered at 0.6 or 0.7 (half 0) and
    # at 0.6 or 0.8 (half 1)
    confs = [0.6, 0.7, 0.6, 0.8]
    rows = [{"id": str(i), "answers": ("Paris",), "has": _reading("Paris", 0.9),
             "neg": _reading("Lyon", c, "b")} for i, c in enumerate(confs)]
    halves = [0, 0, 1, 1]
    picks = answers_at(rows, 0.65, 0.7, DOCS)
    assert [p["has"] for p in picks] == ["Paris"] * 4 and [p["neg"] for p in picks] == [None, "Lyon", None, "Lyon"]
    res = choose(rows, halves, 0.5, 0.7, DOCS, f1_score)
    # half 0 is perfect for every grid threshold in (0.7, 0.9): ties go to the highest, sigmoid(2.0) = 0.8808;
    # the whole set needs one above 0.8 as well, so the same one
    assert res["threshold_half1"] == res["threshold_all"] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert res["held_out_at_current"] == {"W": 100.0, "U": 0.0, "B": 50.0}
    assert res["held_out_at_half1_threshold"] == {"W": 100.0, "U": 100.0, "B": 100.0}
    assert res["held_out_gain"] == 50.0 and res["n_fit"] == 2 and res["n_held_out"] == 2
    # only the grid is chosen from: a current threshold off the grid is scored, never chosen
    # (0.89 ties with sigmoid(2.0) = 0.8808 on B and is higher, so it would win were it a candidate)
    off = choose(rows, halves, 0.89, 0.7, DOCS, f1_score)
    assert off["threshold_all"] == pytest.approx(1 / (1 + math.exp(-2.0))) and "0.8900" in off["curve"]


def test_choosing_on_the_other_half_would_give_another_threshold():
    # half 0 holds only a negative answered at 0.6, half 1 one at 0.95 that beats the right answers (0.9)
    rows = [{"id": "0", "answers": ("Paris",), "has": _reading("Paris", 0.9), "neg": _reading("Lyon", 0.6, "b")},
            {"id": "1", "answers": ("Paris",), "has": _reading("Paris", 0.9), "neg": _reading("Lyon", 0.95, "b")}]
    res = choose(rows, [0, 1], 0.5, 0.7, DOCS, f1_score)
    # fit on half 0: highest grid threshold under 0.9 that clears 0.6; held out (half 1): W 100, U 0
    assert 0.6 < res["threshold_half1"] < 0.9
    assert res["held_out_at_half1_threshold"] == {"W": 100.0, "U": 0.0, "B": 50.0}
    assert res["held_out_gain"] == 0.0


class _FakeReader:
    def read(self, question, chunks):  # every passage's span: its own text's first word, confidence 0.9
        return [Span(c, c.start, c.start + len(c.text.split()[0]), c.text.split()[0], 0.9, 2.2) for c in chunks]


class _FakeAssistant:
    reader = _FakeReader()

    def __init__(self, hits):
        self.hits = hits

    def retrieve(self, question, k):
        return self.hits[:k]


def _hit(doc: str, index: int, text: str) -> Hit:
    return Hit(Chunk(doc, index, 0, len(text), text), 1.0 - index / 100, index)


def test_readings_leave_out_the_question_s_paragraph_and_any_reading_that_still_holds_the_answer():
    from qa.eval.questions import Question

    own = [_hit("own", i, f"Paris{i} is here") for i in range(3)]  # the question's paragraph, in three passages
    others = [_hit(f"o{i}", 10 + i, f"Lyon{i} is there") for i in range(10)]
    q = Question("q1", "Where?", ("Marseille",), doc_id="own")
    hits = own[:2] + others[:3] + own[2:] + others[3:]
    [r] = readings(_FakeAssistant(hits), [q], 8, normalize_answer)
    has_hits, has_spans = r["has"]
    assert [h.chunk.doc_id for h in has_hits] == ["own", "own", "o0", "o1", "o2", "own", "o3", "o4"]
    assert len(has_spans) == 8
    neg_hits, _ = r["neg"]
    assert [h.chunk.doc_id for h in neg_hits] == [f"o{i}" for i in range(8)]
    # the answer in one of the other 8 passages: no unanswerable reading
    hits2 = hits[:]
    hits2[4] = _hit("o2", 12, "Lyon2 is near Marseille")
    assert readings(_FakeAssistant(hits2), [q], 8, normalize_answer)[0]["neg"] is None
    # ... but in the 9th other passage it does not count
    hits3 = hits[:]
    hits3[-1] = _hit("o9", 19, "Marseille too")
    assert readings(_FakeAssistant(hits3), [q], 8, normalize_answer)[0]["neg"] is not None
    # fewer than 8 other passages: none either
    assert readings(_FakeAssistant(own + others[:5]), [q], 8, normalize_answer)[0]["neg"] is None


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
