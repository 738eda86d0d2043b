"""Run a question set against an assistant and compute every figure we report.

``evaluate`` asks each question (conversations in turn order, with the earlier answers as history),
times it, measures where retrieval ranks the gold report, and scores the answer with the official
SQuAD metric. ``summarize`` turns the records into one dict; ``compare`` diffs two runs.
Files of a run: ``predictions.json`` (official ``{id: answer}``) and ``records.csv``.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from qa.eval.metrics import exact_score, f1_score, has_answer, normalize_answer
from qa.reading.answer_types import QUESTION_TYPES, question_type
from qa.eval.metrics import score_predictions
from qa.eval.questions import Question, QuestionSet
from qa.types import Answer, Hit

log = logging.getLogger(__name__)

PREDICTIONS_JSON = "predictions.json"
RECORDS_CSV = "records.csv"
RETRIEVAL_DEPTH = 10


@runtime_checkable
class AssistantLike(Protocol):
    def ask(self, question: str, history: list[Answer] | None = None, k: int | None = None) -> Answer: ...

    def retrieve(self, question: str, k: int) -> list[Hit]: ...


@runtime_checkable
class ReaderLike(Protocol):
    def read(self, question: str, context: str) -> Answer: ...


@dataclass(frozen=True)
class Record:
    """One evaluated question. ``exact``/``f1`` are 0..1; ``gold_rank`` is 1-based, None when the
    gold report was not in the top 10 or not measured; ``doc_id`` is the gold report whose rank was
    measured (None when the question names none, or in gold-context mode)."""

    id: str
    question: str
    golds: tuple[str, ...]
    prediction: str
    exact: float
    f1: float
    confidence: float
    gold_rank: int | None
    latency_ms: float
    qtype: str
    cited_support: bool | None
    doc_id: str | None = None


def _ordered(questions: Sequence[Question]) -> list[Question]:
    """Questions in file order, except that each conversation's turns run in turn order."""
    first: dict[str, int] = {}
    for i, q in enumerate(questions):
        if q.conversation is not None:
            first.setdefault(q.conversation, i)
    keyed = [((first[q.conversation], q.turn) if q.conversation is not None else (i, 0), q)
             for i, q in enumerate(questions)]
    return [q for _, q in sorted(keyed, key=lambda kq: kq[0])]


def _gold_rank(hits: Sequence[Hit], doc_id: str) -> int | None:
    for position, hit in enumerate(hits, start=1):
        if hit.chunk.doc_id == doc_id:
            return position
    return None


def _cited_support(answer: Answer, golds: Sequence[str]) -> bool | None:
    if not answer.found or not has_answer(golds):
        return None
    wanted = [f" {normalize_answer(g)} " for g in golds if normalize_answer(g)]
    passages = [f" {normalize_answer(c.passage)} " for c in answer.citations]
    return any(g in p for g in wanted for p in passages)


def evaluate(
    qs: QuestionSet, assistant: object, *, k: int = 10, gold_context: bool = False, progress: bool = True
) -> list[Record]:
    """Ask every question of ``qs`` and score it. ``gold_context`` reads each question's own
    context with ``assistant.read`` (reader-only evaluation) instead of ``ask`` + ``retrieve``."""
    if gold_context and not isinstance(assistant, ReaderLike):
        raise TypeError("gold-context evaluation needs an object with read(question, context) -> Answer")
    if not gold_context and not isinstance(assistant, AssistantLike):
        raise TypeError("evaluation needs an object with ask(question, history, k) and retrieve(question, k)")
    questions = _ordered(qs.questions)
    if gold_context:
        lacking = [q.id for q in questions if q.context is None]
        if lacking:
            raise ValueError(f"{len(lacking)} questions (e.g. {lacking[0]!r}) have no gold context; "
                             "gold-context mode needs a SQuAD-style set")
    from tqdm.auto import tqdm  # lazy: only needed for a run

    history: dict[str, list[Answer]] = {}
    records: list[Record] = []
    for q in tqdm(questions, desc=f"evaluating {qs.name}", unit="q", disable=not progress):
        start = time.perf_counter()
        if gold_context:
            answer = assistant.read(q.question, q.context)  # type: ignore[attr-defined]
        else:
            earlier = history.get(q.conversation, []) if q.conversation is not None else []
            answer = assistant.ask(q.question, history=list(earlier) or None, k=k)  # type: ignore[attr-defined]
        latency_ms = (time.perf_counter() - start) * 1000.0
        if q.conversation is not None:
            history.setdefault(q.conversation, []).append(answer)
        rank, doc_id = None, None
        if not gold_context and q.doc_id is not None:
            doc_id = q.doc_id
            hits = assistant.retrieve(answer.resolved_question or q.question, RETRIEVAL_DEPTH)  # type: ignore
            rank = _gold_rank(hits, q.doc_id)
        prediction = answer.text or ""
        records.append(Record(
            id=q.id, question=q.question, golds=q.answers, prediction=prediction,
            exact=exact_score(prediction, q.answers), f1=f1_score(prediction, q.answers),
            confidence=float(answer.score), gold_rank=rank, latency_ms=latency_ms,
            qtype=question_type(q.question), cited_support=_cited_support(answer, q.answers), doc_id=doc_id,
        ))
    return records


def _pct(values: Sequence[float]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def summarize(records: Sequence[Record]) -> dict:
    """All figures of a run: percentages like the official script (MRR as a fraction 0..1), latency in ms."""
    if not records:
        raise ValueError("no records to summarize; evaluate at least one question")
    keys = [str(i) for i in range(len(records))]
    gold = {key: list(r.golds) for key, r in zip(keys, records)}
    preds = {key: r.prediction for key, r in zip(keys, records)}
    na_probs = {key: min(1.0, max(0.0, 1.0 - r.confidence)) for key, r in zip(keys, records)}
    official = score_predictions(gold, preds, na_probs)
    has = [r for r in records if has_answer(r.golds)]
    no = [r for r in records if not has_answer(r.golds)]
    ranked = [r for r in records if r.doc_id is not None]
    supported = [float(r.cited_support) for r in records if r.cited_support is not None]
    latencies = np.array([r.latency_ms for r in records], dtype=float)
    by_type = {}
    for qtype in list(QUESTION_TYPES) + sorted({r.qtype for r in records} - set(QUESTION_TYPES)):
        group = [r for r in records if r.qtype == qtype]
        if group:
            by_type[qtype] = {"n": len(group), "exact_match": _pct([r.exact for r in group]),
                              "f1": _pct([r.f1 for r in group])}

    def recall(at: int) -> float | None:
        return _pct([float(r.gold_rank is not None and r.gold_rank <= at) for r in ranked])

    return {
        "n": len(records),
        "exact_match": official["exact"],
        "f1": official["f1"],
        "has_answer": {"n": len(has), "exact_match": _pct([r.exact for r in has]), "f1": _pct([r.f1 for r in has])},
        "no_answer": {"n": len(no), "accuracy": _pct([r.exact for r in no])},
        "retrieval": {"recall@1": recall(1), "recall@5": recall(5), "recall@10": recall(10),
                      "mrr": (float(np.mean([1.0 / r.gold_rank if r.gold_rank else 0.0 for r in ranked]))
                              if ranked else None)},
        "citation_support": _pct(supported),
        "latency_ms": {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
                       "max": float(latencies.max())},
        "best_f1_thresh": {"f1": official["best_f1"], "thresh": official["best_f1_thresh"]},
        "by_type": by_type,
    }


def write_predictions(records: Sequence[Record], path: str | Path) -> None:
    """Write the official SQuAD predictions file: ``{question id: answer text}``."""
    Path(path).write_text(json.dumps({r.id: r.prediction for r in records}, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")


_CSV_COLUMNS = ["id", "question", "gold", "prediction", "EM", "F1", "confidence", "gold_rank", "latency_ms",
                "qtype", "cited_support", "doc_id"]


def write_csv(records: Sequence[Record], path: str | Path) -> None:
    """One row per question; ``gold`` is a JSON list of the gold answers ([] = unanswerable)."""
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_COLUMNS)
        for r in records:
            writer.writerow([r.id, r.question, json.dumps(list(r.golds), ensure_ascii=False), r.prediction,
                             repr(r.exact), repr(r.f1), repr(r.confidence), "" if r.gold_rank is None else r.gold_rank,
                             repr(r.latency_ms), r.qtype, "" if r.cited_support is None else int(r.cited_support),
                             r.doc_id or ""])


def load_records(run_dir: str | Path) -> list[Record]:
    """Read the records of a run back from ``records.csv`` (give the run folder or the file)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RECORDS_CSV
    if not path.is_file():
        raise FileNotFoundError(f"no {RECORDS_CSV} at {path}; point at the folder of an evaluation run")
    records = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(_CSV_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; was it written by write_csv?")
        for row in reader:
            try:
                records.append(Record(
                    id=row["id"], question=row["question"], golds=tuple(json.loads(row["gold"])),
                    prediction=row["prediction"], exact=float(row["EM"]), f1=float(row["F1"]),
                    confidence=float(row["confidence"]), gold_rank=int(row["gold_rank"]) if row["gold_rank"] else None,
                    latency_ms=float(row["latency_ms"]), qtype=row["qtype"],
                    cited_support=bool(int(row["cited_support"])) if row["cited_support"] else None,
                    doc_id=row["doc_id"] or None,
                ))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}:{reader.line_num}: bad row ({e}); was it written by write_csv?") from e
    return records


def _flat(summary: dict) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in summary.items():
        if key == "by_type":
            continue
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def compare(records_a: Sequence[Record], records_b: Sequence[Record]) -> dict:
    """Metric deltas (b - a) and the question ids whose F1 got better or worse, largest change first."""
    sum_a, sum_b = summarize(records_a), summarize(records_b)
    flat_a, flat_b = _flat(sum_a), _flat(sum_b)
    delta = {k: (flat_b[k] - flat_a[k] if flat_a[k] is not None and flat_b.get(k) is not None else None)
             for k in flat_a}
    f1_a = {r.id: r.f1 for r in records_a}
    f1_b = {r.id: r.f1 for r in records_b}
    common = [i for i in f1_a if i in f1_b]
    changes = sorted(((f1_b[i] - f1_a[i], i) for i in common), key=lambda c: -abs(c[0]))
    return {"a": sum_a, "b": sum_b, "delta": delta, "n_common": len(common),
            "better": [i for d, i in changes if d > 1e-9], "worse": [i for d, i in changes if d < -1e-9],
            "only_a": [i for i in f1_a if i not in f1_b], "only_b": [i for i in f1_b if i not in f1_a]}


def _fmt(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def format_table(summary: dict) -> str:
    """The summary as aligned ``metric  value`` lines, then one line per question type."""
    rows = [(k, _fmt(v)) for k, v in _flat(summary).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v:>9}" for k, v in rows]
    if summary.get("by_type"):
        lines.append("")
        lines.append(f"{'type'.ljust(width)}  {'n':>9}  {'EM':>7}  {'F1':>7}")
        for qtype, s in summary["by_type"].items():
            lines.append(f"{qtype.ljust(width)}  {s['n']:>9}  {_fmt(s['exact_match']):>7}  {_fmt(s['f1']):>7}")
    return "\n".join(lines)


def format_compare(cmp: dict) -> str:
    """Both runs side by side with the delta, then how many questions got better or worse."""
    flat_a, flat_b = _flat(cmp["a"]), _flat(cmp["b"])
    width = max(len(k) for k in flat_a)
    lines = [f"{'metric'.ljust(width)}  {'A':>9}  {'B':>9}  {'B-A':>9}"]
    for key in flat_a:
        delta = cmp["delta"].get(key)
        sign = "+" if delta is not None and delta > 0 else ""
        lines.append(f"{key.ljust(width)}  {_fmt(flat_a[key]):>9}  {_fmt(flat_b.get(key)):>9}  "
                     f"{sign + _fmt(delta):>9}")
    lines.append("")
    lines.append(f"{cmp['n_common']} questions in both runs: {len(cmp['better'])} better, "
                 f"{len(cmp['worse'])} worse by F1")
    for label in ("better", "worse"):
        if cmp[label]:
            shown = ", ".join(cmp[label][:10]) + (" ..." if len(cmp[label]) > 10 else "")
            lines.append(f"  {label}: {shown}")
    return "\n".join(lines)
