"""The sentence-plus-rules reader: the best-matching sentence, narrowed to the span the question asks for.

when -> a date or year, how many/much -> a number, who -> a name, where -> a place; otherwise the sentence (the
kinds and patterns of ``qa.reading.answer_types``).
No model: a fallback when the span reader is unavailable, and a baseline to compare it with.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from qa.reading.answer_types import DATE, ENTITY, NUMBER, expected_kind
from qa.chunking import split_sentences
from qa.reading.answer_types import question_type
from qa.store.bm25 import tokenize
from qa.types import Chunk, Span

_PLACE = re.compile(r"\b(?:in|at|from|to|near)\s+((?:the\s+)?[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*)")


def question_kind(question: str) -> str:
    """number, date, name, place, or sentence (no particular kind): ``qa.reading.answer_types.expected_kind``."""
    kind = expected_kind(question)
    if kind is None and question_type(question) == "who":  # "who is X?": the rules reader still looks for a name
        return "name"
    return kind or "sentence"


class RulesReader:
    name = "rules"
    default_threshold = 0.3  # share of the question's idf weight the best sentence must match

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]:
        q_terms = Counter(tokenize(question))
        if not q_terms or not chunks:
            return []
        df = Counter()
        sents: list[list[tuple[int, int]]] = []
        for c in chunks:
            ss = split_sentences(c.text)
            sents.append(ss)
            for a, b in ss:
                df.update(set(tokenize(c.text[a:b])))
        n = max(1, sum(len(s) for s in sents))
        idf = {t: math.log(1 + n / (1 + df[t])) for t in q_terms}
        total = sum(idf.values()) or 1.0
        kind = question_kind(question)
        q_words = set(re.findall(r"\w+", question.lower()))
        spans = []
        for c, ss in zip(chunks, sents):
            best = None
            for a, b in ss:
                terms = set(tokenize(c.text[a:b]))
                score = sum(idf[t] for t in q_terms if t in terms) / total
                if best is None or score > best[0]:
                    best = (score, a, b)
            if best is None or best[0] <= 0:
                continue
            score, a, b = best
            sa, sb = self._narrow(c.text[a:b], kind, q_words)
            text = c.text[a + sa : a + sb]
            fits = kind == "sentence" or sb - sa < b - a
            conf = score * (1.0 if fits else 0.6)
            spans.append(Span(c, c.start + a + sa, c.start + a + sb, text, min(1.0, conf)))
        return spans

    @staticmethod
    def _narrow(sentence: str, kind: str, q_words: set[str]) -> tuple[int, int]:
        pattern = {"date": DATE, "number": NUMBER, "name": ENTITY, "place": _PLACE}.get(kind)
        if pattern is None:
            return 0, len(sentence)
        for m in pattern.finditer(sentence):
            g = 1 if pattern is _PLACE else 0
            words = set(re.findall(r"\w+", m.group(g).lower()))
            if words and words <= q_words:
                continue  # the question's own words are not its answer
            if pattern is ENTITY and m.start() == 0 and len(words) == 1:
                continue  # a capitalised first word is usually not a name
            return m.start(g), m.end(g)
        return 0, len(sentence)
