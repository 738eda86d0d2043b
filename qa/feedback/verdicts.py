"""A verdict on an answer, checked against the index that answered it: the right answer as a report span (its text
taken from the report) or typed text; ``record`` and ``give_verdict`` are what the chat and the API call."""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from pathlib import Path

from qa.errors import BadFeedback
from qa.feedback.store import CORRECTABLE, MAX_ANSWER_CHARS, Correction, Feedback, FeedbackStore, check_verdict
from qa.store.index import IndexStore
from qa.types import Answer, Document


def reader_version(reader: object) -> str:
    """The reader that produced an answer: its name, and for a trained one its folder and a hash of its files."""
    name = str(getattr(reader, "name", type(reader).__name__))
    folder = getattr(reader, "model_path", None)
    if folder is None:
        return name
    h = hashlib.sha256()
    for f in ("config.json", "reader_config.json", "training_summary.json"):
        with contextlib.suppress(OSError):
            h.update((Path(folder) / f).read_bytes())
    return f"{name}:{Path(folder).name}:{h.hexdigest()[:12]}"


def make_correction(row: Feedback, documents: Mapping[str, Document], hashes: Mapping[str, str], *,
                    doc_id: str | None = None, start: int | None = None, end: int | None = None,
                    text: str | None = None) -> Correction | None:
    """The right answer, checked against the current index.

    A span (``doc_id``, ``start``, ``end``) must lie in that report; its text is taken from the report, trimmed of
    surrounding spaces (the offsets follow), and must match ``text`` when both are given. Typed ``text`` alone is
    looked for in the answer's cited passages, then in its cited reports: found, it gets offsets ("located");
    otherwise it is kept as typed. None when neither is given.
    """
    typed = (text or "").strip()
    if len(typed) > MAX_ANSWER_CHARS:
        raise BadFeedback(f"the answer is {len(typed):,} characters long; the limit is {MAX_ANSWER_CHARS:,}")
    if doc_id or start is not None or end is not None:
        if not doc_id or start is None or end is None:
            raise BadFeedback("a span needs doc_id, start and end together")
        doc = documents.get(doc_id)
        if doc is None:
            raise BadFeedback(f"no report {doc_id!r} in the index; see the Reports tab or `qa docs`")
        try:
            start, end = int(start), int(end)
        except (TypeError, ValueError):
            raise BadFeedback("start and end must be whole numbers (character offsets into the report)") from None
        if not 0 <= start < end <= len(doc.text):
            raise BadFeedback(f"offsets {start}-{end} are outside report {doc_id!r} (0-{len(doc.text)})")
        span = doc.text[start:end]
        start += len(span) - len(span.lstrip())
        end -= len(span) - len(span.rstrip())
        if start >= end:
            raise BadFeedback("the selected span is only spaces; select the words of the answer")
        if typed and " ".join(typed.split()) != " ".join(doc.text[start:end].split()):
            raise BadFeedback(f"the text {typed!r} is not what report {doc_id!r} holds at {start}-{end}")
        return Correction(doc.text[start:end], doc_id, start, end, "selected", hashes.get(doc_id))
    if not typed:
        return None
    cited = [c for c in row.citations if c.get("doc_id") in documents]
    for c in cited:  # the passages the person saw first, then the whole reports
        text_ = documents[c["doc_id"]].text
        at = text_.find(typed, c["passage_start"], c["passage_end"])
        if at >= 0:
            return Correction(typed, c["doc_id"], at, at + len(typed), "located", hashes.get(c["doc_id"]))
    for d in dict.fromkeys(c["doc_id"] for c in cited):
        at = documents[d].text.find(typed)
        if at >= 0:
            return Correction(typed, d, at, at + len(typed), "located", hashes.get(d))
    return Correction(typed)


def record(store: FeedbackStore, answer: Answer, index: IndexStore, reader: object, *,
           conversation_id: str | None = None, user: str | None = None) -> str:
    """Keep an answer the chat gave over ``index`` with ``reader``; its answer_id."""
    return store.record_answer(answer, index_generation=index.generation.name, reader_version=reader_version(reader),
                               conversation_id=conversation_id, user=user,
                               doc_hashes=index.manifest.get("document_hashes", {}))


def give_verdict(store: FeedbackStore, answer_id: str, verdict: str, index: IndexStore, *,
                 doc_id: str | None = None, start: int | None = None, end: int | None = None,
                 text: str | None = None, comment: str | None = None, user: str | None = None) -> Feedback:
    """Check a verdict (and its right answer) against the current index and store it; the stored row."""
    row = store.get(str(answer_id or ""))
    check_verdict(verdict, None)
    correction = make_correction(row, index.documents, index.manifest.get("document_hashes", {}), doc_id=doc_id or None,
                                 start=start, end=end, text=text)
    if correction is not None and verdict not in CORRECTABLE:
        raise BadFeedback(f"a right answer goes with the verdict 'wrong' or 'is_there', not {verdict!r}")
    return store.set_verdict(answer_id, verdict, correction=correction, comment=comment, user=user)
