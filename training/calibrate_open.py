"""Choose the not-found threshold for questions asked of a whole collection (``Assistant.ask``), with a held-out check.

``calibrate.py`` chooses the reader's threshold with the reader alone on one paragraph. Asked of a collection, the
answer is the best span over the passages retrieval picks, so the chances of a right answer and of a confident
wrong one both differ. This chooses a threshold for that case, on the tuning set (``benchmarks/tuning_set.py``: the
new_wiki validation questions, every paragraph of the set as the collection):

- the **answerable reading** of a question is the first ``Settings.k`` passages retrieved, as ``ask`` reads them;
- its **unanswerable reading** is the first ``k`` passages that are not from its own paragraph: the collection
  without that paragraph. It is kept only if none of those passages holds one of the question's answers
  (normalised text), since the answer would then still be in the collection;
- at threshold ``t`` a reading's answer is what ``qa.assistant._compose_answer`` gives; ``W(t)`` is the mean F1 of
  the answerable readings (not found scores 0), ``U(t)`` the share of the unanswerable ones answered "not found",
  ``B(t) = (W + U) / 2``.

``t`` runs over the confidences ``sigmoid(m)``, ``m`` from -8 to 8 by 0.25 (ties: the higher ``t``). It is chosen
on one half of the questions (``calibrate.half``, the split ``calibrate.py`` uses) and checked on the other against
the current threshold; ``--apply`` writes the whole set's best ``t`` into the reader's ``reader_config.json`` as
``ask_threshold`` when the held-out gain is at least ``--min-gain`` (``runs/2026-12-05-ask-threshold-rule.txt``).

    .venv/bin/python training/calibrate_open.py --reader qa/weights/reader --out build/calibrate-open.json [--apply]

SQuAD dev takes no part.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from calibrate import SOURCE, _write_json, half, rounded, write_report, write_threshold  # noqa: E402

from qa.assistant import _compose_answer  # noqa: E402
from qa.reading.reader import _sigmoid  # noqa: E402  (the reader's confidence of a margin)

log = logging.getLogger("calibrate_open")
RETRIEVED = 16  # passages retrieved per question: enough for k passages that are not the question's own
MARGINS = [m / 4 for m in range(-32, 33)]  # the thresholds tried, as margins (logits of the confidence)


def _spaced(text: str) -> str:
    """Every punctuation mark, ASCII or not (dashes, curly quotes), as a space; ``normalize_answer`` drops only ASCII
    ones, and dropping joins words ("E.F." and "E. F." both become "e f" here)."""
    return "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)


def holds_answer(texts, answers, normalize) -> bool:
    """Whether any of ``texts`` holds any of ``answers`` as whole words, both normalised (``normalize``:
    ``qa.eval.metrics.normalize_answer``) after every punctuation mark became a space."""
    norm_answers = [a for a in (normalize(_spaced(x)) for x in answers) if a]
    norm_texts = [normalize(_spaced(t)) for t in texts]
    return any(f" {a} " in f" {t} " for a in norm_answers for t in norm_texts)


def readings(assistant, questions, k: int, normalize) -> list[dict]:
    """For each question, its answerable reading and (when kept) its unanswerable one, as (hits, spans) pairs."""
    out = []
    for n, q in enumerate(questions):
        hits = assistant.retrieve(q.question, RETRIEVED)
        spans = {(sp.chunk.doc_id, sp.chunk.index): sp
                 for sp in assistant.reader.read(q.question, [h.chunk for h in hits])}

        def reading(hs):
            return hs, [spans[key] for h in hs if (key := (h.chunk.doc_id, h.chunk.index)) in spans]

        others = [h for h in hits if h.chunk.doc_id != q.doc_id][:k]
        kept = len(others) == k and not holds_answer([h.chunk.text for h in others], q.answers, normalize)
        out.append({"id": q.id, "answers": q.answers, "has": reading(hits[:k]),
                    "neg": reading(others) if kept else None})
        if n % 100 == 0:
            log.info("%d/%d read", n, len(questions))
    return out


def answers_at(rows: list[dict], t: float, retrieval_weight: float, documents) -> list[dict]:
    """Each row's answer text (None: not found) for its answerable and unanswerable readings at threshold ``t``."""
    def pick(reading):
        if reading is None:
            return None
        hs, sps = reading
        return _compose_answer("", hs, sps, documents, retrieval_weight, t).text

    return [{"has": pick(r["has"]), "neg": pick(r["neg"])} for r in rows]


def balanced_open(rows: list[dict], picks: list[dict], f1) -> dict:
    """W (mean F1 of the answerable readings), U (share of the kept unanswerable readings not answered), B."""
    negs = [p["neg"] for r, p in zip(rows, picks) if r["neg"] is not None]
    if not rows or not negs:
        raise ValueError("the set needs answerable and unanswerable readings")
    w = 100 * sum(f1(p["has"] or "", r["answers"]) for r, p in zip(rows, picks)) / len(rows)
    u = 100 * sum(1 for p in negs if p is None) / len(negs)
    return {"W": w, "U": u, "B": (w + u) / 2}


def choose(rows: list[dict], halves: list[int], current: float, retrieval_weight: float, documents, f1) -> dict:
    """The threshold chosen on half 0 and checked on half 1 against ``current`` (the threshold ``ask`` uses now), and
    the whole set's best; figures as ``calibrate``. Only ``MARGINS``' thresholds are chosen from; ``current`` is
    scored beside them."""
    grid = sorted({_sigmoid(m) for m in MARGINS})
    picks = {t: answers_at(rows, t, retrieval_weight, documents) for t in sorted(set(grid) | {current})}

    def figures(t: float, h: int | None) -> dict:
        idx = [i for i, x in enumerate(halves) if h is None or x == h]
        return balanced_open([rows[i] for i in idx], [picks[t][i] for i in idx], f1)

    def best(h: int | None) -> float:
        return max(grid, key=lambda t: (figures(t, h)["B"], t))

    t_fit, t_all = best(0), best(None)
    at_fit, at_cur = figures(t_fit, 1), figures(current, 1)
    return {"current_threshold": current, "threshold_half1": t_fit, "threshold_all": t_all,
            "held_out_at_half1_threshold": rounded(at_fit), "held_out_at_current": rounded(at_cur),
            "held_out_gain": at_fit["B"] - at_cur["B"],
            "all_at_threshold_all": rounded(figures(t_all, None)), "all_at_current": rounded(figures(current, None)),
            "curve": {f"{t:.4f}": rounded(figures(t, None)) for t in picks},
            "n_fit": halves.count(0), "n_held_out": halves.count(1)}


def adopt(cfg_path: Path, res: dict, min_gain: float) -> bool:
    """Write ``threshold_all`` as the reader's ``ask_threshold`` (atomically) when the held-out gain is at least
    ``min_gain``, and note it in the ``training_summary.json`` beside it, if any; whether it did."""
    if res["held_out_gain"] < min_gain:
        return False
    write_threshold(cfg_path, "ask_threshold", res, "ask_calibration", "training/calibrate_open.py")
    return True


def main(argv=None) -> int:
    from qa.assistant import Assistant
    from qa.eval.metrics import f1_score, normalize_answer
    from qa.eval.questions import load_questions
    from qa.eval.run import corpus_index
    from qa.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reader", default=str(ROOT / "qa/weights/reader"))
    p.add_argument("--set", default="build/tuning/new_wiki-val-open.json",
                   help="the tuning set (benchmarks/tuning_set.py builds it; built here when missing)")
    p.add_argument("--data", default="../shared/data/qa-train", help="to build the tuning set when it is missing")
    p.add_argument("--out", default=None, help="write the report here (JSON)")
    p.add_argument("--apply", action="store_true",
                   help="write threshold_all into the reader's reader_config.json as ask_threshold when the held-out "
                        "gain is at least --min-gain")
    p.add_argument("--min-gain", type=float, default=0.5)
    args = p.parse_args(argv)
    folder = Path(args.reader)
    set_path = Path(args.set)
    if not set_path.exists():
        from tuning_set import build

        set_path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(set_path, build(Path(args.data)))
    os.environ["QA_READER_MODEL"] = str(folder.resolve())
    qs = load_questions(set_path)
    s = corpus_index(qs, Settings(), progress=None)
    assistant = Assistant.open(s.index_dir, settings=s)
    assistant.warm_up()
    t0 = time.time()
    rows = readings(assistant, qs.questions, s.k, normalize_answer)
    halves = [half(f"{SOURCE}/{r['id']}") for r in rows]
    stats = {"questions": len(rows), "unanswerable_readings": sum(r["neg"] is not None for r in rows),
             "passages_read": s.k, "retrieval_weight": s.retrieval_weight}
    res = {"reader": str(folder), "set": stats, "read_s": round(time.time() - t0, 1),
           **choose(rows, halves, assistant.threshold, s.retrieval_weight, assistant.store.documents, f1_score)}
    res["applied"] = bool(args.apply) and adopt(folder / "reader_config.json", res, args.min_gain)
    write_report(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
