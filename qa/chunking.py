"""Reports -> sentence-aware chunks that keep exact character offsets.

Invariant: ``doc.text[chunk.start:chunk.end] == chunk.text`` for every chunk.

A report is tokenised once (word pieces with offsets); sentences are found by rules, packed into chunks of at
most ``max_tokens`` word pieces, and each chunk after the first repeats the last sentence(s) of the one before
(up to ``overlap_tokens``). A sentence longer than a whole chunk is cut at word boundaries. No chunk exceeds the
embedder's window, so nothing is silently truncated. The chunk's word-piece ids are returned with it, so the
encoder never tokenises the text again.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from qa.types import Chunk, Document

Tokenize = Callable[[str], tuple[list[int], list[tuple[int, int]]]]
TokenizeMany = Callable[[list[str]], list[tuple[list[int], list[tuple[int, int]]]]]

_ABBREV = frozenset(
    "mr mrs ms dr prof sr jr st mt gen col lt sgt capt gov sen rep rev inc ltd co corp vs etc al fig no nos vol "
    "jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s u.k u.n a.m p.m approx dept est".split()
)
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space, or at a line break.
_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)|\n")


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 200  # word pieces per chunk, without [CLS]/[SEP]; the embedder's window is 254
    overlap_tokens: int = 40  # at most this many word pieces repeated from the previous chunk
    min_tokens: int = 24  # a trailing chunk smaller than this is merged back when it fits

    def __post_init__(self) -> None:
        if not 16 <= self.max_tokens <= 254:
            raise ValueError("max_tokens must be between 16 and 254 (all-MiniLM-L6-v2's window less 2)")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("overlap_tokens must be >= 0 and below half of max_tokens")
        if self.min_tokens < 0:
            raise ValueError("min_tokens must be >= 0")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences, leading/trailing whitespace excluded; empty spans dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if m.group() != "\n":
            word = re.search(r"([\w.]+)[.!?]?[\"'”’)\]]*$", text[start:end])
            token = word.group(1).lower().rstrip(".") if word else ""
            if token in _ABBREV or (len(token) == 1 and token.isalpha()):
                continue  # "Dr. Smith", "J. Smith", "U.S. officials"
            nxt = text[end : end + 3].lstrip()
            if nxt and nxt[0].islower():
                continue  # "e.g. the" or a decimal-like continuation
        _add_span(text, start, end, spans)
        start = end
    _add_span(text, start, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


class Chunker:
    """Splits Documents into Chunks with the embedder's tokenizer."""

    def __init__(self, tokenize: Tokenize, settings: ChunkSettings | None = None,
                 tokenize_many: TokenizeMany | None = None) -> None:
        self.tokenize = tokenize
        self.tokenize_many = tokenize_many
        self.settings = settings or ChunkSettings()

    def split(self, doc: Document) -> tuple[list[Chunk], list[list[int]]]:
        """Chunks of ``doc`` and, for each, its word-piece ids (without special tokens)."""
        return self._split(doc, *self.tokenize(doc.text))

    def split_many(self, docs: Sequence[Document]) -> list[tuple[list[Chunk], list[list[int]]]]:
        """``split`` of each report, tokenising them in one call (the Rust tokenizer spreads it over the cores)."""
        if self.tokenize_many is None or len(docs) < 2:
            return [self.split(d) for d in docs]
        return [self._split(d, ids, offs) for d, (ids, offs) in zip(docs, self.tokenize_many([d.text for d in docs]))]

    def _split(self, doc: Document, ids: Sequence[int], offsets: Sequence[tuple[int, int]]):
        if not ids:
            return [], []
        starts = [o[0] for o in offsets]
        units = self._units(doc.text, offsets, starts)  # (first token, end token) per sentence piece
        chunks: list[Chunk] = []
        chunk_ids: list[list[int]] = []
        s = self.settings
        i = 0
        while i < len(units):
            j, size = i, 0
            while j < len(units) and size + (units[j][1] - units[j][0]) <= s.max_tokens:
                size += units[j][1] - units[j][0]
                j += 1
            if j == i:  # cannot happen: units are at most max_tokens long
                j = i + 1
            t0, t1 = units[i][0], units[j - 1][1]
            c0, c1 = offsets[t0][0], offsets[t1 - 1][1]
            chunks.append(Chunk(doc.id, len(chunks), c0, c1, doc.text[c0:c1], t1 - t0))
            chunk_ids.append(list(ids[t0:t1]))
            if j >= len(units):
                break
            # overlap: step back over trailing sentences that fit in overlap_tokens
            back, k = 0, j
            while k - 1 > i and back + (units[k - 1][1] - units[k - 1][0]) <= s.overlap_tokens:
                back += units[k - 1][1] - units[k - 1][0]
                k -= 1
            i = k
        self._merge_small_tail(doc, chunks, chunk_ids, offsets)
        return chunks, chunk_ids

    def _units(self, text: str, offsets: Sequence[tuple[int, int]], starts: list[int]) -> list[tuple[int, int]]:
        """Token ranges of sentences; sentences longer than max_tokens are cut at word starts."""
        units: list[tuple[int, int]] = []
        n = len(offsets)
        for a, b in split_sentences(text):
            t0 = bisect.bisect_left(starts, a)
            t1 = bisect.bisect_left(starts, b)
            if t1 <= t0:
                continue
            while t1 - t0 > self.settings.max_tokens:
                cut = t0 + self.settings.max_tokens
                # prefer a cut where a new word starts (whitespace before the token)
                k = cut
                while k > t0 + self.settings.max_tokens // 2 and not (
                    offsets[k][0] > 0 and text[offsets[k][0] - 1].isspace()
                ):
                    k -= 1
                cut = k if k > t0 + self.settings.max_tokens // 2 else cut
                units.append((t0, cut))
                t0 = cut
            units.append((t0, min(t1, n)))
        return units

    def _merge_small_tail(self, doc: Document, chunks: list[Chunk], chunk_ids: list[list[int]], offsets) -> None:
        """A tiny last chunk that only repeats overlap plus a little is folded into its predecessor if it fits."""
        if len(chunks) < 2 or chunks[-1].n_tokens >= self.settings.min_tokens:
            return
        prev, last = chunks[-2], chunks[-1]
        if last.end <= prev.end:
            chunks.pop(); chunk_ids.pop()
            return
        # tokens of last beyond prev's end
        extra = [t for t, o in zip(chunk_ids[-1], _offsets_of(last, offsets)) if o[0] >= prev.end]
        if prev.n_tokens + len(extra) <= self.settings.max_tokens:
            c0, c1 = prev.start, last.end
            chunk_ids[-2] = chunk_ids[-2] + extra
            chunks[-2] = Chunk(doc.id, prev.index, c0, c1, doc.text[c0:c1], prev.n_tokens + len(extra))
            chunks.pop(); chunk_ids.pop()


def _offsets_of(chunk: Chunk, offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    starts = [o[0] for o in offsets]
    t0 = bisect.bisect_left(starts, chunk.start)
    return list(offsets[t0 : t0 + chunk.n_tokens])
