"""Score a continued run's soups by the rule the wiki runs use, one alpha at a time, resumable.

For each ``a`` in ``--alphas``: ``soup.py --readers BASE,RUN --alphas a --out build/TAG-soup-a`` (with every option
after ``--`` passed on: the run's data options, seed and cache), then ``calibrate.py --reader build/TAG-soup-a
--bf16``. An alpha is scored once: ``build/TAG-soup-a.done.json`` records what it was scored from (the two readers'
weights by hash, the options), and an alpha whose record matches the current call is not scored again, so a session
that ends midway loses at most one alpha, while a changed reader or option scores every alpha afresh. Then the table
and the choice, written to ``build/TAG-soups-summary.json``:

- B2: held-out balanced F1 at the threshold ``calibrate.py`` chooses on the other half (how the soup would ship);
- H, N: answerable F1 always answering, over all sources and on new_wiki (no threshold in them);
- eligible: ``a > 0`` with B2 at least 0.5 above ``a = 0`` and H and N falling by at most 1.0; the highest B2
  ships, ties to the smaller ``a`` (the amendment of ``runs/2026-12-05-cpu-wiki5-rule.txt``, and the rules after it);
- recorded beside it, deciding nothing: the original rule's verdict ((A + U) / 2 at least 0.5 up, A falling by at
  most 2.0, W by at most 1.0), as the amendment asks.

With ``--decide-by five-each`` (``runs/2026-12-05-cpu-pswap-rule.txt``) each soup is also calibrated on
``calibrate.py --set five-each`` (U the mean over five kinds of negative, the antonym and negated questions among
them), whose held-out B, B5, decides instead: eligible with B5 at least 0.5 up, B2 falling by at most 0.5, and H and N
by at most 1.0; the highest B5 ships.

    .venv/bin/python training/score_soups.py --run /tmp/reader-wiki6 --tag wiki6 -- --data ../shared/data/qa-train \\
        --cache /tmp/reader-wiki6/data.pt --seed 61 --neg-fraction 0.4 --removed-negatives 0.5 \\
        --swapped-negatives 1.0 --antonym-negatives 1.0 --negated-negatives 1.0 --max-val-examples 2000 --bf16
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALPHAS = "0,0.25,0.5,0.75,1"
EPS = 1e-9  # bounds are held with this margin: 64.01 - 1.0 must pass a fall of "no more than 1.0"
B2_GUARD = 0.5  # with --decide-by five-each, how far B2 may fall (runs/2026-12-05-cpu-pswap-rule.txt)


def row(alpha: float, summary: dict, calibration: dict) -> dict:
    """One alpha's figures from its soup's training_summary.json and its calibrate.py report."""
    h = next(x for x in summary["history"] if float(x["alpha"]) == alpha)
    held = calibration["held_out_at_half1_threshold"]
    return {"a": alpha, "A": h["has_ans_f1_at_threshold"], "U": h["hard_neg_abstain"],
            "W": h["new_wiki_f1_at_threshold"], "H": h["has_ans_f1"],
            "N": h["has_ans_f1_by_source"]["new_wiki_v1.0"], "soup_threshold": h["null_threshold"],
            "B2": held["B"], "W2": held["W"], "U2": held["U"],
            "threshold_half1": round(calibration["threshold_half1"], 4),
            "threshold_all": round(calibration["threshold_all"], 4)}


def decide(rows: list[dict], min_b2: float = 0.5, max_drop: float = 1.0, by: str = "three-pooled") -> dict:
    """Each row's differences from ``a = 0`` and eligibility, and the alpha that ships (None: nothing ships); the
    original rule's verdict beside it (``eligible_original``), deciding nothing. Bounds are held against unrounded
    differences (B2 is rounded to 2 places by calibrate.py)."""
    base = next((r for r in rows if r["a"] == 0), None)
    if base is None:
        raise ValueError("the rule compares with a = 0: include 0 in --alphas")
    out = []
    for r in rows:
        d_b2, d_h, d_n = r["B2"] - base["B2"], r["H"] - base["H"], r["N"] - base["N"]
        d_mean = (r["A"] + r["U"]) / 2 - (base["A"] + base["U"]) / 2 if "A" in r else None
        d = {"dB2": round(d_b2, 2), "dH": round(d_h, 2), "dN": round(d_n, 2)}
        # the gain that decides: B2, or with five-each B5, with B2 then a guard
        gain, guarded = d_b2, True
        if by == "five-each":
            gain, guarded = r["B5"] - base["B5"], d_b2 >= -B2_GUARD - EPS
            d["dB5"] = round(gain, 2)
        d["eligible"] = (r["a"] > 0 and gain >= min_b2 - EPS and guarded and d_h >= -max_drop - EPS
                         and d_n >= -max_drop - EPS)
        if d_mean is not None:
            d_a, d_w = r["A"] - base["A"], r["W"] - base["W"]
            d.update(dMean=round(d_mean, 2), dA=round(d_a, 2), dW=round(d_w, 2),
                     eligible_original=r["a"] > 0 and d_mean >= 0.5 and d_a >= -2.0 and d_w >= -1.0)
        out.append({**r, **d})
    eligible = [r for r in out if r["eligible"]]
    key = "B5" if by == "five-each" else "B2"
    ships = max(eligible, key=lambda r: (r[key], -r["a"]))["a"] if eligible else None
    return {"rows": out, "ships": ships, "decided_by": by}


def cal5(build: Path, tag: str, alpha: str) -> Path:
    return build / f"calibrate5-{tag}-{alpha}.json"


def weights_hash(folder: Path) -> str:
    """sha256 of a reader folder's model.safetensors (first 16 hex digits)."""
    h = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


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
    p.add_argument("--decide-by", choices=("three-pooled", "five-each"), default="three-pooled",
                   help="the calibration set whose held-out B decides (five-each: B5, with B2 as a guard)")
    a = p.parse_args(own)
    build = Path(a.build)
    build.mkdir(parents=True, exist_ok=True)
    made_from = {"base": a.base, "run": a.run, "base_weights": weights_hash(Path(a.base)),
                 "run_weights": weights_hash(Path(a.run)), "soup_options": passed}
    if a.decide_by != "three-pooled":
        made_from["decide_by"] = a.decide_by
    rows = []
    for alpha in a.alphas.split(","):
        soup, cal = build / f"{a.tag}-soup-{alpha}", build / f"calibrate-{a.tag}-{alpha}.json"
        done = build / f"{a.tag}-soup-{alpha}.done.json"
        if not (done.exists() and json.loads(done.read_text()) == made_from):
            done.unlink(missing_ok=True)
            with open(build / f"{a.tag}-soup-{alpha}.log", "w") as log:
                subprocess.run([sys.executable, str(HERE / "soup.py"), "--readers", f"{a.base},{a.run}",
                                "--alphas", alpha, "--out", str(soup), *passed], check=True, stdout=log,
                               stderr=subprocess.STDOUT)
            with open(build / f"calibrate-{a.tag}-{alpha}.log", "w") as log:
                subprocess.run([sys.executable, str(HERE / "calibrate.py"), "--reader", str(soup), "--bf16",
                                "--out", str(cal)], check=True, stdout=log, stderr=subprocess.STDOUT)
            if a.decide_by == "five-each":
                with open(build / f"calibrate5-{a.tag}-{alpha}.log", "w") as log:
                    subprocess.run([sys.executable, str(HERE / "calibrate.py"), "--reader", str(soup), "--bf16",
                                    "--set", "five-each", "--out", str(cal5(build, a.tag, alpha))], check=True,
                                   stdout=log, stderr=subprocess.STDOUT)
            done.write_text(json.dumps(made_from))  # written last: the alpha is whole
        r = row(float(alpha), json.loads((soup / "training_summary.json").read_text()), json.loads(cal.read_text()))
        if a.decide_by == "five-each":
            held = json.loads(cal5(build, a.tag, alpha).read_text())["held_out_at_half1_threshold"]
            r.update(B5=held["B"], W5=held["W"], U5=held["U"])
        rows.append(r)
    res = {**made_from, **decide(rows, by=a.decide_by)}
    (build / f"{a.tag}-soups-summary.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
