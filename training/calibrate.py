"""Choose a reader's no-answer threshold on a balanced Wikipedia-like set, with a held-out check.

The threshold ``train_reader.py`` and ``soup.py`` write maximises overall F1 on the training data's validation
split: mostly reviews, Reddit posts and policies, and mostly answerable questions. This chooses it for the other
operating point, Wikipedia-like text where abstaining is worth as much as answering:

- the questions of the ``new_wiki_v1.0`` validation articles (held out from training; the articles
  ``benchmarks/tuning_set.py`` uses), all answerable;
- their hard negatives, made with ``reader_data``'s generators at fraction 1: the answer's sentences cut from the
  paragraph, a name or year of the question swapped for one the paragraph lacks, the most similar other paragraph
  of the same article;
- ``B(t) = (W(t) + U(t)) / 2``, with ``W`` the answerable F1 at threshold ``t`` (a withheld answer scores 0) and
  ``U`` the share of the negatives left unanswered, so both halves weigh the same whatever their counts.

It chooses ``t`` on one half of the questions (split by a hash of the question id; a question's negatives go with
it), reports ``B`` on the other half at that ``t`` and at the reader's current threshold, and the ``t`` that
maximises ``B`` on the whole set. ``--apply`` writes that ``t`` into the reader's ``reader_config.json`` when the
held-out gain is at least ``--min-gain`` (the rule in ``runs/2026-12-05-threshold-wiki-balanced-rule.txt``).

    .venv/bin/python training/calibrate.py --reader qa/weights/reader --bf16 --out build/calibrate.json [--apply]

SQuAD dev takes no part.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_data import (Example, add_removed_sentence_negatives, add_retrieved_negatives,  # noqa: E402
                         add_swapped_question_negatives, load_examples, question_of, tokenize_windows_parallel)
from train_reader import device_and_amp, score_rows  # noqa: E402

log = logging.getLogger("calibrate")
SOURCE = "new_wiki_v1.0"


def build_set(data_dir: Path, seed: int) -> tuple[list[Example], dict]:
    """The source's validation questions and, for each, the hard negatives the generators can make of it."""
    _, val, paras = load_examples(data_dir)
    questions = [e for e in val if e.source == SOURCE and e.answers]
    if not questions:
        raise SystemExit(f"{data_dir}: no answerable {SOURCE} validation questions")
    retrieved = add_retrieved_negatives(questions, paras, 1.0, seed)
    cut = add_removed_sentence_negatives(questions, 1.0, seed + 1)
    swapped = add_swapped_question_negatives(questions, 1.0, seed + 2)
    stats = {"questions": len(questions), "retrieved_negatives": len(retrieved),
             "sentence_cut_negatives": len(cut), "swapped_question_negatives": len(swapped)}
    return questions + retrieved + cut + swapped, stats


def half(qid: str) -> int:
    """0 or 1 from the question id, the same for a question and its negatives."""
    return int(hashlib.md5(question_of(qid).encode()).hexdigest(), 16) % 2


def balanced(rows: list[tuple], t: float) -> dict:
    """W, U and B = (W + U) / 2 at threshold ``t`` (answer when diff < t), rows as ``train_reader.score_rows``;
    unrounded (``rounded`` is for reports)."""
    has = [r for r in rows if r[5]]
    neg = [r for r in rows if not r[5]]
    if not has or not neg:
        raise ValueError("the set needs answerable and unanswerable questions")
    w = 100 * sum(r[2] for r in has if r[0] < t) / len(has)
    u = 100 * sum(1 for r in neg if not r[0] < t) / len(neg)
    return {"W": w, "U": u, "B": (w + u) / 2}


def rounded(figures: dict) -> dict:
    return {k: round(v, 2) for k, v in figures.items()}


def best_threshold(rows: list[tuple]) -> float:
    """The ``t`` that maximises B: midpoints between consecutive distinct finite diffs, and one below them all
    (ties: the lowest, i.e. the most abstaining)."""
    diffs = sorted({r[0] for r in rows if math.isfinite(r[0])})
    if not diffs:
        raise ValueError("no row has a span to answer with")
    cands = [diffs[0] - 1.0] + [(a + b) / 2 for a, b in zip(diffs, diffs[1:])] + [diffs[-1] + 1.0]
    return max(cands, key=lambda t: (balanced(rows, t)["B"], -t))


def report(rows: list[tuple], halves: list[int], current: float) -> dict:
    """Choose on half 0, check on half 1; and the whole set's best ``t``."""
    fit = [r for r, h in zip(rows, halves) if h == 0]
    held = [r for r, h in zip(rows, halves) if h == 1]
    t_fit = best_threshold(fit)
    t_all = best_threshold(rows)
    at_fit, at_cur = balanced(held, t_fit), balanced(held, current)
    return {"current_threshold": current, "threshold_half1": t_fit, "threshold_all": t_all,
            "held_out_at_half1_threshold": rounded(at_fit), "held_out_at_current": rounded(at_cur),
            "held_out_gain": at_fit["B"] - at_cur["B"],  # unrounded: what the rule's 0.5 is held against
            "all_at_threshold_all": rounded(balanced(rows, t_all)), "all_at_current": rounded(balanced(rows, current)),
            "n_fit": len(fit), "n_held_out": len(held)}


def adopt(cfg_path: Path, res: dict, min_gain: float) -> bool:
    """The rule: write ``threshold_all`` into the reader's config (atomically) when the held-out gain is at least
    ``min_gain``, and note it in the ``training_summary.json`` beside it, if any; whether it did."""
    if res["held_out_gain"] < min_gain:
        return False
    cfg = json.loads(cfg_path.read_text())
    before, cfg["null_threshold"] = cfg["null_threshold"], round(res["threshold_all"], 4)
    _write_json(cfg_path, cfg)
    summary = cfg_path.parent / "training_summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        s["calibration"] = {"tool": "training/calibrate.py", "null_threshold_before": before,
                            "null_threshold": cfg["null_threshold"], "held_out_gain": res["held_out_gain"],
                            "set": res.get("set")}
        _write_json(summary, s)
    return True


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def main(argv=None) -> int:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reader", default="qa/weights/reader")
    p.add_argument("--data", default="../shared/data/qa-train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast, as serving computes on a CPU with AMX")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", default=None, help="write the report here (JSON)")
    p.add_argument("--apply", action="store_true", help="write threshold_all into the reader's reader_config.json "
                                                        "when the held-out gain is at least --min-gain")
    p.add_argument("--min-gain", type=float, default=0.5)
    args = p.parse_args(argv)
    folder = Path(args.reader)
    cfg_path = folder / "reader_config.json"
    cfg = json.loads(cfg_path.read_text())
    examples, stats = build_set(Path(args.data), args.seed)
    log.info("set: %s", json.dumps(stats))
    device, amp = device_and_amp(SimpleNamespace(device=args.device, bf16=args.bf16))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tok = tokenize_windows_parallel(tokenizer, examples, cfg["max_length"], cfg["stride"], False, args.seed, 1)
    model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=torch.float32).to(device)
    t0 = time.time()
    rows = score_rows(model, tok, examples, device, args.batch, cfg["max_answer_tokens"], amp)
    res = {"reader": str(folder), "set": stats, "bf16": amp, "score_s": round(time.time() - t0, 1),
           **report(rows, [half(e.qid) for e in examples], float(cfg["null_threshold"]))}
    res["applied"] = bool(args.apply) and adopt(cfg_path, res, args.min_gain)
    text = json.dumps(res, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
