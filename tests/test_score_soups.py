"""training/score_soups.py: the figures each soup is judged on, and which one ships (pure parts; no model)."""
import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
import score_soups  # noqa: E402
from score_soups import decide, row  # noqa: E402


def _row(a, b2, h=65.0, n=74.0):
    return {"a": a, "B2": b2, "H": h, "N": n}


def test_the_highest_held_out_b2_ships_among_soups_that_keep_answer_quality():
    # the wiki5 run's table (training/README.md): only 0.25 gains 0.5 of B2 with H and N held
    rows = [_row(0, 76.93, 65.02, 74.04), _row(0.25, 77.59, 65.13, 73.82), _row(0.5, 76.85, 64.82, 73.09),
            _row(0.75, 76.04, 64.08, 72.35), _row(1, 76.49, 64.13, 72.06)]
    got = decide(rows)
    assert got["ships"] == 0.25
    assert [r["eligible"] for r in got["rows"]] == [False, True, False, False, False]
    assert got["rows"][1]["dB2"] == 0.66 and got["rows"][1]["dN"] == -0.22


def test_a_soup_that_loses_answer_quality_or_gains_too_little_does_not_ship():
    base = _row(0, 70.0)
    assert decide([base, _row(0.5, 72.0, n=72.9)])["ships"] is None  # N -1.1
    assert decide([base, _row(0.5, 72.0, h=63.9)])["ships"] is None  # H -1.1
    assert decide([base, _row(0.5, 70.49)])["ships"] is None  # B2 +0.49
    assert decide([base, _row(0.5, 70.5, h=64.0, n=73.0)])["ships"] == 0.5  # the bounds themselves pass
    # the reader itself (a = 0) never ships as a change; equal B2 goes to the smaller share of the run
    assert decide([base, _row(0.75, 71.0), _row(0.25, 71.0)])["ships"] == 0.25


def test_deciding_by_five_each_takes_b5_with_b2_as_a_guard():
    def r(a, b5, b2=70.0, h=65.0, n=74.0):
        return {**_row(a, b2, h, n), "B5": b5}
    base = r(0, 60.0)
    assert decide([base, r(0.5, 60.49)], by="five-each")["ships"] is None  # B5 +0.49
    assert decide([base, r(0.5, 61.0, b2=69.49)], by="five-each")["ships"] is None  # B2 -0.51
    assert decide([base, r(0.5, 61.0, n=72.9)], by="five-each")["ships"] is None  # N -1.1
    got = decide([base, r(0.5, 60.5, b2=69.5, h=64.0, n=73.0), r(0.25, 62.0, b2=71.0)], by="five-each")
    assert got["ships"] == 0.25 and got["decided_by"] == "five-each"  # the highest B5, not the highest B2 alone
    assert got["rows"][1]["dB5"] == 0.5 and got["rows"][1]["eligible"] is True  # the bounds themselves pass
    # by three-pooled, B5 plays no part: B2 +1.0 ships 0.25
    assert decide([base, r(0.25, 50.0, b2=71.0)])["ships"] == 0.25


def test_a_row_reads_the_soup_summary_and_the_calibration_report():
    summary = {"history": [{"alpha": 0.0, "has_ans_f1_at_threshold": 1}, {
        "alpha": 0.25, "has_ans_f1_at_threshold": 47.91, "hard_neg_abstain": 86.64, "new_wiki_f1_at_threshold": 65.45,
        "has_ans_f1": 65.1311, "has_ans_f1_by_source": {"new_wiki_v1.0": 73.8244}, "null_threshold": -2.141}]}
    cal = {"held_out_at_half1_threshold": {"W": 67.69, "U": 87.48, "B": 77.59}, "threshold_half1": -4.0,
           "threshold_all": -4.05468}
    r = row(0.25, summary, cal)
    assert r == {"a": 0.25, "A": 47.91, "U": 86.64, "W": 65.45, "H": 65.1311, "N": 73.8244, "soup_threshold": -2.141,
                 "B2": 77.59, "W2": 67.69, "U2": 87.48, "threshold_half1": -4.0, "threshold_all": -4.0547}


def test_the_original_rule_s_verdict_is_recorded_beside_and_a_is_compared_with_0():
    full = [{"a": 0, "A": 47.34, "U": 85.20, "W": 66.11, "B2": 76.93, "H": 65.02, "N": 74.04},
            {"a": 0.25, "A": 47.91, "U": 86.64, "W": 65.45, "B2": 77.59, "H": 65.13, "N": 73.82}]
    got = decide(full)["rows"][1]
    assert got["dMean"] == 1.0 and got["dA"] == 0.57 and got["dW"] == -0.66 and got["eligible_original"] is True
    with pytest.raises(ValueError, match="include 0"):
        decide(full[1:])


def test_main_scores_each_alpha_once_and_again_when_a_reader_changes(tmp_path, monkeypatch):
    base, run, build = tmp_path / "base", tmp_path / "run", tmp_path / "build"
    for folder, data in ((base, b"base"), (run, b"run 1")):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(data)
    calls = []

    def fake_run(cmd, check, stdout, stderr):  # soup.py writes a summary, calibrate.py a report
        calls.append([c for c in cmd[1:]])
        if cmd[1].endswith("soup.py"):
            alpha = float(cmd[cmd.index("--alphas") + 1])
            out = tmp_path / cmd[cmd.index("--out") + 1]
            out.mkdir(exist_ok=True)
            (out / "training_summary.json").write_text(json.dumps({"history": [{
                "alpha": alpha, "has_ans_f1_at_threshold": 47.0, "hard_neg_abstain": 85.0,
                "new_wiki_f1_at_threshold": 66.0, "has_ans_f1": 65.0, "has_ans_f1_by_source": {"new_wiki_v1.0": 74.0},
                "null_threshold": -2.0}]}))
        else:
            (tmp_path / cmd[cmd.index("--out") + 1]).write_text(json.dumps({
                "held_out_at_half1_threshold": {"W": 66.0, "U": 88.0, "B": 77.0 + (cmd[3].endswith("0.5"))},
                "threshold_half1": -4.0, "threshold_all": -4.0}))

    monkeypatch.setattr(score_soups.subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    argv = ["--run", "run", "--base", "base", "--tag", "t", "--alphas", "0,0.5", "--build", "build", "--",
            "--seed", "61", "--bf16"]
    assert score_soups.main(argv) == 0
    assert [c[0].rsplit("/", 1)[-1] for c in calls] == ["soup.py", "calibrate.py"] * 2
    assert calls[0][1:] == ["--readers", "base,run", "--alphas", "0", "--out", "build/t-soup-0",
                            "--seed", "61", "--bf16"]
    assert calls[1][1:] == ["--reader", "build/t-soup-0", "--bf16", "--out", "build/calibrate-t-0.json"]
    summary = json.loads((build / "t-soups-summary.json").read_text())
    assert summary["ships"] == 0.5 and summary["soup_options"] == ["--seed", "61", "--bf16"]
    # run again: nothing is scored again
    calls.clear()
    score_soups.main(argv)
    assert calls == []
    # an alpha cut off midway (no record) is scored again, alone
    (build / "t-soup-0.5.done.json").unlink()
    score_soups.main(argv)
    assert [c[c.index("--alphas") + 1] for c in calls if "--alphas" in c] == ["0.5"]
    # the run's weights changed (a run started again): every alpha again
    calls.clear()
    (run / "model.safetensors").write_bytes(b"run 2")
    score_soups.main(argv)
    assert [c[c.index("--alphas") + 1] for c in calls if "--alphas" in c] == ["0", "0.5"]
