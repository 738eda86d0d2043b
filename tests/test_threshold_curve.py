"""benchmarks/threshold_curve.py: what abstaining more would give, from one evaluation's records."""
import csv
import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from threshold_curve import curve, main  # noqa: E402


def _rec(gold, prediction, f1, confidence):
    return {"gold": json.dumps(gold), "prediction": prediction, "F1": str(f1), "confidence": str(confidence)}


RECORDS = [_rec(["Paris"], "Paris", 1.0, 0.99), _rec(["1901"], "1902", 0.0, 0.6),
           _rec([], "Lyon", 0.0, 0.95), _rec([], "", 0.0, 0.2)]


def test_a_higher_threshold_withholds_answers_and_counts_abstentions():
    low, mid, high = curve(RECORDS, [0.5, 0.9, 0.999])
    assert (low["has_ans_f1"], low["no_ans_accuracy"], low["f1"]) == (50.0, 50.0, 50.0)
    # 0.9 withholds "1902" (wrong anyway) only: answerable F1 holds
    assert (mid["has_ans_f1"], mid["no_ans_accuracy"]) == (50.0, 50.0)
    # 0.999 withholds every answer: right on both unanswerables, nothing on the answerables
    assert (high["has_ans_f1"], high["no_ans_accuracy"], high["f1"]) == (0.0, 100.0, 50.0)


def test_main_reads_a_qa_eval_folder_and_refuses_another(tmp_path, capsys):
    with open(tmp_path / "records.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["gold", "prediction", "F1", "confidence"])
        w.writeheader()
        w.writerows(RECORDS)
    assert main([str(tmp_path), "--thresholds", "0.9"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["questions"] == 4 and out["curve"][0]["threshold"] == 0.9
    assert "warning" not in cap.err
    assert main([str(tmp_path), "--thresholds", "0.1"]) == 0  # below the lowest answered confidence, 0.6
    assert "answered nothing below confidence 0.6000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nothing")])
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--thresholds", "high"])
