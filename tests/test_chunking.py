import json

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from qa.chunking import Chunker, ChunkSettings, split_sentences
from qa.ingest.files import load_paths
from qa.types import Document

from conftest import DATA, SEEDS


@pytest.fixture(scope="module")
def chunker(encoder):
    return Chunker(encoder.tokenize, ChunkSettings())


def _check(doc, chunks, ids, encoder, s: ChunkSettings):
    assert chunks, "a non-empty report gives chunks"
    for c, cid in zip(chunks, ids):
        assert doc.text[c.start:c.end] == c.text
        assert c.text == c.text.strip()
        assert 0 < c.n_tokens == len(cid) <= s.max_tokens
        # the ids the encoder gets are exactly the tokenisation of the chunk text
        assert encoder.tokenize(c.text)[0] == cid
    # chunks cover every word of the report, in order
    assert chunks[0].start == len(doc.text) - len(doc.text.lstrip())
    assert chunks[-1].end == len(doc.text.rstrip())
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and b.start <= a.end + 2, "consecutive chunks leave no gap"


def test_offsets_on_seeds(chunker, encoder):
    docs = load_paths([SEEDS]).documents
    assert docs
    for doc in docs:
        chunks, ids = chunker.split(doc)
        _check(doc, chunks, ids, encoder, chunker.settings)
        assert len(chunks) >= 2  # the seed report is longer than one chunk


def test_offsets_on_squad_sample(chunker, encoder):
    data = json.loads((DATA / "squad_sample.json").read_text())
    n = 0
    for art in data["data"]:
        for i, p in enumerate(art["paragraphs"]):
            doc = Document(f"{art['title']}#{i}", p["context"], art["title"])
            chunks, ids = chunker.split(doc)
            _check(doc, chunks, ids, encoder, chunker.settings)
            n += len(chunks)
    assert n >= 32


def test_overlap_repeats_the_previous_sentence(encoder):
    s = ChunkSettings(max_tokens=40, overlap_tokens=15, min_tokens=0)
    text = " ".join(f"Sentence number {i} talks about topic {i} at some length." for i in range(12))
    chunks, _ = Chunker(encoder.tokenize, s).split(Document("d", text))
    assert len(chunks) > 2
    overlaps = [a.end > b.start for a, b in zip(chunks, chunks[1:])]
    assert all(overlaps)


def test_an_overlong_sentence_is_cut_at_word_boundaries(encoder):
    s = ChunkSettings(max_tokens=32, overlap_tokens=0, min_tokens=0)
    text = " ".join(["word"] * 300)  # one sentence of 300 word pieces
    doc = Document("d", text)
    chunks, ids = Chunker(encoder.tokenize, s).split(doc)
    _check(doc, chunks, ids, encoder, s)
    assert all(c.text.split() == ["word"] * len(c.text.split()) for c in chunks)


def test_settings_are_validated():
    with pytest.raises(ValueError):
        ChunkSettings(max_tokens=300)
    with pytest.raises(ValueError):
        ChunkSettings(max_tokens=100, overlap_tokens=60)


def test_sentence_splitter_keeps_abbreviations_together():
    text = "Dr. Smith met U.S. officials on Jan. 5. They agreed.\nNew line here"
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == ["Dr. Smith met U.S. officials on Jan. 5.", "They agreed.", "New line here"]


@hsettings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=600))
def test_offset_invariant_on_arbitrary_text(encoder, text):
    doc = Document("h", text)
    chunks, ids = Chunker(encoder.tokenize, ChunkSettings(max_tokens=24, overlap_tokens=6, min_tokens=4)).split(doc)
    for c, cid in zip(chunks, ids):
        assert doc.text[c.start:c.end] == c.text
        assert len(cid) == c.n_tokens <= 24


def test_split_many_equals_split_one_by_one(encoder):
    docs = [Document(f"d{i}", f"Report {i}. " + "The council met on Tuesday and agreed the budget. " * (i * 7) + "End.")
            for i in range(6)] + [Document("empty-ish", "   ")]
    chunker = Chunker(encoder.tokenize, ChunkSettings(max_tokens=40, overlap_tokens=8, min_tokens=4),
                      encoder.tokenize_many)
    assert chunker.split_many(docs) == [chunker.split(d) for d in docs]
    assert sum(len(c) for c, _ in chunker.split_many(docs)) > len(docs)
