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

``--set`` picks the negatives: ``three-pooled`` (the default, the set above, U over all its negatives pooled) or
``five-each``, which adds the generators' two SQuAD 2.0-like kinds (a word of the question turned into its opposite,
the question negated) and takes U as the mean of the five kinds' shares, so that each way a passage can fail to
answer weighs the same however many negatives its generator could make
(``runs/2026-12-05-threshold-five-kinds-rule.txt``).

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
from reader_data import (OTHER_PASSAGE_SUFFIXES, OTHER_QUESTION_SUFFIXES, Example,  # noqa: E402
                         add_antonym_question_negatives, add_negated_question_negatives,
                         add_removed_sentence_negatives, add_retrieved_negatives, add_swapped_question_negatives,
                         load_examples, question_of, tokenize_windows_parallel)
from train_reader import device_and_amp, score_rows  # noqa: E402

log = logging.getLogger("calibrate")
SOURCE = "new_wiki_v1.0"


SETS = ("three-pooled", "five-each")


def build_set(data_dir: Path, seed: int, which: str = "three-pooled") -> tuple[list[Example], dict]:
    """The source's validation questions and, for each, the hard negatives the generators can make of it."""
    if which not in SETS:
        raise ValueError(f"unknown calibration set {which!r}: one of {', '.join(SETS)}")
    _, val, paras = load_examples(data_dir)
    questions = [e for e in val if e.source == SOURCE and e.answers]
    if not questions:
        raise SystemExit(f"{data_dir}: no answerable {SOURCE} validation questions")
    retrieved = add_retrieved_negatives(questions, paras, 1.0, seed)
    cut = add_removed_sentence_negatives(questions, 1.0, seed + 1)
    swapped = add_swapped_question_negatives(questions, 1.0, seed + 2)
    stats = {"name": which, "questions": len(questions), "retrieved_negatives": len(retrieved),
             "sentence_cut_negatives": len(cut), "swapped_question_negatives": len(swapped)}
    out = questions + retrieved + cut + swapped
    if which == "five-each":
        antonym = add_antonym_question_negatives(questions, 1.0, seed + 3)
        negated = add_negated_question_negatives(questions, 1.0, seed + 4)
        stats.update(antonym_question_negatives=len(antonym), negated_question_negatives=len(negated))
        out += antonym + negated
    return out, stats


def kind_of(qid: str) -> str:
    """The generator a negative came from, by its id's suffix ("/cut" -> "cut"); "" for a question."""
    return next((suf[1:] for suf in OTHER_PASSAGE_SUFFIXES + OTHER_QUESTION_SUFFIXES if qid.endswith(suf)), "")


def half(qid: str) -> int:
    """0 or 1 from the question id, the same for a question and its negatives."""
    return int(hashlib.md5(question_of(qid).encode()).hexdigest(), 16) % 2


def balanced(rows: list[tuple], t: float, kinds: list[str] | None = None) -> dict:
    """W, U and B = (W + U) / 2 at threshold ``t`` (answer when diff < t), rows as ``train_reader.score_rows``;
    unrounded (``rounded`` is for reports). With ``kinds`` (each row's ``kind_of``), U is the mean of each kind's
    share of negatives left unanswered instead of the share of all negatives pooled."""
    has = [r for r in rows if r[5]]
    if kinds is None:
        kinds = [""] * len(rows)
    by_kind: dict[str, list[tuple]] = {}
    for r, k in zip(rows, kinds):
        if not r[5]:
            by_kind.setdefault(k, []).append(r)
    if not has or not by_kind:
        raise ValueError("the set needs answerable and unanswerable questions")
    w = 100 * sum(r[2] for r in has if r[0] < t) / len(has)
    u = sum(100 * sum(1 for r in neg if not r[0] < t) / len(neg) for neg in by_kind.values()) / len(by_kind)
    return {"W": w, "U": u, "B": (w + u) / 2}


def rounded(figures: dict) -> dict:
    return {k: round(v, 2) for k, v in figures.items()}


def best_threshold(rows: list[tuple], kinds: list[str] | None = None) -> float:
    """The ``t`` that maximises B: midpoints between consecutive distinct finite diffs, and one below them all
    (ties: the lowest, i.e. the most abstaining)."""
    diffs = sorted({r[0] for r in rows if math.isfinite(r[0])})
    if not diffs:
        raise ValueError("no row has a span to answer with")
    cands = [diffs[0] - 1.0] + [(a + b) / 2 for a, b in zip(diffs, diffs[1:])] + [diffs[-1] + 1.0]
    return max(cands, key=lambda t: (balanced(rows, t, kinds)["B"], -t))


def report(rows: list[tuple], halves: list[int], current: float, kinds: list[str] | None = None) -> dict:
    """Choose on half 0, check on half 1; and the whole set's best ``t``. ``kinds``: as ``balanced``."""
    def split(h: int) -> tuple[list[tuple], list[str] | None]:
        idx = [i for i, x in enumerate(halves) if x == h]
        return [rows[i] for i in idx], (None if kinds is None else [kinds[i] for i in idx])

    (fit, fit_kinds), (held, held_kinds) = split(0), split(1)
    t_fit = best_threshold(fit, fit_kinds)
    t_all = best_threshold(rows, kinds)
    at_fit, at_cur = balanced(held, t_fit, held_kinds), balanced(held, current, held_kinds)
    out = {"current_threshold": current, "threshold_half1": t_fit, "threshold_all": t_all,
           "held_out_at_half1_threshold": rounded(at_fit), "held_out_at_current": rounded(at_cur),
           "held_out_gain": at_fit["B"] - at_cur["B"],  # unrounded: what the rule's 0.5 is held against
           "all_at_threshold_all": rounded(balanced(rows, t_all, kinds)),
           "all_at_current": rounded(balanced(rows, current, kinds)),
           "n_fit": len(fit), "n_held_out": len(held)}
    if kinds is not None:  # each kind's share left unanswered, whole set, at the chosen and the current threshold
        out["unanswered_by_kind"] = {
            k: {at: round(100 * sum(1 for r, x in zip(rows, kinds) if x == k and not r[0] < t)
                          / sum(1 for x in kinds if x == k), 2)
                for at, t in (("threshold_all", t_all), ("current", current))}
            for k in sorted({x for r, x in zip(rows, kinds) if not r[5]})}
    return out


def adopt(cfg_path: Path, res: dict, min_gain: float) -> bool:
    """The rule: write ``threshold_all`` into the reader's config (atomically) when the held-out gain is at least
    ``min_gain``, and note it in the ``training_summary.json`` beside it, if any; whether it did.

    A new ``null_threshold`` moves every confidence, so an ``ask_threshold`` (``calibrate_open.py``) chosen on the old
    ones is dropped with it: run ``calibrate_open.py`` again."""
    if res["held_out_gain"] < min_gain:
        return False
    note = write_threshold(cfg_path, "null_threshold", res, "calibration", "training/calibrate.py",
                          drop=("ask_threshold", "ask_calibration"))
    if "ask_threshold_dropped" in note:
        log.warning("ask_threshold %s dropped: it was chosen with the old null_threshold; run calibrate_open.py again",
                    note["ask_threshold_dropped"])
    return True


def write_threshold(cfg_path: Path, key: str, res: dict, note_key: str, tool: str,
                    drop: tuple[str, str] | None = None) -> dict:
    """Set ``key`` in the reader's config to ``res["threshold_all"]`` (4 places; atomically) and note it under
    ``note_key`` in the ``training_summary.json`` beside it, if any. ``drop`` = (a config key, its note's key): both
    removed when the value changed. The note."""
    cfg = json.loads(cfg_path.read_text())
    before, cfg[key] = cfg.get(key), round(res["threshold_all"], 4)
    dropped = cfg.pop(drop[0], None) if drop and cfg[key] != before else None
    _write_json(cfg_path, cfg)
    note = {"tool": tool, f"{key}_before": before, key: cfg[key], "held_out_gain": res["held_out_gain"],
            "set": res.get("set")}
    if dropped is not None:
        note[f"{drop[0]}_dropped"] = dropped
    summary = cfg_path.parent / "training_summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        s[note_key] = note
        if dropped is not None:
            s.pop(drop[1], None)
        _write_json(summary, s)
    return note


def write_report(res: dict, out: str | None) -> None:
    """Print a calibration report, and write it to ``out`` too when given."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        _write_json(Path(out), res, indent=1)  # atomic: a report that exists is whole (score_soups.py trusts that)
    print(json.dumps(res, indent=1))


def _write_json(path: Path, obj: dict, indent: int = 2) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=indent))
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
    p.add_argument("--set", default="three-pooled", choices=SETS,
                   help="the negatives and how U counts them (see above; default: %(default)s)")
    args = p.parse_args(argv)
    folder = Path(args.reader)
    cfg_path = folder / "reader_config.json"
    cfg = json.loads(cfg_path.read_text())
    examples, stats = build_set(Path(args.data), args.seed, args.set)
    log.info("set: %s", json.dumps(stats))
    device, amp = device_and_amp(SimpleNamespace(device=args.device, bf16=args.bf16))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tok = tokenize_windows_parallel(tokenizer, examples, cfg["max_length"], cfg["stride"], False, args.seed, 1)
    model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=torch.float32).to(device)
    t0 = time.time()
    rows = score_rows(model, tok, examples, device, args.batch, cfg["max_answer_tokens"], amp)
    res = {"reader": str(folder), "set": stats, "bf16": amp, "score_s": round(time.time() - t0, 1),
           **report(rows, [half(e.qid) for e in examples], float(cfg["null_threshold"]),
                    None if args.set == "three-pooled" else [kind_of(e.qid) for e in examples])}
    res["applied"] = bool(args.apply) and adopt(cfg_path, res, args.min_gain)
    write_report(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
