"""The official SQuAD metric (evaluate-v2.0 logic), re-implemented. (Questions are typed by
:func:`qa.reading.answer_types.question_type`, the one question classifier.)

Scores are per question: exact match (0/1) and token F1, each the maximum over the gold answers
after :func:`normalize_answer`. A question whose gold list is empty, or holds only answers that
normalise to nothing, is unanswerable: its only gold answer is ``''``. Aggregates are percentages,
with the official keys (``exact``, ``f1``, ``total``, ``HasAns_*``, ``NoAns_*``, ``best_*``).
"""
from __future__ import annotations

import logging
import re
import string
from collections import Counter
from typing import Mapping, Sequence

log = logging.getLogger(__name__)

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _golds(golds: Sequence[str]) -> list[str]:
    """Gold answers that survive normalisation; ``['']`` for an unanswerable question."""
    kept = [g for g in golds if normalize_answer(g)]
    return kept or [""]


def _exact_one(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1_one(prediction: str, gold: str) -> float:
    pred_toks, gold_toks = _tokens(prediction), _tokens(gold)
    if not pred_toks or not gold_toks:
        # A no-answer on either side scores 1 only when both are no-answers.
        return float(pred_toks == gold_toks)
    same = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact_score(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the prediction matches some gold answer after normalisation, else 0.0.

    ``golds == []`` (or only empty answers) means unanswerable: 1.0 iff the prediction is empty.
    """
    return max(_exact_one(prediction, g) for g in _golds(golds))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Best token-overlap F1 of the prediction against the gold answers (0.0 to 1.0)."""
    return max(_f1_one(prediction, g) for g in _golds(golds))


def has_answer(golds: Sequence[str]) -> bool:
    """Whether a gold list describes an answerable question."""
    return any(normalize_answer(g) for g in golds)


def squad_gold(dataset: dict) -> dict[str, list[str]]:
    """Map question id -> gold answer texts from an official SQuAD v1.1 or v2.0 JSON object."""
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise ValueError("not a SQuAD dataset: expected a JSON object with a 'data' list of articles")
    gold: dict[str, list[str]] = {}
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else [a["text"] for a in qa.get("answers", [])]
                gold[qa["id"]] = answers
    return gold


def _percent(values: Sequence[float]) -> float:
    return 100.0 * sum(values) / len(values)


def _split(prefix: str, exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]) -> dict:
    return {
        f"{prefix}exact": _percent([exact[q] for q in qids]),
        f"{prefix}f1": _percent([f1[q] for q in qids]),
        f"{prefix}total": len(qids),
    }


def _apply_threshold(
    scores: Mapping[str, float], na_probs: Mapping[str, float], answerable: Mapping[str, bool], thresh: float
) -> dict[str, float]:
    """Questions whose no-answer probability exceeds ``thresh`` are scored as if answered ''."""
    return {q: (float(not answerable[q]) if na_probs[q] > thresh else s) for q, s in scores.items()}


def find_best_thresh(
    preds: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    answerable: Mapping[str, bool],
) -> tuple[float, float]:
    """The no-answer threshold that maximises the total score, and that score in percent.

    Sweeps questions by rising ``na_probs``; starting from "abstain everywhere" (every unanswerable
    question right), answering a question adds its score if answerable, and costs 1 if it is
    unanswerable but the raw prediction is non-empty. Mirrors the official sweep, ties included.
    """
    current = best = float(sum(1 for q in scores if not answerable[q]))
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if answerable[qid]:
            current += scores[qid]
        elif preds.get(qid, ""):
            current -= 1
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def score_predictions(
    gold: Mapping[str, Sequence[str]],
    preds: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict:
    """Score predictions like the official evaluate-v2.0 script; figures in percent.

    ``gold`` maps question id -> gold answers (``[]`` = unanswerable); ``preds`` maps id -> answer
    text, where a missing id counts as ``''``. ``na_probs`` (id -> probability of no answer) enables
    thresholding at ``na_prob_thresh`` and the ``best_exact``/``best_f1`` sweep.
    """
    if not gold:
        raise ValueError("no gold questions to score: pass a non-empty mapping of id -> answers")
    missing = [q for q in gold if q not in preds]
    if missing:
        log.warning("%d of %d questions have no prediction; scoring them as ''", len(missing), len(gold))
    preds = {q: preds.get(q, "") for q in gold}
    answerable = {q: has_answer(g) for q, g in gold.items()}
    exact = {q: exact_score(preds[q], g) for q, g in gold.items()}
    f1 = {q: f1_score(preds[q], g) for q, g in gold.items()}
    if na_probs is not None:
        absent = [q for q in gold if q not in na_probs]
        if absent:
            raise ValueError(f"na_probs lacks {len(absent)} question ids (e.g. {absent[0]!r}); give one per question")
        probs = {q: float(na_probs[q]) for q in gold}
    else:
        probs = {q: 0.0 for q in gold}
    exact_t = _apply_threshold(exact, probs, answerable, na_prob_thresh)
    f1_t = _apply_threshold(f1, probs, answerable, na_prob_thresh)

    out = _split("", exact_t, f1_t, list(gold))
    has_ans = [q for q in gold if answerable[q]]
    no_ans = [q for q in gold if not answerable[q]]
    if has_ans:
        out.update(_split("HasAns_", exact_t, f1_t, has_ans))
    if no_ans:
        out.update(_split("NoAns_", exact_t, f1_t, no_ans))
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = find_best_thresh(preds, exact, probs, answerable)
        out["best_f1"], out["best_f1_thresh"] = find_best_thresh(preds, f1, probs, answerable)
    return out
