"""Small frozen dataclasses that flow through the pipeline.

Offsets are always character offsets into the original report text (``Document.text``).
"""
from __future__ import annotations

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
