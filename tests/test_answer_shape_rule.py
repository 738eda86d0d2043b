"""benchmarks/answer_shape.py's choice (benchmarks/results/answer-shape-rule.txt), on made-up scores."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training"))
from answer_shape import choose_setting  # noqa: E402


def _rows(scores: dict) -> list[dict]:
    return [{"penalty": pen, "lists": lists, "score": score} for (pen, lists), score in scores.items()]


def test_attached_replaces_plural_within_0_2_and_not_beyond():
    base = {(0.0, "plural"): 75.70, (0.0, "near:2"): 75.78, (5.0, "near:2"): 75.81}
    assert choose_setting(_rows({**base, (0.0, "attached"): 75.56}))["lists"] == "attached"  # 0.14 below
    assert choose_setting(_rows({**base, (0.0, "attached"): 75.50}))["lists"] == "attached"  # 0.2 exactly
    assert choose_setting(_rows({**base, (0.0, "attached"): 75.49}))["lists"] == "plural"  # 0.21 below


def test_attached_never_sets_the_best_and_never_replaces_another_setting():
    # "attached" scoring highest does not move the 0.2 window: the simplest setting near the others' best is chosen
    got = choose_setting(_rows({(0.0, "plural"): 75.0, (0.0, "near:1"): 75.5, (0.0, "attached"): 80.0}))
    assert (got["penalty"], got["lists"]) == (0.0, "near:1")
    # a chosen penalty other than 0: "attached" at that penalty is compared, not at 0
    got = choose_setting(_rows({(0.0, "plural"): 74.0, (2.0, "plural"): 75.0, (0.0, "attached"): 75.0,
                                (2.0, "attached"): 74.7}))
    assert (got["penalty"], got["lists"]) == (2.0, "plural")  # 0.3 below at penalty 2 (0.0's 75.0 is not looked at)
    got = choose_setting(_rows({(0.0, "plural"): 74.0, (2.0, "plural"): 75.0, (2.0, "attached"): 74.9}))
    assert (got["penalty"], got["lists"]) == (2.0, "attached")
