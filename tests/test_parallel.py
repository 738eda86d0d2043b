"""Chunking in worker processes (qa/parallel.py, ``qa index --workers N``): the same index as in one process."""
import os
import shutil

import numpy as np
import pytest

from qa.chunking import Chunker
from qa.cli import main
from qa.indexer import Indexer
from qa.ingest import load_paths
from qa.parallel import ChunkPool, chunk_reports, default_workers, raw_chunker
from qa.settings import Settings
from qa.sparse import bm25_scores
from qa.sparse import tokenize as bm25_terms
from qa.store import IndexStore
from qa.types import Document

from conftest import DATA, SEEDS

TRICKY = ("Ünïcödé résumé — naïve café. Dr. Smith met 3.5 km away; e.g. the U.S. team. 東京 is big.\n\n"
          "A second paragraph with     spaces\tand tabs, and an emoji 🙂 in it. " + "Long sentence word " * 120)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "reports"
    shutil.copytree(SEEDS, root)
    shutil.copytree(DATA / "ingest" / "reports", root / "ingest")
    (root / "tricky.txt").write_text(TRICKY)
    return root


def _same_index(a: IndexStore, b: IndexStore) -> None:
    assert a.data.documents == b.data.documents
    for name in ("chunk_doc", "chunk_index", "chunk_start", "chunk_end", "chunk_tokens"):
        assert np.array_equal(getattr(a.data, name), getattr(b.data, name)), name
    assert np.allclose(np.asarray(a.data.vectors), np.asarray(b.data.vectors), atol=1e-6)
    for q in ("anti-trafficking law Iraq", "tabs and spaces emoji", "résumé café"):
        assert np.array_equal(bm25_scores(a.bm25, q), bm25_scores(b.bm25, q)), q


def test_worker_tokenizer_chunks_like_the_encoders(encoder, corpus):
    """Workers tokenise with the Rust tokenizer alone; chunks and word-piece ids must not change."""
    docs = load_paths([corpus]).documents
    ours = Chunker(encoder.tokenize, Settings().chunking, encoder.tokenize_many)
    theirs = raw_chunker(str(encoder.model_path), Settings().chunking)
    assert [(c, ids) for c, ids in ours.split_many(docs)] == [(c, ids) for c, ids in theirs.split_many(docs)]
    assert ours.split(docs[0]) == theirs.split(docs[0])


def test_pooled_index_equals_single_process(encoder, corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = Indexer(Settings(index_dir=str(one), index_workers=1), encoder).sync([corpus])
    pooled_indexer = Indexer(Settings(index_dir=str(two), index_workers=2), encoder)
    pooled_indexer.pool_min_reports = 1
    pooled = pooled_indexer.sync([corpus])
    assert pooled.added == single.added and pooled.chunks_embedded == single.chunks_embedded > 5
    _same_index(IndexStore.open(one), IndexStore.open(two))

    # an update: kept reports' BM25 terms come from the pool too, changed ones are re-chunked there
    (corpus / "tricky.txt").write_text(TRICKY.replace("café", "bistro"))
    (corpus / "new.txt").write_text("A new report: the bistro opened in 1999 in Lyon.")
    a = Indexer(Settings(index_dir=str(one), index_workers=1), encoder).sync([corpus])
    b = pooled_indexer.sync([corpus])
    assert a.updated == b.updated == ["tricky"] and a.added == b.added == ["new"]
    _same_index(IndexStore.open(one), IndexStore.open(two))


def test_pool_keeps_order_and_restores_the_environment(encoder, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    docs = [Document(f"d{i}", f"Report {i}. " + "Some words here. " * (i % 7 + 1)) for i in range(150)]
    with ChunkPool(encoder.model_path, Settings().chunking, 2, slice_size=8) as pool:
        assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
        got = list(pool.chunk(docs))
        terms = pool.terms([d.text for d in docs[:20]])
    assert [d.id for d, _ in got] == [d.id for d in docs]
    here = chunk_reports(Chunker(encoder.tokenize, Settings().chunking, encoder.tokenize_many), docs)
    for (_, a), b in zip(got, here):
        assert np.array_equal(a.start, b.start) and np.array_equal(a.end, b.end) and a.ids == b.ids
        assert a.terms == b.terms
    assert terms == [bm25_terms(d.text) for d in docs[:20]] and all(terms)


def test_default_workers():
    assert default_workers("cpu") == 1
    assert 1 <= default_workers("cuda") <= 12
    with pytest.raises(ValueError, match="index_workers"):
        Settings(index_workers=-1)


def test_workers_option(tmp_path, capsys):
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "2", "--ray", "-q"]) == 2
    assert "--workers is for indexing on this machine" in capsys.readouterr().err
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "-3", "-q"]) == 2
    assert "index_workers must be between" in capsys.readouterr().err
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "2", "-q"]) == 0
    assert IndexStore.open(tmp_path / "i").documents
