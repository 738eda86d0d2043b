"""Score a continued run's soups by the rule the wiki runs use, one alpha at a time, resumable.

For each ``a`` in ``--alphas``: ``soup.py --readers BASE,RUN --alphas a --out build/TAG-soup-a`` (with every option
after ``--`` passed on: the run's data options, seed and cache), then ``calibrate.py --reader build/TAG-soup-a
--bf16``. An alpha whose calibration report exists is not scored again, so a session that ends midway loses at most
one alpha. Then the table and the choice, written to ``build/TAG-soups-summary.json``:

- B2: held-out balanced F1 at the threshold ``calibrate.py`` chooses on the other half (how the soup would ship);
- H, N: answerable F1 always answering, over all sources and on new_wiki (no threshold in them);
- eligible: ``a > 0`` with B2 at least 0.5 above ``a = 0`` and H and N falling by at most 1.0; the highest B2
  ships, ties to the smaller ``a`` (the amendment of ``runs/2026-12-05-cpu-wiki5-rule.txt``, and the rules after it).

    .venv/bin/python training/score_soups.py --run /tmp/reader-wiki6 --tag wiki6 -- --data ../shared/data/qa-train \\
        --cache /tmp/reader-wiki6/data.pt --seed 61 --neg-fraction 0.4 --removed-negatives 0.5 \\
        --swapped-negatives 1.0 --antonym-negatives 1.0 --negated-negatives 1.0 --max-val-examples 2000 --bf16
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALPHAS = "0,0.25,0.5,0.75,1"


def row(alpha: float, summary: dict, calibration: dict) -> dict:
    """One alpha's figures from its soup's training_summary.json and its calibrate.py report."""
    h = next(x for x in summary["history"] if float(x["alpha"]) == alpha)
    held = calibration["held_out_at_half1_threshold"]
    return {"a": alpha, "A": h["has_ans_f1_at_threshold"], "U": h["hard_neg_abstain"],
            "W": h["new_wiki_f1_at_threshold"], "H": round(h["has_ans_f1"], 2),
            "N": round(h["has_ans_f1_by_source"]["new_wiki_v1.0"], 2), "soup_threshold": h["null_threshold"],
            "B2": held["B"], "W2": held["W"], "U2": held["U"],
            "threshold_half1": round(calibration["threshold_half1"], 4),
            "threshold_all": round(calibration["threshold_all"], 4)}


def decide(rows: list[dict], min_b2: float = 0.5, max_drop: float = 1.0) -> dict:
    """Each row's differences from ``a = 0`` and eligibility, and the alpha that ships (None: nothing ships)."""
    base = next(r for r in rows if r["a"] == 0)
    out = []
    for r in rows:
        d = {"dB2": round(r["B2"] - base["B2"], 2), "dH": round(r["H"] - base["H"], 2),
             "dN": round(r["N"] - base["N"], 2)}
        d["eligible"] = r["a"] > 0 and d["dB2"] >= min_b2 and d["dH"] >= -max_drop and d["dN"] >= -max_drop
        out.append({**r, **d})
    eligible = [r for r in out if r["eligible"]]
    ships = max(eligible, key=lambda r: (r["B2"], -r["a"]))["a"] if eligible else None
    return {"rows": out, "ships": ships}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the continued run's reader folder")
    p.add_argument("--base", default="qa/weights/reader", help="the reader it continued (a = 0)")
    p.add_argument("--tag", required=True)
    p.add_argument("--alphas", default=ALPHAS)
    p.add_argument("--build", default="build")
    a = p.parse_args(own)
    build = Path(a.build)
    build.mkdir(parents=True, exist_ok=True)
    rows = []
    for alpha in a.alphas.split(","):
        soup, cal = build / f"{a.tag}-soup-{alpha}", build / f"calibrate-{a.tag}-{alpha}.json"
        if not cal.exists():
            with open(build / f"{a.tag}-soup-{alpha}.log", "w") as log:
                subprocess.run([sys.executable, str(HERE / "soup.py"), "--readers", f"{a.base},{a.run}",
                                "--alphas", alpha, "--out", str(soup), *passed], check=True, stdout=log,
                               stderr=subprocess.STDOUT)
            with open(build / f"calibrate-{a.tag}-{alpha}.log", "w") as log:
                subprocess.run([sys.executable, str(HERE / "calibrate.py"), "--reader", str(soup), "--bf16",
                                "--out", str(cal)], check=True, stdout=log, stderr=subprocess.STDOUT)
        rows.append(row(float(alpha), json.loads((soup / "training_summary.json").read_text()),
                        json.loads(cal.read_text())))
    res = {"run": a.run, "base": a.base, "soup_options": passed, **decide(rows)}
    (build / f"{a.tag}-soups-summary.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
