"""Question sets for evaluation: JSONL, CSV and SQuAD JSON loaders, and reproducible sampling.

Formats (``answers: []`` or an empty CSV cell means the reports do not hold the answer):

- JSONL, one question a line: ``{"question", "answers": [...], "id"?, "doc_id"? or "source"?}``;
  or one conversation a line: ``{"id", "turns": [{"question", "answers", ...}, ...]}``; a line holding only
  ``{"provenance": {...}}`` says where the set came from and is skipped.
- CSV with a header row: ``question``, ``answers`` (separated by ``|``), optional ``id``, ``doc_id``/``source``.
- SQuAD v1.1/v2.0 JSON: every paragraph becomes a corpus document with id ``"<title>#<index>"``.
"""
from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]  # () = the reports do not contain the answer
    doc_id: str | None = None  # report (or SQuAD paragraph id) that holds the answer, when known
    context: str | None = None  # the gold paragraph text (SQuAD), when known
    conversation: str | None = None  # conversation id for multi-turn sets
    turn: int = 0


@dataclass(frozen=True)
class QuestionSet:
    name: str
    questions: tuple[Question, ...]
    corpus: tuple[tuple[str, str, str], ...] = ()  # (doc_id, title, text); SQuAD paragraphs


def load_questions(path: str | Path) -> QuestionSet:
    """Load a question set, choosing the format from the suffix (.jsonl, .csv, .json) or the content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no question file at {path}; pass a .jsonl, .csv or SQuAD .json file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        questions = _load_csv(path)
    elif suffix == ".jsonl":
        questions = _load_jsonl(path)
    else:
        text = path.read_text(encoding="utf-8-sig")
        data = _whole_json(text)
        if isinstance(data, dict) and "data" in data:
            return _load_squad(path, data)
        if isinstance(data, list):
            questions = _rows_to_questions(path, ((i + 1, row) for i, row in enumerate(data)), "item")
        elif suffix == ".json":
            raise ValueError(f"{path}: not a SQuAD file (no 'data' list) nor a JSON list of questions")
        else:
            questions = _load_jsonl(path)
    _check_unique(path, questions)
    return QuestionSet(name=path.stem, questions=tuple(questions))


def _whole_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _check_unique(path: Path, questions: list[Question]) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise ValueError(f"{path}: question id {q.id!r} appears twice; give every question its own id")
        seen.add(q.id)
    if not questions:
        raise ValueError(f"{path}: no questions found; add one question per line")


def _answers(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{path}:{where}: 'answers' must be a list of strings (use [] for no answer)")
    return tuple(dict.fromkeys(a for a in value if a.strip()))


def _question_text(path: Path, where: str, row: dict) -> str:
    text = row.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{path}:{where}: missing 'question' (a non-empty string)")
    return text.strip()


def _row_question(path: Path, where: str, row: dict, default_id: str) -> Question:
    if "answers" not in row:
        raise ValueError(f"{path}:{where}: missing 'answers' (a list of strings, [] for no answer)")
    doc_id = row.get("doc_id", row.get("source"))
    return Question(
        id=str(row.get("id") or default_id),
        question=_question_text(path, where, row),
        answers=_answers(path, where, row["answers"]),
        doc_id=str(doc_id) if doc_id not in (None, "") else None,
        context=row.get("context") if isinstance(row.get("context"), str) else None,
    )


def _rows_to_questions(path: Path, rows: Iterable[tuple[int, Any]], unit: str) -> list[Question]:
    questions: list[Question] = []
    for number, row in rows:
        where = f"{unit} {number}" if unit != "line" else str(number)
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{where}: expected a JSON object with 'question' and 'answers'")
        if set(row) == {"provenance"}:  # where the set came from (qa feedback export): not a question
            continue
        if "turns" in row:
            conv = str(row.get("id") or f"q{number}")
            turns = row["turns"]
            if not isinstance(turns, list) or not turns:
                raise ValueError(f"{path}:{where}: 'turns' must be a non-empty list of questions")
            for i, turn in enumerate(turns):
                if not isinstance(turn, dict):
                    raise ValueError(f"{path}:{where}: turn {i} must be an object with 'question' and 'answers'")
                q = _row_question(path, f"{where} (turn {i})", turn, f"{conv}:{i}")
                questions.append(replace(q, id=f"{conv}:{i}", conversation=conv, turn=i))
        else:
            questions.append(_row_question(path, where, row, f"q{number}"))
    return questions


def _load_jsonl(path: Path) -> list[Question]:
    def rows() -> Iterable[tuple[int, Any]]:
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: bad JSON ({e.msg}); write one JSON object per line") from e

    return _rows_to_questions(path, rows(), "line")


def _load_csv(path: Path) -> list[Question]:
    questions: list[Question] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        for needed in ("question", "answers"):
            if needed not in columns:
                raise ValueError(f"{path}:1: missing column {needed!r}; the header needs question,answers[,id,doc_id]")
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path}:{line}: bad row: expected {len(columns)} fields as in the header")
            cell = row["answers"].strip()
            answers = [a.strip() for a in cell.split("|")] if cell else []
            q = _row_question(path, str(line), {**row, "answers": answers}, f"q{line}")
            questions.append(q)
    return questions


def _load_squad(path: Path, data: dict) -> QuestionSet:
    questions: list[Question] = []
    corpus: list[tuple[str, str, str]] = []
    try:
        for article in data["data"]:
            title = article["title"]
            for index, paragraph in enumerate(article["paragraphs"]):
                doc_id, context = f"{title}#{index}", paragraph["context"]
                corpus.append((doc_id, title, context))
                for qa in paragraph["qas"]:
                    texts = [] if qa.get("is_impossible") else [a["text"] for a in qa.get("answers", [])]
                    questions.append(
                        Question(id=qa["id"], question=qa["question"].strip(),
                                 answers=tuple(dict.fromkeys(t for t in texts if t.strip())),
                                 doc_id=doc_id, context=context)
                    )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed SQuAD JSON (missing or wrong field {e}); use the official format") from e
    _check_unique(path, questions)
    log.info("loaded %d questions over %d paragraphs from %s", len(questions), len(corpus), path)
    return QuestionSet(name=path.stem, questions=tuple(questions), corpus=tuple(corpus))


def sample(qs: QuestionSet, limit: int | None, seed: int) -> QuestionSet:
    """A reproducible random sample of about ``limit`` questions, keeping conversations whole.

    Units (a standalone question, or a whole conversation) are shuffled with ``seed`` and taken while
    they fit in ``limit`` questions; at least one unit is always taken. The chosen questions keep
    their original order, and the corpus is kept whole. ``limit=None`` returns ``qs`` unchanged.
    """
    if limit is None:
        return qs
    if limit <= 0:
        raise ValueError(f"sample limit must be a positive number of questions, got {limit}")
    units: dict[str, list[int]] = {}
    for i, q in enumerate(qs.questions):
        key = f"c:{q.conversation}" if q.conversation is not None else f"q:{i}"
        units.setdefault(key, []).append(i)
    if len(qs.questions) <= limit:
        return qs
    order = list(units)
    random.Random(seed).shuffle(order)
    chosen: list[int] = []
    for key in order:
        if len(chosen) + len(units[key]) <= limit or not chosen:
            chosen.extend(units[key])
        if len(chosen) >= limit:
            break
    picked = tuple(qs.questions[i] for i in sorted(chosen))
    return QuestionSet(name=qs.name, questions=picked, corpus=qs.corpus)
