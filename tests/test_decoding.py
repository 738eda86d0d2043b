"""Span decoding and span hygiene (qa/reading/decoding.py): the one decoder of training, validation and serving."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.reading.decoding import clean_span, decode_window, top_token_spans


def test_top_spans_respect_length_and_context():
    start = np.array([9.0, 0.0, 5.0, 1.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 1.0, 6.0])
    ctx = np.array([False, True, True, True, True])
    assert top_token_spans(start, end, ctx, max_tokens=3, n=1) == [(11.0, 2, 4)]  # [CLS] is never a span
    assert top_token_spans(start, end, ctx, max_tokens=2, n=1) == [(7.0, 3, 4)]
    three = top_token_spans(start, end, ctx, max_tokens=3, n=3)
    assert [s for s, _, _ in three] == sorted((s for s, _, _ in three), reverse=True) and len(three) == 3


def test_every_pair_is_searched():
    """The best pair is found even when neither its start nor its end is among the top starts or ends."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        L = 40
        s, e = rng.normal(size=L), rng.normal(size=L)
        ctx = np.ones(L, dtype=bool)
        ctx[0] = False
        brute = max((s[i] + e[j], i, j) for i in range(1, L) for j in range(i, min(L, i + 5)))
        [(score, i, j)] = top_token_spans(s, e, ctx, 5, 1)
        assert (i, j) == brute[1:] and abs(score - brute[0]) < 1e-9


def _window(text: str, spans: list[tuple[int, int, float, float]]):
    """Logits over whitespace tokens of ``text`` (token 0 is [CLS]), with (first, last, start, end) boosts."""
    import re

    offs = [(0, 0)] + [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    s, e = np.zeros(len(offs)), np.zeros(len(offs))
    for i, j, a, b in spans:
        s[i] += a
        e[j] += b
    ctx = np.array([False] + [True] * (len(offs) - 1))
    return s, e, ctx, offs


def test_decode_window_cleans_and_keeps_exact_offsets():
    text = 'The ministry said: "the agency, in 2012, and then.\n\n"Next paragraph" here.'
    # best raw span: 'in 2012, and then.\n\n"Next' (crosses a paragraph break and an opening quote)
    s, e, ctx, offs = _window(text, [(6, 10, 5.0, 5.0)])
    cands, null = decode_window(s, e, ctx, offs, text, max_tokens=10)
    assert null == 0.0
    best = cands[0]
    assert "\n" not in text[best.start:best.end]
    assert text[best.start:best.end] == "2012, and then"  # "in" and the final "." trimmed; the break not crossed


@given(st.lists(st.sampled_from(list("ab ,.;:\"“”()[]’'\n-") + ["and ", "the ", "of ", "Inc."]), max_size=30).map("".join),
       st.integers(0, 60), st.integers(0, 60))
@settings(max_examples=400, deadline=None)
def test_clean_span_offsets_are_exact_and_never_empty(text, a, b):
    a, b = min(a, len(text)), min(b, len(text))
    got = clean_span(text, min(a, b), max(a, b))
    if got is None:
        return
    start, end = got
    span = text[start:end]
    assert min(a, b) <= start < end <= max(a, b)  # it only ever shrinks
    assert span.strip() == span and any(ch.isalnum() for ch in span)
    assert not span[0] in ",;:.!?)]}”" and not span[-1] in ",;:!?([{“"
    assert "\n\n" not in span
    for o, c in (("(", ")"), ("[", "]"), ("“", "”")):
        assert span.count(o) == span.count(c) or (o in span) is False and span.count(c) == 0
    assert span.count('"') % 2 == 0


def test_hygiene_examples():
    cases = {
        "in 2012,": "2012",
        "the Ministry of Interior and": "the Ministry of Interior",
        "“based on precise intelligence": "based on precise intelligence",
        "(the agency)": "(the agency)",
        "officials said U.S.": "officials said U.S.",
        "Acme Inc.": "Acme Inc.",
        "forgery, human trafficking.”": "forgery, human trafficking",
        "the high demand for": "the high demand",
        "a": "a",
    }
    for raw, want in cases.items():
        got = clean_span(raw, 0, len(raw))
        assert got is not None and raw[got[0]:got[1]] == want, (raw, got)
    assert clean_span(" , . ", 0, 5) is None


def test_training_validation_decodes_as_serving_does(span_reader):
    """training/train_reader.py's validation decoder gives the answer SpanReader.read gives, from the same logits."""
    import sys

    import torch
    from conftest import ROOT, SEEDS

    from qa.types import Chunk

    sys.path.insert(0, str(ROOT / "training"))
    from train_reader import decode_example

    text = (SEEDS / "iraq-trafficking-networks.txt").read_text(encoding="utf-8")
    chunk = Chunk("seed", 0, 0, len(text), text)
    for question in ("What has hindered the government's efforts against human trafficking?",
                     "Which ministry collaborated with the intelligence service?", "When did Iraq pass its law?"):
        enc = span_reader._tokenizer(question, text, truncation="only_second", max_length=span_reader.max_length,
                                     stride=span_reader.stride, return_overflowing_tokens=True,
                                     return_offsets_mapping=True)
        windows = []
        for w, ids in enumerate(enc["input_ids"]):
            seq = enc.sequence_ids(w)
            with torch.inference_mode():
                t = torch.tensor([ids])
                hidden = span_reader._encoder(t, torch.ones_like(t), torch.tensor([enc["token_type_ids"][w]]))
                logits = span_reader._head(hidden.float())[0].numpy()
            offsets = [o if seq[i] == 1 else (-1, -1) for i, o in enumerate(enc["offset_mapping"][w])]
            windows.append((logits[:, 0], logits[:, 1], offsets))
        picked, _ = decode_example(question, text, windows, span_reader.max_answer_tokens)
        [served] = span_reader.read(question, [chunk])
        assert (picked[1], picked[2]) == (served.start, served.end), question
