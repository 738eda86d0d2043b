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
    runs = {}
    for summ in sorted(work_dir.glob("run_*/training_summary.json")):
        s = json.loads(summ.read_text())
        runs[summ.parent.name] = {"selection_score": s["selection_score"], "selected": s["selected"],
                                  "train_seconds": s["train_seconds"], "validation": s["validation"],
                                  "recipe": s["recipe"], "history": s["history"]}
    if not runs:
        print("no finished run", file=sys.stderr)
        return 1
    # on a tie a trained run beats a weight average (training/soup.py writes run_soup)
    best = max(runs, key=lambda r: (runs[r]["selection_score"], r != "run_soup"))
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
