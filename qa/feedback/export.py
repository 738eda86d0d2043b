"""Staff verdicts as evaluation data: ``qa feedback`` listing, weekly and per-type shares, and question sets.

An exported set is one ``qa eval`` reads as is (``qa/eval/questions.py``): JSONL (a first line ``{"provenance": ...}``,
then one question a line) or SQuAD v2.0 JSON (one paragraph per report, the report's whole text, so the set
carries its own corpus). What becomes a question:

- ``wrong`` / ``is_there`` with the right answer: that answer (``doc_id`` = the report of the span; a typed answer
  that is in no report has none, and SQuAD, which needs offsets, leaves it out);
- ``right``: the answer given (a right "not found" is an unanswerable question);
- ``not_in_reports``: an unanswerable question (``report_id`` names the report the wrong answer came from; it is
  not ``doc_id``, which ``qa eval`` would score retrieval against);
- left out and counted: ``wrong`` with no right answer, and stale rows (their report was removed or changed).

The question asked is the resolved one for a follow-up, so every question stands alone. Comments and user names
stay in the database. Each question keeps the chat's answer (``old_answer``) and verdict, which the HTML report of
``qa eval`` shows beside the new answer (:func:`read_flagged`).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from qa.feedback.store import VERDICTS, Feedback, now_utc
from qa.reading.answer_types import QUESTION_TYPES, question_type
from qa.types import Document

SOURCE = "qa feedback export"
FORMATS = ("jsonl", "squad")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def plain(text: str | None) -> str:
    """``text`` safe for a terminal: control characters (escape sequences included) become spaces."""
    return _CONTROL.sub(" ", text or "")


def iso_week(timestamp: str) -> str:
    """'2026-11-29T10:00:00Z' -> '2026-W48'."""
    year, week, _ = dt.date.fromisoformat(timestamp[:10]).isocalendar()
    return f"{year}-W{week:02d}"


def _shares(rows: Sequence[Feedback]) -> dict:
    counts = Counter(r.verdict for r in rows)
    return {"n": len(rows), **{v: round(100.0 * counts[v] / len(rows), 1) if rows else None for v in VERDICTS}}


def stats(rows: Sequence[Feedback]) -> dict:
    """Share (percent) of each verdict, overall, by ISO week of the verdict and by question type (qa.eval.metrics)."""
    weeks: dict[str, list[Feedback]] = {}
    types: dict[str, list[Feedback]] = {}
    for r in rows:
        weeks.setdefault(iso_week(r.verdict_at or r.asked_at), []).append(r)
        types.setdefault(question_type(r.asked), []).append(r)
    order = [t for t in QUESTION_TYPES if t in types] + sorted(set(types) - set(QUESTION_TYPES))
    return {"all": _shares(rows), "stale": sum(r.stale for r in rows),
            "by_week": {w: _shares(weeks[w]) for w in sorted(weeks)},
            "by_type": {t: _shares(types[t]) for t in order}}


def format_stats(s: dict) -> str:
    head = f"{'':<12} {'n':>5} " + " ".join(f"{v:>15}" for v in VERDICTS)

    def line(name: str, d: dict) -> str:
        return f"{name:<12} {d['n']:>5} " + " ".join(f"{'-' if d[v] is None else f'{d[v]:.1f}%':>15}"
                                                     for v in VERDICTS)

    out = [head, line("all", s["all"]), "", "by week"]
    out += [line(w, d) for w, d in s["by_week"].items()]
    out += ["", "by question type"] + [line(t, d) for t, d in s["by_type"].items()]
    if s["stale"]:
        out += ["", f"{s['stale']} verdicts concern reports removed or changed since (stale)"]
    return "\n".join(out)


def format_row(r: Feedback) -> str:
    """One verdict as a line of text (for ``qa feedback list``)."""
    parts = [(r.verdict_at or "")[:16].replace("T", " "), f"{r.verdict:<14}", r.answer_id[:12]]
    if r.stale:
        parts.append("[stale]")
    parts.append(f"Q: {plain(r.asked)}")
    parts.append(f"A: {plain(r.answer) if r.answer is not None else '(not found)'}")
    c = r.correction
    if c is not None:
        where = f" ({plain(c.doc_id)} {c.start}-{c.end}, {c.source})" if c.doc_id else " (typed)"
        parts.append(f"right answer: {plain(c.text)}{where}")
    elif r.doc_id:
        parts.append(f"report: {plain(r.doc_id)}")
    if r.comment:
        parts.append(f"comment: {plain(r.comment)}")
    if r.verdict_user:
        parts.append(f"by {plain(r.verdict_user)}")
    return "  ".join(parts)


def _question(r: Feedback) -> dict | None:
    """The question a verdict makes, or None when it makes none."""
    base = {"id": f"fb-{r.answer_id[:16]}", "question": r.asked, "answer_id": r.answer_id, "verdict": r.verdict,
            "old_answer": r.answer, "index_generation": r.index_generation, "reader_version": r.reader_version,
            "asked_at": r.asked_at}
    c = r.correction
    if r.verdict in ("wrong", "is_there"):
        if c is None or not c.text:
            return None
        return {**base, "answers": [c.text], "doc_id": c.doc_id, "start": c.start, "end": c.end}
    if r.verdict == "right" and r.answer is not None:
        cit = r.citations[0] if r.citations else {}
        return {**base, "answers": [r.answer], "doc_id": r.doc_id, "start": cit.get("answer_start"),
                "end": cit.get("answer_end")}
    return {**base, "answers": [], "report_id": r.doc_id}  # not_in_reports, or a right "not found"


def feedback_questions(rows: Sequence[Feedback]) -> tuple[list[dict], Counter]:
    """The questions of ``rows`` (stale rows and wrong answers without a right one left out) and what was left out."""
    out, skipped = [], Counter()
    for r in rows:
        if r.stale:
            skipped["stale"] += 1
            continue
        q = _question(r)
        if q is None:
            skipped["no_right_answer"] += 1
        else:
            out.append(q)
    return out, skipped


def provenance(rows: Sequence[Feedback], questions: Sequence[dict], skipped: Counter, database: str,
               filters: Mapping[str, object]) -> dict:
    return {"source": SOURCE, "exported_at": now_utc(), "database": database,
            "index_generations": sorted({r.index_generation for r in rows if r.index_generation}),
            "reader_versions": sorted({r.reader_version for r in rows if r.reader_version}),
            "verdicts": len(rows), "by_verdict": dict(Counter(r.verdict for r in rows)),
            "questions": len(questions), "answerable": sum(bool(q["answers"]) for q in questions),
            "unanswerable": sum(not q["answers"] for q in questions), "left_out": dict(skipped),
            "filters": {k: v for k, v in filters.items() if v is not None}}


def to_jsonl(questions: Sequence[dict], prov: dict) -> str:
    lines = [json.dumps({"provenance": prov}, ensure_ascii=False)]
    lines += [json.dumps({k: v for k, v in q.items() if v is not None or k == "old_answer"}, ensure_ascii=False)
              for q in questions]
    return "\n".join(lines) + "\n"


def to_squad(questions: Sequence[dict], prov: dict, documents: Mapping[str, Document]) -> tuple[dict, int]:
    """SQuAD v2.0 JSON, one paragraph per report (its whole text); and how many questions had no report to go in."""
    paragraphs: dict[str, list[dict]] = {}
    left_out = 0
    for q in questions:
        doc_id = q.get("doc_id") if q["answers"] else q.get("report_id")
        doc = documents.get(doc_id) if doc_id else None
        if doc is None or (q["answers"] and q.get("start") is None):
            left_out += 1
            continue
        extra = {k: q[k] for k in ("verdict", "old_answer", "answer_id", "index_generation", "reader_version")}
        answers = [{"text": q["answers"][0], "answer_start": q["start"]}] if q["answers"] else []
        paragraphs.setdefault(doc_id, []).append({"id": q["id"], "question": q["question"], "answers": answers,
                                                  "is_impossible": not answers, **extra})
    data = [{"title": d, "paragraphs": [{"context": documents[d].text, "qas": qas}]} for d, qas in paragraphs.items()]
    qas = [qa for p in data for qa in p["paragraphs"][0]["qas"]]
    prov = {**prov, "questions": len(qas), "answerable": sum(bool(qa["answers"]) for qa in qas),
            "unanswerable": sum(not qa["answers"] for qa in qas),
            "left_out": {**prov["left_out"], **({"no_report_span": left_out} if left_out else {})}}
    return {"version": "v2.0", "provenance": prov, "data": data}, left_out


def read_flagged(path: str | Path) -> dict[str, dict]:
    """{question id: {"verdict", "old_answer"}} of a set written by ``qa feedback export``; {} for any other set."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "data" in whole:
        if (whole.get("provenance") or {}).get("source") != SOURCE:
            return {}
        return {qa["id"]: {"verdict": qa.get("verdict"), "old_answer": qa.get("old_answer")}
                for art in whole["data"] for p in art["paragraphs"] for qa in p["qas"]}
    if whole is None:  # JSONL (an export's first line is its provenance), or CSV and anything else: not an export
        first = next((line for line in text.splitlines() if line.strip()), "")
        try:
            head = json.loads(first)
        except json.JSONDecodeError:
            return {}
        if not isinstance(head, dict):
            return {}
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        lines = [whole]
    if not lines or not isinstance(lines[0], dict) or (lines[0].get("provenance") or {}).get("source") != SOURCE:
        return {}
    return {q["id"]: {"verdict": q.get("verdict"), "old_answer": q.get("old_answer")} for q in lines[1:]}
