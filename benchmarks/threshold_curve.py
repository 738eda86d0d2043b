"""What any not-found threshold could do with one evaluation's answers: answerable F1, unanswerable accuracy and
overall F1 at a range of confidence thresholds, from a ``qa eval --out DIR`` folder (its ``records.csv``).

    .venv/bin/qa eval ../shared/data/squad/dev-v2.0.json --gold-context --out build/v2
    .venv/bin/python benchmarks/threshold_curve.py build/v2 [--thresholds 0.5,0.9,0.99]

An answer is kept when its confidence is at least the threshold. Only thresholds at or above the one the evaluation
ran with can be shown (a withheld answer's text is not recorded), so the curve shows what abstaining MORE would
give. For reporting what stands between a reader and a target: it chooses nothing (SQuAD dev tunes nothing).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

THRESHOLDS = (0.5, 0.9, 0.99, 0.995, 0.999, 0.9995, 0.9998, 0.9999)


def curve(records: list[dict], thresholds) -> list[dict]:
    """One row per threshold: has_ans_f1, no_ans_accuracy (percent) and their weighted mean f1."""
    has = [r for r in records if json.loads(r["gold"])]
    none = [r for r in records if not json.loads(r["gold"])]
    if not records:
        raise ValueError("no records")
    rows = []
    for t in thresholds:
        def kept(r) -> bool:
            return bool(r["prediction"]) and float(r["confidence"]) >= t
        h = 100.0 * sum(float(r["F1"]) for r in has if kept(r)) / max(1, len(has))
        u = 100.0 * sum(1 for r in none if not kept(r)) / max(1, len(none))
        f1 = (h * len(has) + u * len(none)) / len(records)
        rows.append({"threshold": t, "has_ans_f1": round(h, 2), "no_ans_accuracy": round(u, 2), "f1": round(f1, 2)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a qa eval --out folder")
    p.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)))
    a = p.parse_args(argv)
    path = Path(a.run) / "records.csv"
    if not path.exists():
        p.error(f"{path} not found: give a folder written by qa eval --out")
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    try:
        thresholds = [float(t) for t in a.thresholds.split(",")]
    except ValueError:
        p.error(f"--thresholds takes numbers separated by commas, not {a.thresholds!r}")
    answered = [float(r["confidence"]) for r in records if r["prediction"]]
    lowest = min(answered, default=0.0)
    below = [t for t in thresholds if t < lowest]
    if below:  # answers withheld at the run's own threshold cannot come back: such rows would mislead
        print(f"warning: the run answered nothing below confidence {lowest:.4f}; the rows for {below} show only "
              "what it answered, not what a lower threshold would", file=sys.stderr)
    print(json.dumps({"run": str(a.run), "questions": len(records), "curve": curve(records, thresholds)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
