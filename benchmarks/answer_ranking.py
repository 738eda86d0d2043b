"""How answers are ranked across passages, open corpus: passages read, retrieval weight, and agreement between passages.

    .venv/bin/python benchmarks/answer_ranking.py --squad build/tuning/new_wiki-val-open.json   # choose here ...
    .venv/bin/python benchmarks/answer_ranking.py --seed 0 --limit 1000     # ... report on SQuAD dev

All the set's paragraphs are indexed (SQuAD v1.1 dev: 2,067; benchmarks/tuning_set.py's set: 1,581; the cached
index `qa eval` builds). For each question the top 10 passages are retrieved and read once; every ranking rule
is then scored on the same reads, so the rules differ only in how they pick the answer. A rule's answer below the
not-found threshold (below, or ``--threshold``) counts as no answer (EM 0).
The threshold is the reader's own (the one for a single paragraph), not the ``ask_threshold`` chosen for
collections: that one is chosen after this study, for the passages and weight it picks (training/README.md).
Prints one JSON object; ``ceilings`` says what no rule could beat (``ceilings()``). ``shipped_rule_reproduced``
compares the study's pick for the shipped rule with ``Assistant.ask`` on 50 questions: they can differ where two spans
tie to bf16 rounding, because the study reads 10 passages in one batch and ``ask`` reads ``Settings.k`` (e.g. "an
enzyme" 20.58 vs "an enzyme called rubisco" 20.59).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.assistant import RETRIEVAL_LOGITS, Assistant, _compose_answer, _logit, not_found_threshold  # noqa: E402
from qa.eval.run import corpus_index  # noqa: E402
from qa.eval.metrics import exact_score, f1_score, normalize_answer  # noqa: E402
from qa.eval.questions import load_questions, sample  # noqa: E402
from qa.settings import Settings  # noqa: E402

READ = 10


SCALINGS = ("ratio", "minmax", "rank")


def retrieval_scale(reads, scaling: str) -> list[float]:
    """Each read passage's retrieval score on [0, 1], best passage 1.

    "ratio" is the shipped scaling (score / top score); "minmax" stretches the passages read over [0, 1]; "rank"
    ignores the scores and counts down by retrieval rank (1 - rank / passages read).
    """
    scores = [h.score for h, _ in reads]
    if not scores:
        return []
    top, low = max(scores), min(scores)
    if scaling == "ratio":
        return [s / top if top > 0 else 0.0 for s in scores]
    if scaling == "minmax":
        return [(s - low) / (top - low) if top > low else 1.0 for s in scores]
    return [1 - r / len(scores) for r in range(len(scores))]


def rule_pick(reads, k: int, rule: str, w: float, threshold: float, documents, scaling: str = "ratio") -> str | None:
    """(answer text or None) for one question's reads [(hit, span or None)] under a rule.

    "margin" with the "ratio" scaling is the shipped rule, run through the shipped code
    (``qa.assistant._compose_answer``); "product" (the rule shipped before) and "vote" (margins summed over passages
    that agree) are the alternatives it was chosen over, and ``scaling`` (``retrieval_scale``) how a passage's
    retrieval score enters. As in the shipped code, only spans at or above the threshold can be the answer.
    """
    reads = reads[:k]
    if rule == "margin" and scaling == "ratio":
        return _compose_answer("", [h for h, _ in reads], [sp for _, sp in reads if sp is not None], documents, w,
                               threshold).text
    scaled = retrieval_scale(reads, scaling)
    groups: dict[str, list[float]] = {}
    texts: dict[str, str] = {}
    for (h, sp), ret in zip(reads, scaled):
        if sp is None or sp.score < threshold:
            continue
        key = normalize_answer(sp.text) or sp.text
        if rule == "product":  # confidence x (1 - w + w x retrieval)
            score = sp.score * (1 - w + w * ret)
        else:
            margin = sp.margin if sp.margin is not None else _logit(sp.score)
            score = margin + RETRIEVAL_LOGITS * w * ret
        groups.setdefault(key, []).append(score)
        texts.setdefault(key, sp.text)
    if not groups:
        return None
    agg = {g: float(np.logaddexp.reduce(m)) if rule == "vote" else max(m) for g, m in groups.items()}
    return texts[max(agg, key=agg.get)]


def parse_rule(name: str) -> tuple[int, str, str, float]:
    """(passages read, rule, scaling, weight) from a rule's name: "k5-margin-w0.5", "k8-vote-minmax-w1.0"."""
    parts = name.split("-")
    scaling = parts[2] if len(parts) == 4 else "ratio"
    return int(parts[0][1:]), parts[1], scaling, float(parts[-1][1:])


def choose_rule(rules: dict[str, dict[str, float]], shipped_weight: float, margin: float = 0.3) -> str:
    """The rule benchmarks/results/tuning-rule.txt (addendum of the fourteenth session) ships.

    Among rules reading 5, 8 or 10 passages, the simplest within ``margin`` F1 of the best: fewest passages, then
    ratio before minmax before rank, then margin before vote before product, then the weight nearest the shipped one.
    """
    eligible = {n: r for n, r in rules.items() if parse_rule(n)[0] in (5, 8, 10)}
    top = max(r["f1"] for r in eligible.values())

    def simplicity(name: str) -> tuple:
        k, rule, scaling, w = parse_rule(name)
        distance = round(abs(w - shipped_weight), 9)  # rounded, so that 0.3 and 0.7 are equally far from 0.5
        return (k, SCALINGS.index(scaling), ("margin", "vote", "product").index(rule), distance, w)

    return min((n for n, r in eligible.items() if r["f1"] >= top - margin - 1e-9), key=simplicity)


def ceilings(data, threshold: float) -> dict:
    """What no ranking rule can beat, by passages read: EM if the best of the passages' spans were always picked
    (spans at or above the threshold, and any span), how often the question's own paragraph was read, the EM of its
    span when it was, and the share of questions with no span at or above the threshold ("not found")."""
    def em(sp, q) -> float:
        return exact_score(sp.text, q.answers) if sp is not None else 0.0

    def pct(values) -> float | None:
        return round(100 * float(np.mean(values)), 1) if len(values) else None

    def above(sp) -> bool:
        return sp is not None and sp.score >= threshold

    out = {}
    for k in (1, 3, 5, 8, 10):
        rows = [(q, reads[:k]) for q, reads in data]
        own = [[sp for h, sp in reads if h.chunk.doc_id == q.doc_id] for q, reads in rows]
        out[f"k{k}"] = {
            "em_best_span_above_threshold": pct([max([em(sp, q) for _, sp in reads if above(sp)], default=0.0)
                                                 for q, reads in rows]),
            "em_best_span": pct([max([em(sp, q) for _, sp in reads], default=0.0) for q, reads in rows]),
            "own_paragraph_read": pct([bool(sps) for sps in own]),
            "em_own_paragraph_when_read": pct([max(em(sp, q) for sp in sps) for (q, _), sps in zip(rows, own) if sps]),
            "not_found": pct([not any(above(sp) for _, sp in reads) for q, reads in rows])}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--squad", default="../shared/data/squad/dev-v1.1.json")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=None,
                   help="the not-found confidence threshold (default: the reader's own, for one paragraph); 0 answers "
                        "every question, so that readers with different thresholds are compared on how they rank "
                        "passages alone")
    a = p.parse_args(argv)
    qs = load_questions(a.squad)
    s = corpus_index(qs, Settings(), progress=None)
    qs = sample(qs, a.limit, a.seed)
    assistant = Assistant.open(s.index_dir, settings=s)
    threshold = not_found_threshold(s, assistant.reader, collection=False) if a.threshold is None else a.threshold
    documents = assistant.store.documents
    data = []
    for n, q in enumerate(qs.questions):
        hits = assistant.retrieve(q.question, READ)
        spans = {(sp.chunk.doc_id, sp.chunk.index): sp for sp in assistant.reader.read(q.question, [h.chunk for h in hits])}
        data.append((q, [(h, spans.get((h.chunk.doc_id, h.chunk.index))) for h in hits]))
        if n % 100 == 0:
            print(f"{n}/{len(qs.questions)}", file=sys.stderr)
    # the shipped rule through the shipped code, as a check that this study scores what `qa ask` does
    shipped = []
    for q, _ in data[:50]:
        shipped.append(assistant.ask(q.question, threshold=threshold).text)
    out = {"questions": len(data), "seed": a.seed, "threshold": threshold, "rules": {}}
    agree = sum(1 for (q, reads), t in zip(data[:50], shipped)
                if rule_pick(reads, s.k, "margin", s.retrieval_weight, threshold, documents) == t)
    out["shipped_rule_reproduced"] = f"{agree}/50"
    for k in (3, 5, 8, 10):
        for rule in ("product", "margin", "vote"):
            for scaling in SCALINGS:
                for w in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0):
                    if rule == "product" and (scaling != "ratio" or w > 1):  # its weight is a share of the score
                        continue
                    preds = [(q, rule_pick(reads, k, rule, w, threshold, documents, scaling)) for q, reads in data]
                    em = 100 * np.mean([exact_score(t or "", q.answers) for q, t in preds])
                    f1 = 100 * np.mean([f1_score(t or "", q.answers) for q, t in preds])
                    name = f"k{k}-{rule}-w{w}" if scaling == "ratio" else f"k{k}-{rule}-{scaling}-w{w}"
                    out["rules"][name] = {"em": round(float(em), 1), "f1": round(float(f1), 1)}
    out["ceilings"] = ceilings(data, threshold)
    best = max(out["rules"], key=lambda r: out["rules"][r]["f1"])
    out["best"] = {best: out["rules"][best]}
    pick = choose_rule(out["rules"], s.retrieval_weight)
    out["chosen"] = {pick: out["rules"][pick]}
    out["shipped"] = {f"k{s.k}-margin-w{s.retrieval_weight}": out["rules"][f"k{s.k}-margin-w{s.retrieval_weight}"]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
