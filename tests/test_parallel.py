"""Chunking in worker processes (qa/store/parallel.py, ``qa index --workers N``): the same index as in one process."""
import os
import shutil

import numpy as np
import pytest

from qa.chunking import Chunker
from qa.cli import main
from qa.store.indexer import Indexer
from qa.ingest.files import load_paths
from qa.store.parallel import ChunkPool, chunk_reports, default_workers, raw_chunker, tokenizer_json
from qa.settings import Settings
from qa.store.bm25 import bm25_scores
from qa.store.bm25 import tokenize as bm25_terms
from qa.store.index import IndexStore
from qa.types import Document

from conftest import DATA, SEEDS

TRICKY = ("Ünïcödé résumé — naïve café. Dr. Smith met 3.5 km away; e.g. the U.S. team. 東京 is big.\n\n"
          "A second paragraph with     spaces\tand tabs, and an emoji 🙂 in it. " + "Long sentence word " * 120)
QUERIES = ("anti-trafficking law Iraq", "tabs and spaces emoji", "résumé café", "bistro Lyon")


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "reports"
    shutil.copytree(SEEDS, root)
    shutil.copytree(DATA / "ingest" / "reports", root / "ingest")
    (root / "tricky.txt").write_text(TRICKY)
    (root / "blank.jsonl").write_text('{"id": "blank", "text": "   \\n\\t  "}\n')
    return root


def _pooled(root, encoder, monkeypatch) -> Indexer:
    """An Indexer that must chunk on a pool of 2: chunking in this process fails the test."""
    indexer = Indexer(Settings(index_dir=str(root), index_workers=2), encoder)
    indexer.pool_min_reports = 1

    def not_here(*a, **kw):
        raise AssertionError("chunked in the indexing process: the pool should have")

    monkeypatch.setattr(indexer, "_chunk_and_embed", not_here)
    return indexer


def _same_index(a: IndexStore, b: IndexStore, exact_vectors: bool = True) -> None:
    assert a.data.documents == b.data.documents
    for name in ("chunk_doc", "chunk_index", "chunk_start", "chunk_end", "chunk_tokens"):
        assert np.array_equal(getattr(a.data, name), getattr(b.data, name)), name
    va, vb = np.asarray(a.data.vectors), np.asarray(b.data.vectors)
    if exact_vectors:  # one group: the same batches as in one process
        assert np.array_equal(va, vb)
    else:  # groups batch differently: bf16 rounding differs in the 4th digit
        assert (va * vb).sum(1).min() >= 1 - 1e-4
    for q in QUERIES:
        assert np.array_equal(bm25_scores(a.bm25, q), bm25_scores(b.bm25, q)), q


def _update(corpus) -> None:
    """A changed report, a new one, a removed one and a kept blank one."""
    (corpus / "tricky.txt").write_text(TRICKY.replace("café", "bistro"))
    (corpus / "new.txt").write_text("A new report: the bistro opened in 1999 in Lyon.")
    shutil.rmtree(corpus / "ingest")


def test_worker_tokenizer_chunks_like_the_encoders(encoder, corpus):
    """Workers tokenise with the Rust tokenizer alone; chunks and word-piece ids must not change."""
    docs = load_paths([corpus]).documents
    ours = Chunker(encoder.tokenize, Settings().chunking, encoder.tokenize_many)
    theirs = raw_chunker(tokenizer_json(encoder.tokenizer), Settings().chunking)
    assert ours.split_many(docs) == theirs.split_many(docs)
    assert ours.split(docs[0]) == theirs.split(docs[0])


def test_pooled_index_equals_single_process(encoder, corpus, tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    single = Indexer(Settings(index_dir=str(one), index_workers=1), encoder).sync([corpus])
    pooled_indexer = _pooled(two, encoder, monkeypatch)
    pooled = pooled_indexer.sync([corpus])
    assert pooled.added == single.added and pooled.chunks_embedded == single.chunks_embedded > 5
    _same_index(IndexStore.open(one), IndexStore.open(two))

    # an update: kept reports' BM25 terms come from the pool too, changed and new ones are chunked there
    _update(corpus)
    a = Indexer(Settings(index_dir=str(one), index_workers=1), encoder).sync([corpus])
    b = pooled_indexer.sync([corpus])
    assert a.updated == b.updated == ["tricky"] and a.added == b.added == ["new"] and a.removed == b.removed
    assert len(b.removed) >= 3
    _same_index(IndexStore.open(one), IndexStore.open(two))


def test_many_groups(encoder, corpus, tmp_path, monkeypatch):
    """Embedding a group while the workers chunk the next: groups of 3 chunks instead of 8,192; a report with no
    chunks (blank text, as ``upsert`` may get) among them."""
    monkeypatch.setattr(encoder, "pipeline_step", 3)
    docs = list(load_paths([corpus]).documents)
    docs.insert(2, Document("blank", "  \n\t "))
    one, two = tmp_path / "one", tmp_path / "two"
    Indexer(Settings(index_dir=str(one), index_workers=1), encoder).upsert(docs)
    groups = []
    indexer = _pooled(two, encoder, monkeypatch)
    embed = indexer._embed
    monkeypatch.setattr(indexer, "_embed", lambda chunked, tick=None: groups.append(len(chunked)) or embed(chunked))
    indexer.upsert(docs)
    assert len(groups) >= 3 and sum(groups) == len(docs)
    _same_index(IndexStore.open(one), IndexStore.open(two), exact_vectors=False)
    assert "blank" in IndexStore.open(two).documents


def _fails(docs):
    raise ValueError("this report cannot be tokenised")


def _dies(docs):
    os._exit(3)


def test_a_failing_report_stops_the_run_and_keeps_the_index(encoder, corpus, tmp_path, monkeypatch):
    root = tmp_path / "i"
    first = Indexer(Settings(index_dir=str(root)), encoder).sync([corpus])
    _update(corpus)
    monkeypatch.setattr("qa.store.parallel._chunk_task", _fails)
    with pytest.raises(ValueError, match="cannot be tokenised"):
        _pooled(root, encoder, monkeypatch).sync([corpus])
    store = IndexStore.open(root)
    assert store.generation.name == first.generation and "tricky" in store.documents and "new" not in store.documents


def test_a_dead_worker_falls_back_to_this_process(encoder, corpus, tmp_path, monkeypatch, caplog):
    one, two = tmp_path / "one", tmp_path / "two"
    Indexer(Settings(index_dir=str(one), index_workers=1), encoder).sync([corpus])
    monkeypatch.setattr("qa.store.parallel._chunk_task", _dies)
    indexer = Indexer(Settings(index_dir=str(two), index_workers=2), encoder)
    indexer.pool_min_reports = 1
    indexer.sync([corpus])
    assert "chunking workers failed" in caplog.text
    _same_index(IndexStore.open(one), IndexStore.open(two))


def test_pool_keeps_order_and_restores_the_environment(encoder, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    docs = [Document(f"d{i}", f"Report {i}. " + "Some words here. " * (i % 7 + 1)) for i in range(150)]
    with ChunkPool(encoder.tokenizer, Settings().chunking, 2, slice_size=8) as pool:
        assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
        got = list(pool.chunk(docs, ahead_chunks=20))
        terms = pool.terms([d.text for d in docs[:20]])
    assert [d.id for d, _ in got] == [d.id for d in docs]
    here = chunk_reports(Chunker(encoder.tokenize, Settings().chunking, encoder.tokenize_many), docs)
    for (_, a), b in zip(got, here):
        assert np.array_equal(a.start, b.start) and np.array_equal(a.end, b.end) and a.ids == b.ids
        assert a.terms == b.terms
    assert terms == [bm25_terms(d.text) for d in docs[:20]] and all(terms)


def test_default_workers():
    assert default_workers("cpu") == 1 and default_workers("mps") == 1
    assert 1 <= default_workers("cuda") <= 12 and default_workers("cuda:1") == default_workers("cuda")
    with pytest.raises(ValueError, match="index_workers"):
        Settings(index_workers=-1)


def test_workers_option_is_checked_and_passed_on(tmp_path, capsys):
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "2", "--ray", "-q"]) == 2
    assert "--workers is for indexing on this machine" in capsys.readouterr().err
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "-3", "-q"]) == 2
    assert "index_workers must be between" in capsys.readouterr().err
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "i"), "--workers", "2", "-q"]) == 0
    assert IndexStore.open(tmp_path / "i").documents
