"""Follow-up questions resolved against the conversation, without a generative model.

"Who dismantled the two networks?" -> "the Iraqi National Intelligence Service"; then "Which ministry helped
them?" becomes "Which ministry helped the Iraqi National Intelligence Service?" for the reader, and the search
query also carries the earlier question's key terms ("dismantled networks").
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.reading.answer_types import ENTITY
from qa.store.bm25 import tokenize
from qa.types import Answer

_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|this|that|these|those|there)\b", re.IGNORECASE)
_PERSONAL = {"they", "them", "their", "he", "him", "his", "she", "her"}
_POSSESSIVE = {"its", "their", "his"}
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do", "is", "was",
       "were", "are", "can", "could", "would", "will", "has", "have", "had"}


@dataclass(frozen=True)
class Resolved:
    reader_question: str  # the question the reader sees (pronoun replaced when it was resolved)
    search_query: str  # what retrieval searches for (question + carried terms)
    is_followup: bool


def _entities(text: str) -> list[str]:
    return [m.group().strip() for m in ENTITY.finditer(text) if m.group().strip().lower() not in _WH]


def _topic(question: str) -> str | None:
    """A noun phrase for "it": the earlier question's object (words after the verb), else its first entity."""
    ents = _entities(question)
    m = re.search(r"\b(?:the|a|an|its|their)\s+([\w -]+?)(?:\s+(?:to|in|on|for|of|by|with)\b|[?.!]|$)", question,
                  re.IGNORECASE)
    if m and len(m.group(0).split()) <= 6:
        return m.group(0).rstrip("?.! ").split(" to ")[0]
    return ents[0] if ents else None


def is_followup(question: str) -> bool:
    words = re.findall(r"\w+", question)
    return bool(_PRONOUN.search(question)) or (len(words) <= 3 and not _entities(question[1:]))


def resolve_followup(question: str, history: Sequence[Answer]) -> Resolved:
    if not history or not is_followup(question):
        return Resolved(question, question, False)
    prev = history[-1]
    prev_q = prev.resolved_question or prev.question
    answer = prev.text if prev.text and len(prev.text.split()) <= 8 else None
    answer_is_entity = bool(answer and _entities(answer))
    answer_is_value = bool(answer and re.fullmatch(r"[\d\s,.%$£€-]+|.*\b\d{4}\b.*", answer))
    m = _PRONOUN.search(question)
    reader_q = question
    if m:
        word = m.group(1).lower()
        if word in _PERSONAL:
            ref = answer if answer_is_entity else (_entities(prev_q) or [None])[0]
        elif word == "there":
            ref = None
        else:
            ref = answer if (answer and not answer_is_value) else _topic(prev_q)
        if ref:
            ref = ref + "'s" if word in _POSSESSIVE else ref
            reader_q = question[: m.start()] + ref + question[m.end():]
    carried = []
    seen = set(tokenize(reader_q))
    for term in tokenize(prev_q) + (tokenize(answer) if answer else []):
        if term not in seen:
            seen.add(term)
            carried.append(term)
    search = reader_q + (" " + " ".join(carried) if carried else "")
    return Resolved(reader_q, search, True)
