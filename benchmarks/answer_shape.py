"""Choose the answer-shaping settings (type penalty, list rule) on the tuning set, never on SQuAD dev.

    .venv/bin/python benchmarks/tuning_set.py                       # writes build/tuning/new_wiki-val-open.json
    .venv/bin/python benchmarks/answer_shape.py [--set build/tuning/new_wiki-val-open.json] [--limit N]

Each tuning question is read once by the shipped reader on its own paragraph, and once on that paragraph with the
answer's sentences cut out (an unanswerable that looks answerable: ``training/reader_data.py``). Every setting of
``qa.reading.answer_types.choose`` is then applied to the same candidates, so settings differ only in how the answer is
picked. Prints one JSON object: per setting, answerable EM/F1 at the shipped threshold (a withheld answer scores 0),
the share of cut paragraphs left unanswered, and the score the rule (benchmarks/results/answer-shape-rule.txt)
ranks by.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from qa.reading.answer_types import choose  # noqa: E402
from qa.chunking import split_sentences  # noqa: E402
from qa.reading.decoding import Candidate  # noqa: E402
from qa.eval.metrics import exact_score, f1_score  # noqa: E402
from qa.reading.reader import SpanReader  # noqa: E402
from qa.types import Chunk  # noqa: E402
from reader_data import Example, add_removed_sentence_negatives  # noqa: E402

PENALTIES = (0.0, 1.0, 2.0, 3.0, 5.0)
LISTS = ("plural", "near:1", "near:2", "near:4", "members")  # simplest first (the 0.2 tie rule)
# Not in the tie rule's order: "attached" replaces "plural" when, at the chosen penalty, it scores no more than 0.2
# below it (the addendum of 2026-12-05, session 15, in benchmarks/results/answer-shape-rule.txt).
ATTACHED = "attached"


def load(path: Path) -> list[Example]:
    out = []
    for art in json.loads(path.read_text())["data"]:
        for p in art["paragraphs"]:
            for q in p.get("qas", []):
                golds = [a["text"] for a in q["answers"]]
                if golds:
                    a0 = q["answers"][0]
                    out.append(Example(q["id"], q["question"], p["context"], golds, a0["answer_start"], a0["text"],
                                       "new_wiki_v1.0"))
    return out


def read_all(reader: SpanReader, examples: list[Example], cache: Path | None) -> list[tuple]:
    """(example, (candidates, no-answer score) or None) for each example; the reads are kept in ``cache`` (JSON), so
    that changing ``choose`` does not mean reading again."""
    stored = json.loads(cache.read_text()) if cache and cache.exists() else {}
    reads = []
    for ex in examples:
        key = f"{ex.qid}|{ex.question}|{zlib.crc32(ex.context.encode())}"
        if key not in stored:
            got = reader.candidates(ex.question, [Chunk("p", 0, 0, len(ex.context), ex.context)]).get(0)
            stored[key] = None if got is None else [[(c.score, c.start, c.end) for c in got[0]], got[1]]
            if cache and len(stored) % 100 == 0:  # kept as it goes: a killed run resumes where it was
                _save(cache, stored)
        got = stored[key]
        reads.append((ex, None if got is None else ([Candidate(*c) for c in got[0]], got[1])))
    if cache:
        _save(cache, stored)
    return reads


def _save(cache: Path, stored: dict) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(stored))
    tmp.replace(cache)


def score(reads: list[tuple], negatives: list[tuple], threshold: float, penalty: float, lists: str) -> dict:
    def answer(ex, got) -> str:
        if got is None:
            return ""
        ranked, null = got
        picked = choose(ex.question, ex.context, ranked, split_sentences(ex.context), penalty=penalty, lists=lists)
        if picked is None or picked[0] - null + threshold < 0:  # below the calibrated answer / no-answer boundary
            return ""
        return ex.context[picked[1]:picked[2]]

    em = f1 = 0.0
    for ex, got in reads:
        pred = answer(ex, got)
        em += exact_score(pred, ex.answers) if pred else 0.0
        f1 += f1_score(pred, ex.answers) if pred else 0.0
    abstain = sum(1 for ex, got in negatives if not answer(ex, got))
    n, m = max(1, len(reads)), max(1, len(negatives))
    res = {"penalty": penalty, "lists": lists, "has_ans_em": round(100 * em / n, 2), "has_ans_f1": round(100 * f1 / n, 2),
           "cut_abstain": round(100 * abstain / m, 2)}
    res["score"] = round((res["has_ans_f1"] + res["cut_abstain"]) / 2, 2)
    return res


def choose_setting(rows: list[dict]) -> dict:
    """The rule: the simplest setting within 0.2 of the best (lower penalty first, then the order of LISTS); then
    "attached" instead of "plural" when, at that penalty, it scores no more than 0.2 below "plural"."""
    ranked = [r for r in rows if r["lists"] in LISTS]
    best = max(r["score"] for r in ranked)
    chosen = min((r for r in ranked if r["score"] >= best - 0.2 - 1e-9),
                 key=lambda r: (r["penalty"], LISTS.index(r["lists"])))
    if chosen["lists"] == "plural":
        attached = next((r for r in rows if r["lists"] == ATTACHED and r["penalty"] == chosen["penalty"]), None)
        if attached is not None and attached["score"] >= chosen["score"] - 0.2 - 1e-9:
            return attached
    return chosen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default=str(ROOT / "build/tuning/new_wiki-val-open.json"))
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--cache", default=str(ROOT / "build/answer_shape_reads.json"),
                   help="the reads, kept between runs ('' for none); delete it when the reader changes")
    args = p.parse_args(argv)
    examples = load(Path(args.set))
    if args.limit:
        examples = examples[: args.limit]
    cut = add_removed_sentence_negatives(examples, 1.0, 0)
    reader = SpanReader()
    t0 = time.time()
    cache = Path(args.cache) if args.cache else None
    reads, negatives = read_all(reader, examples, cache), read_all(reader, cut, cache)
    read_s = time.time() - t0
    rows = [score(reads, negatives, reader.null_threshold, pen, lists)
            for pen in PENALTIES for lists in LISTS + (ATTACHED,)]
    chosen = choose_setting(rows)
    print(json.dumps({"set": args.set, "questions": len(reads), "cut_negatives": len(negatives),
                      "threshold": reader.null_threshold, "read_s": round(read_s, 1), "settings": rows,
                      "chosen": {k: chosen[k] for k in ("penalty", "lists")}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
