"""Small frozen dataclasses that flow through the pipeline.

Offsets are always character offsets into the original report text (``Document.text``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One report: its full text and metadata."""

    id: str
    text: str
    title: str = ""
    date: str | None = None  # ISO date (YYYY-MM-DD) when the report states one
    source: str = ""  # path or origin

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A passage of a report. Invariant: ``doc.text[start:end] == text``."""

    doc_id: str
    index: int  # position of the chunk within its report
    start: int
    end: int
    text: str
    n_tokens: int = 0  # word pieces, as counted by the embedder's tokenizer

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.index}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score (higher is better) and rank (0-based)."""

    chunk: Chunk
    score: float
    rank: int = 0
    dense_score: float | None = None
    sparse_score: float | None = None


@dataclass(frozen=True)
class Span:
    """A candidate answer found by a reader inside one chunk.

    ``start``/``end`` are character offsets in the report (not the chunk).
    """

    chunk: Chunk
    start: int
    end: int
    text: str
    score: float  # reader confidence in [0, 1]
    margin: float | None = None  # the same in logit units, unsaturated (answer vs no-answer), when the reader has it


@dataclass(frozen=True)
class Citation:
    doc_id: str
    title: str
    date: str | None
    source: str
    passage: str
    passage_start: int
    passage_end: int
    answer_start: int | None
    answer_end: int | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str | None  # None means "not found"
    score: float
    citations: tuple[Citation, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    resolved_question: str | None = None  # the question after follow-up resolution, when it changed

    @property
    def found(self) -> bool:
        return self.text is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["citations"] = [c.to_dict() for c in self.citations]
        d["found"] = self.found
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        cits = tuple(Citation(**{k: c[k] for k in Citation.__dataclass_fields__}) for c in d.get("citations", []))
        return cls(
            question=d["question"],
            text=d.get("text"),
            score=float(d.get("score", 0.0)),
            citations=cits,
            timings_ms=dict(d.get("timings_ms", {})),
            resolved_question=d.get("resolved_question"),
        )


def answers_from_dicts(items: Any, source: str) -> list[Answer]:
    """Earlier answers a client sent back (as ``source`` returned them), rebuilt and type-checked; ``BadQuestion``
    for anything else."""
    from qa.errors import BadQuestion

    try:
        answers = [Answer.from_dict(d) for d in items or []]
        for a in answers:
            check_fields(a)
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise BadQuestion(f"history must be a list of earlier answers as {source} returned them ({e})") from e
    return answers


def check_fields(obj: Any, where: str = "") -> None:
    """``TypeError`` unless every field of the dataclass ``obj`` (and of the dataclasses inside it) holds a value of
    its annotated type: for records that come from outside (an HTTP body), before any code relies on them."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        _check_value(getattr(obj, f.name), hints[f.name], f"{where}{f.name}")


def _check_value(v: Any, hint: Any, name: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for a in args:
            try:
                return _check_value(v, a, name)
            except TypeError as e:
                errors.append(e)
        raise errors[0]
    if hint is type(None):
        ok = v is None
    elif origin in (tuple, list, dict):
        ok = isinstance(v, origin)
        if ok:
            for i, x in enumerate(v.values() if origin is dict else v):
                _check_value(x, args[1] if origin is dict else args[0], f"{name}[{i}]")
    elif dataclasses.is_dataclass(hint):
        ok = isinstance(v, hint)
        if ok:
            check_fields(v, f"{name}.")
    else:  # str, int, float (an int is a float; a bool is neither)
        ok = not isinstance(v, bool) and isinstance(v, (int, float) if hint is float else hint)
    if not ok:
        raise TypeError(f"{name} must be {getattr(hint, '__name__', hint)}, not {type(v).__name__}")
