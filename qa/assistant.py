"""Assistant: ask(question, history=None) -> Answer, with citations, follow-ups and an honest "not found"."""
from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from qa.models.encoder import Encoder
from qa.errors import BadFilter, BadQuestion, BadSetting, ModelNotFound
from qa.followup import resolve_followup
from qa.store.indexer import Indexer, manifest_expectations
from qa.eval.metrics import normalize_answer
from qa.reading.reader import Reader, SpanReader
from qa.retrieve import Retriever
from qa.reading.rules_reader import RulesReader
from qa.settings import Settings, check_k
from qa.store.index import IndexStore, current_generation
from qa.types import Answer, Chunk, Citation, Document, Hit, Span

log = logging.getLogger(__name__)


def check_question(question: object, max_chars: int) -> str:
    """The question, stripped; BadQuestion when it is not a usable question."""
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    # lone surrogates (a mis-decoded terminal argument) are not text: replace them before anything tokenises
    q = question.encode("utf-8", "replace").decode("utf-8")
    q = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", q).strip()
    if not q:
        raise BadQuestion("the question is empty; type a question about the reports")
    if len(q) > max_chars:
        raise BadQuestion(f"the question is {len(q):,} characters long; the limit is {max_chars:,}. Ask it in fewer words")
    if not re.search(r"\w", q):
        raise BadQuestion("the question has no words; type a question about the reports")
    return q


def make_reader(settings: Settings) -> Reader:
    if settings.reader == "rules":
        return RulesReader()
    return SpanReader(device=settings.device, precision=settings.precision, max_answer_tokens=settings.max_answer_tokens)


class Assistant:
    """Answers questions from one index. Thread-safe for concurrent ``ask`` calls."""

    def __init__(self, store: IndexStore, encoder: Encoder, reader: Reader, settings: Settings) -> None:
        self.settings = settings
        self.encoder = encoder
        self.reader = reader
        self._store = store
        self._retriever = Retriever(store, encoder, settings)
        self._reload_lock = threading.Lock()

    # --- construction ---
    @classmethod
    def open(cls, index_dir: str | os.PathLike = "index", *, settings: Settings | None = None,
             reader: Reader | None = None) -> "Assistant":
        """Open the index at ``index_dir`` (models load lazily, on the first question)."""
        settings = (settings or Settings.from_env()).with_(index_dir=str(index_dir))
        encoder = Encoder(device=settings.device, precision=settings.precision)
        store = IndexStore.open(index_dir, expect=manifest_expectations(encoder, settings))
        return cls(store, encoder, reader or make_reader(settings), settings)

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike], *, index_dir: str | os.PathLike = "index",
                   settings: Settings | None = None, reader: Reader | None = None) -> "Assistant":
        """Index ``paths`` into ``index_dir`` (incrementally) and open it."""
        settings = (settings or Settings.from_env()).with_(index_dir=str(index_dir))
        encoder = Encoder(device=settings.device, precision=settings.precision)
        Indexer(settings, encoder).sync(paths)
        store = IndexStore.open(index_dir, expect=manifest_expectations(encoder, settings))
        return cls(store, encoder, reader or make_reader(settings), settings)

    @property
    def threshold(self) -> float:
        """The confidence below which an answer from the collection is "not found" (the setting, else the reader's
        calibrated one for questions asked of a collection)."""
        return not_found_threshold(self.settings, self.reader)

    @property
    def store(self) -> IndexStore:
        return self._store

    def warm_up(self, every_shape: bool = False) -> None:
        """Load the models now rather than on the first question; with ``every_shape`` (servers) also run the reader
        once on every input shape it uses, so that its memory is all taken at start-up (qa/models/shapes.py)."""
        self.encoder.warm_up()
        if hasattr(self.reader, "warm_up"):
            self.reader.warm_up()
        if every_shape and hasattr(self.reader, "warm_up_shapes"):
            self.reader.warm_up_shapes()

    def batch_concurrent(self, wait_ms: float = 5.0) -> None:
        """Let concurrent ``ask`` calls share the models' forward passes (``qa/serving/batching.py``), for servers: each
        answer stays the one ``ask`` gives alone. A reader that cannot batch (the rules reader) is left as it is."""
        from qa.serving.batching import BatchedEncoder, BatchedReader, can_batch

        if can_batch(self.reader) and not isinstance(self.reader, BatchedReader):
            self.reader = BatchedReader(self.reader, wait_ms=wait_ms)
        if not isinstance(self.encoder, BatchedEncoder):
            self.encoder = BatchedEncoder(self.encoder, wait_ms=wait_ms)
            with self._reload_lock:
                self._retriever = Retriever(self._store, self.encoder, self.settings)

    def reload_if_changed(self) -> bool:
        """Switch to a newer generation of the index written by another process; True when it did."""
        with self._reload_lock:
            if current_generation(Path(self.settings.index_dir)) == self._store.generation:
                return False
            store = IndexStore.open(self.settings.index_dir, expect=manifest_expectations(self.encoder, self.settings))
            self._store, self._retriever = store, Retriever(store, self.encoder, self.settings)
            return True

    def indexer(self) -> Indexer:
        return Indexer(self.settings, self.encoder)

    # --- asking ---
    def retrieve(self, question: str, k: int = 10, *, doc_ids: Collection[str] | None = None) -> list[Hit]:
        q = check_question(question, self.settings.max_question_chars)
        return self._retriever.search(q, k, doc_ids=doc_ids)

    def ask(self, question: str, history: Sequence[Answer] | None = None, k: int | None = None, *,
            doc_ids: Collection[str] | None = None, date_from: str | None = None, date_to: str | None = None,
            threshold: float | None = None) -> Answer:
        """Answer ``question`` from the index; ``history`` holds this conversation's earlier Answers.

        ``doc_ids`` limits the search to those reports; ``date_from``/``date_to`` (inclusive; YYYY-MM-DD, or YYYY or
        YYYY-MM for the whole period) to reports dated in that range (undated reports fall outside every range).
        """
        t_start = time.perf_counter()
        q = check_question(question, self.settings.max_question_chars)
        k = check_k(k or self.settings.k)
        threshold = self.threshold if threshold is None else threshold
        if not 0.0 <= threshold <= 1.0:
            raise BadSetting("threshold must be between 0 and 1")
        store, retriever = self._store, self._retriever
        resolved = resolve_followup(q, history or ())
        read_q, search_q = resolved.reader_question, resolved.search_query
        scope = self._scope(store, doc_ids, check_date(date_from, False), check_date(date_to, True))
        timings: dict[str, float] = {}
        hits = retriever.search(search_q, k, doc_ids=scope, timings=timings)
        t0 = time.perf_counter()
        spans = self.reader.read(read_q, [h.chunk for h in hits]) if hits else []
        timings["reading"] = (time.perf_counter() - t0) * 1e3
        answer = _compose_answer(q, hits, spans, store.documents, self.settings.retrieval_weight, threshold)
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        return Answer(answer.question, answer.text, answer.score, answer.citations, timings,
                      read_q if read_q != q else None)

    def read(self, question: str, context: str) -> Answer:
        """The reader alone on one passage (for gold-context evaluation)."""
        return GoldContextReader(self.reader, self.settings).read(question, context)

    def _scope(self, store: IndexStore, doc_ids, date_from, date_to) -> set[str] | None:
        if doc_ids is None and not date_from and not date_to:
            return None
        ids = set(doc_ids) if doc_ids is not None else set(store.documents)
        if date_from or date_to:
            ids = {i for i in ids if store.documents.get(i) and store.documents[i].date
                   and (not date_from or store.documents[i].date >= date_from)
                   and (not date_to or store.documents[i].date <= date_to)}
        return ids


def check_date(value: str | None, end: bool) -> str | None:
    """'' -> None; YYYY, YYYY-MM or YYYY-MM-DD -> a full date (the first or last day of the period)."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise BadFilter(f"'{value}' is not a date; write YYYY-MM-DD (or YYYY, YYYY-MM)")
    return value + ("-12-31" if end else "-01-01")[len(value) - 4:]


def not_found_threshold(settings: Settings, reader: Reader, *, collection: bool = True) -> float:
    """The confidence below which an answer is "not found": ``settings.not_found_threshold``, else the reader's
    calibrated one: its ``ask_threshold`` for a question asked of a collection (``collection``), when it has one
    (training/calibrate_open.py), else its ``default_threshold`` (0.5 for a reader without one)."""
    if settings.not_found_threshold is not None:
        return settings.not_found_threshold
    if collection and getattr(reader, "ask_threshold", None) is not None:
        return float(reader.ask_threshold)
    return float(getattr(reader, "default_threshold", 0.5))


class GoldContextReader:
    """The reader alone, on a given passage: ``read(question, context) -> Answer`` (no index needed)."""

    def __init__(self, reader: Reader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.threshold = not_found_threshold(settings, reader, collection=False)

    def read(self, question: str, context: str) -> Answer:
        q = check_question(question, self.settings.max_question_chars)
        doc = Document("context", context, "context")
        chunk = Chunk(doc.id, 0, 0, len(context), context)
        t0 = time.perf_counter()
        spans = self.reader.read(q, [chunk])
        ans = _compose_answer(q, [Hit(chunk, 1.0)], spans, {doc.id: doc}, self.settings.retrieval_weight,
                              self.threshold)
        return Answer(q, ans.text, ans.score, ans.citations, {"reading": (time.perf_counter() - t0) * 1e3})


RETRIEVAL_LOGITS = 10.0  # the most a passage's retrieval score adds to a span's margin (at retrieval_weight 1)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def _compose_answer(question: str, hits: Sequence[Hit], spans: Sequence[Span], documents: dict[str, Document],
                    retrieval_weight: float, threshold: float) -> Answer:
    """Rank spans, merge equal answers, cite every support.

    A span's rank is its answer/no-answer margin (the logit of its confidence) plus up to
    ``RETRIEVAL_LOGITS x retrieval_weight`` for its passage's retrieval score relative to the best passage's. Ranking by
    margins, not by confidences, keeps passages apart when several readings are all near-certain
    (``benchmarks/answer_ranking.py``, SQuAD open corpus: see docs/accuracy.md). Only spans at or above
    ``threshold`` can be the answer, so a retrieval bonus never turns a confident answer into "not found". The rules
    reader's scores are not probabilities; their logit is only an order-keeping scale, with the same bonus.
    """
    position = {(h.chunk.doc_id, h.chunk.index): r for r, h in enumerate(hits)}

    def retrieved_at(sp: Span) -> int:  # a span of a passage that was not retrieved comes last
        return position.get((sp.chunk.doc_id, sp.chunk.index), len(hits))

    top = max((h.score for h in hits), default=0.0)
    bonus = RETRIEVAL_LOGITS * retrieval_weight
    groups: dict[str, list[tuple[float, Span]]] = {}
    # in retrieval order, so that equal ranks go to the better-retrieved passage
    for sp in sorted(spans, key=retrieved_at):
        r = retrieved_at(sp)
        ret = hits[r].score / top if (r < len(hits) and top > 0) else 0.0
        rank = (sp.margin if sp.margin is not None else _logit(sp.score)) + bonus * ret
        key = normalize_answer(sp.text) or sp.text
        groups.setdefault(key, []).append((rank, sp))
    def best_rank(group: list[tuple[float, Span]]) -> float:
        return max((r for r, sp in group if sp.score >= threshold), default=-math.inf)

    answerable = [g for g in groups if best_rank(groups[g]) > -math.inf]
    if answerable:
        key = max(answerable, key=lambda g: best_rank(groups[g]))  # max keeps the first of equals
        members = sorted(groups[key], key=lambda rs: -rs[0])
        best = next(sp for _, sp in members if sp.score >= threshold)
        cits = _citations([best] + [sp for _, sp in members if sp is not best], documents)
        return Answer(question, best.text, round(best.score, 4), cits)
    confidence = max((sp.score for sp in spans), default=0.0)
    closest = [Citation(h.chunk.doc_id, documents[h.chunk.doc_id].title, documents[h.chunk.doc_id].date,
                        documents[h.chunk.doc_id].source, h.chunk.text, h.chunk.start, h.chunk.end, None, None,
                        round(h.score, 4)) for h in hits]
    return Answer(question, None, round(confidence, 4), tuple(closest))


def _citations(spans: Sequence[Span], documents: dict[str, Document]) -> tuple[Citation, ...]:
    """One citation per supporting passage; overlapping chunks with the same answer position count once."""
    out: list[Citation] = []
    seen: set[tuple[str, int, int]] = set()
    for sp in spans:
        key = (sp.chunk.doc_id, sp.start, sp.end)
        if key in seen:
            continue
        seen.add(key)
        d = documents[sp.chunk.doc_id]
        out.append(Citation(d.id, d.title, d.date, d.source, sp.chunk.text, sp.chunk.start, sp.chunk.end,
                            sp.start, sp.end, round(sp.score, 4)))
    return tuple(out)


__all__ = ["Assistant", "BadQuestion", "GoldContextReader", "ModelNotFound", "check_question", "make_reader"]
