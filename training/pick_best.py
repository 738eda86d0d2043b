"""After parallel training runs: keep the run whose validation selection score is best.

    python training/pick_best.py WORK_DIR OUT_DIR

Writes OUT_DIR/summary_all.json (every run's validation figures), OUT_DIR/reader_meta.tar (config, tokenizer,
reader_config.json, training_summary.json of the best run) and the best run's weights split into parts of at
most 15 MiB (model.safetensors.partN), which ``cat`` joins back together.
"""
from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

PART = 15 * 1024 * 1024


def main(work: str, out: str) -> int:
    work_dir, out_dir = Path(work), Path(out)
    runs, soups = {}, []
    for summ in sorted(work_dir.glob("run_*/training_summary.json")):
        s = json.loads(summ.read_text())
        row = {"selection_score": s["selection_score"], "selected": s["selected"],
               "train_seconds": s["train_seconds"], "validation": s["validation"],
               "recipe": s["recipe"], "history": s["history"]}
        if "soup_of" in s:
            soups.append((summ.parent.name, row, s))
        else:
            runs[summ.parent.name] = row
    # A weight average (training/soup.py) is held against its own a = 1 candidate: the reader it was made from,
    # re-scored in the same pass. Its training-time score comes from another evaluation (before fp16 saving, other
    # batches), so comparing with that could pick the same reader back, or miss a real gain, on rounding noise.
    # A soup that beats it stands in for that reader, with the reader's score plus the gain.
    for name, row, s in soups:
        base, parent = s.get("baseline_score"), Path(s["soup_of"][-1]).name
        if base is None or not s["selection_score"] > base:
            print(f"{name}: no better than {s['soup_of'][-1]} scored the same way; left out")
            continue
        ref = runs[parent]["selection_score"] if parent in runs else base
        runs[name] = {**row, "selection_score": ref + s["selection_score"] - base,
                      "soup_score_as_measured": s["selection_score"], "baseline_score": base}
    if not runs:
        print("no finished run", file=sys.stderr)
        return 1
    # on a tie, a trained run wins over a weight average (only a soup's row has a baseline_score)
    best = max(runs, key=lambda r: (runs[r]["selection_score"], "baseline_score" not in runs[r]))
    (out_dir / "summary_all.json").write_text(json.dumps({"best": best, "runs": runs}, indent=1))
    src = work_dir / best
    with tarfile.open(out_dir / "reader_meta.tar", "w") as tar:
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name != "model.safetensors" and not f.name.startswith("checkpoint"):
                tar.add(f, arcname=f.name)
    data = (src / "model.safetensors").read_bytes()
    for i in range(0, len(data), PART):
        (out_dir / f"model.safetensors.part{i // PART}").write_bytes(data[i : i + PART])
    print(f"best: {best} score {runs[best]['selection_score']:.2f}; {len(data)} bytes of weights")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
