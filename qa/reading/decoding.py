"""Span decoding, one function for training, validation and serving.

A reader's forward pass gives start and end logits over a window of word pieces. :func:`decode_window` turns them
into the window's best character spans of the context, each cleaned by :func:`clean_span` (no span crosses a
paragraph break; quotes and brackets balanced or trimmed; punctuation and dangling function words trimmed at the
edges; never empty), together with the window's no-answer score. ``qa.reading.reader.SpanReader`` and
``training/train_reader.py`` (validation, and so the choice of the shipped epoch and its threshold) both call it,
so what selects a reader is what ships.

Only numpy and ``re``: training imports this module on a bare GPU machine.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

N_BEST = 8  # candidates kept per window: the best, and the near ones that type and list checks may prefer


@dataclass(frozen=True)
class Candidate:
    """A cleaned answer span: ``context[start:end]``, scored by its start + end logits."""

    score: float
    start: int
    end: int


def top_token_spans(start: np.ndarray, end: np.ndarray, ctx_mask: np.ndarray, max_tokens: int,
                    n: int) -> list[tuple[float, int, int]]:
    """The ``n`` best (score, first token, last token) with first <= last < first + max_tokens, both in the context,
    best first. Every pair in the band is scored (no top-k shortcut on starts or ends)."""
    s = np.where(ctx_mask, start.astype(np.float64), -np.inf)
    e = np.where(ctx_mask, end.astype(np.float64), -np.inf)
    L = len(s)
    if L == 0 or not ctx_mask.any():
        return []
    scores = s[:, None] + e[None, :]
    i = np.arange(L)
    band = (i[None, :] >= i[:, None]) & (i[None, :] < i[:, None] + max_tokens)
    scores = np.where(band, scores, -np.inf)
    flat = scores.ravel()
    k = min(n, int(np.isfinite(flat).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    return [(float(flat[t]), int(t // L), int(t % L)) for t in top]


def decode_window(start: np.ndarray, end: np.ndarray, ctx_mask: np.ndarray, offsets: Sequence[tuple[int, int]],
                  context: str, max_tokens: int, n: int = N_BEST) -> tuple[list[Candidate], float]:
    """(up to ``n`` cleaned candidates, best first and distinct; the window's no-answer score).

    ``offsets[t]`` is token ``t``'s (start, end) in ``context``; ``ctx_mask[t]`` says whether it is a context token.
    The no-answer score is the [CLS] token's start + end logit (position 0).
    """
    null = float(start[0] + end[0])
    out: list[Candidate] = []
    seen: set[tuple[int, int]] = set()
    for score, i, j in top_token_spans(start, end, ctx_mask, max_tokens, n * 3):
        cleaned = clean_span(context, offsets[i][0], offsets[j][1])
        if cleaned is None or cleaned in seen:
            continue
        seen.add(cleaned)
        out.append(Candidate(score, *cleaned))
        if len(out) == n:
            break
    return out, null


def merge_windows(windows: Iterable[tuple[list[Candidate], float]]) -> tuple[list[Candidate], float]:
    """One passage's (candidates, no-answer score) from its overlapping windows': a span found in several windows
    keeps its best score; the no-answer score is the lowest window's (the window that sees the answer best)."""
    best: dict[tuple[int, int], float] = {}
    null = math.inf
    for cands, window_null in windows:
        null = min(null, window_null)
        for c in cands:
            best[(c.start, c.end)] = max(c.score, best.get((c.start, c.end), -math.inf))
    ranked = sorted((Candidate(sc, a, b) for (a, b), sc in best.items()), key=lambda c: (-c.score, c.start, c.end))
    return ranked, null


# --- span hygiene ---
_PAIRS = {"(": ")", "[": "]", "{": "}", "“": "”", "‘": "’", "«": "»"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}
_STRAIGHT = "\"'"
# a paragraph break: a blank line, or a line ending that closes a sentence, a heading ("...:") or a quotation,
# or that opens a quotation, a bracket or a bullet on the next line
_BREAK = re.compile(r"\n[ \t]*\n|[.!?:;\"”’)\]][ \t]*\n|\n[ \t]*[\"“‘(\[•*\-–—]")
_LEAD_PUNCT = ",;:.!?)]}”’»-–—/|•*"
_TRAIL_PUNCT = ",;:!?([{“‘«-–—/|•*"
_LEAD_WORDS = frozenset(
    "and or but nor of to in on at by for with from as that which who whom whose than while because since "
    "although though whereas including such".split())
_TRAIL_WORDS = frozenset(
    "and or but nor of to in on at by for with from as that which who whom whose than the a an its their his her "
    "our your this these those is are was were be been has have had said says such including".split())
_ABBREV_END = re.compile(r"(?:\b[A-Za-z]\.|\b(?:Inc|Ltd|Co|Corp|Jr|Sr|St|Dr|Mr|Mrs|Ms|Prof|Gen|Gov|No|vs|etc)\.)$")
_WORD_AT_START = re.compile(r"[\w’']+")
_WORD_AT_END = re.compile(r"[\w’']+$")


def clean_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``text[start:end]`` made into an answer a person would cut, as (start, end) in ``text``; None if nothing
    is left. Only ever shrinks the span, so the offsets stay exact."""
    if start >= end:
        return None
    if _BREAK.search(text, start, end) or "\n\n" in text[start:end]:
        start, end = _one_side_of_break(text, start, end)
    for _ in range(8):  # trimming one thing can expose another ("of (the"): repeat until nothing changes
        before = (start, end)
        start, end = _strip_space(text, start, end)
        start, end = _trim_punctuation(text, start, end)
        start, end = _balance(text, start, end)
        start, end = _trim_function_words(text, start, end)
        if (start, end) == before or start >= end:
            break
    start, end = _strip_space(text, start, end)
    if start >= end or not re.search(r"\w", text[start:end]):
        return None
    return start, end


def _strip_space(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _one_side_of_break(text: str, start: int, end: int) -> tuple[int, int]:
    """The longest piece of the span between paragraph breaks."""
    cuts = [start]
    for m in re.finditer(r"\n", text[start:end]):
        pos = start + m.start()
        window = text[max(start, pos - 2) : min(end, pos + 3)]
        if _BREAK.search(window) or "\n\n" in text[pos - 1 : pos + 2]:
            cuts.append(pos)
    cuts.append(end)
    pieces = [(a, b) for a, b in zip(cuts, cuts[1:])]
    return max(pieces, key=lambda p: len(text[p[0] : p[1]].strip()))


def _trim_punctuation(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _LEAD_PUNCT:
        start += 1
    while end > start:
        ch = text[end - 1]
        if ch in _TRAIL_PUNCT:
            end -= 1
        elif ch == "." and not _ABBREV_END.search(text[start:end]):
            end -= 1
        else:
            break
    return start, end


def _trim_function_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop a dangling function word at either edge ("in 2012" -> "2012", "the ministry and" -> "the ministry"),
    but never the span's only word."""
    m = _WORD_AT_START.match(text, start, end)
    if m and m.end() < end and text[m.end()].isspace() and m.group().lower() in _LEAD_WORDS:
        start = m.end()
    m = _WORD_AT_END.search(text, start, end)
    if m and m.start() > start and text[m.start() - 1].isspace() and m.group().lower() in _TRAIL_WORDS:
        end = m.start()
    return start, end


def _balance(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim an unbalanced quote or bracket: at an edge it goes; inside, the span is cut there, keeping the longer
    side."""
    s = text[start:end]
    stack: list[int] = []
    bad: int | None = None
    for k, ch in enumerate(s):
        if ch in _PAIRS:
            stack.append(k)
        elif ch in _CLOSERS:
            if ch == "’" and _is_apostrophe(s, k):
                continue
            if stack and s[stack[-1]] == _CLOSERS[ch]:
                stack.pop()
            else:
                bad = k
                break
    if bad is None and stack:
        bad = stack[0]
    if bad is None:
        straight = [k for k, ch in enumerate(s) if ch == '"']
        if len(straight) % 2:
            bad = straight[0] if len(straight) == 1 else straight[-1]
    if bad is None:
        return start, end
    left, right = (start, start + bad), (start + bad + 1, end)
    return max((left, right), key=lambda p: len(text[p[0] : p[1]].strip()))


def _is_apostrophe(s: str, k: int) -> bool:
    """’ between letters ("country’s") or after an s ("networks’ members") is an apostrophe, not a quote."""
    before = s[k - 1] if k > 0 else ""
    after = s[k + 1] if k + 1 < len(s) else ""
    return before.isalnum() and (after.isalpha() or before in "sS")


__all__ = ["Candidate", "N_BEST", "clean_span", "decode_window", "merge_windows", "top_token_spans"]
