"""qa index --ray (qa/distributed.py) on a local Ray cluster: the same index, and answers, as qa index."""
import shutil
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="needs the ray extra (pip install -e '.[ray]')")

from qa.assistant import Assistant
from qa.cli import main
from qa.distributed import RAY_MISSING, ray_sync
from qa.embed import Encoder
from qa.indexer import Indexer
from qa.settings import Settings
from qa.store import IndexStore

from conftest import DATA, SEED_ID, SEEDS

# Ray copies its DataContext through deprecated setters when a dataset is made; not this project's to fix.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]

QUESTION = "When did Iraq pass its anti-trafficking law?"


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path):
    """seeds/ and the ingest samples (html, md, jsonl with a bad line), an empty file and a duplicate id."""
    root = tmp_path / "reports"
    shutil.copytree(SEEDS, root)
    shutil.copytree(DATA / "ingest" / "reports", root / "ingest")
    (root / "empty.txt").write_text("")
    (root / "more.jsonl").write_text('{"id": "brief-1", "text": "The same id as a brief in ingest/feeds."}\n')
    return root


def _not_on_the_driver(self, ids, **kw):
    raise AssertionError("the driver embedded chunks: the cluster should have")


def test_ray_index_matches_single_process(corpus, tmp_path, ray_cluster, encoder, span_reader, monkeypatch):
    one, many = tmp_path / "single", tmp_path / "ray"
    single = Indexer(Settings(index_dir=str(one)), encoder).sync([corpus])
    with monkeypatch.context() as m:
        m.setattr(Encoder, "encode_ids", _not_on_the_driver)
        dist = ray_sync(Settings(index_dir=str(many)), [corpus], num_encoders=2)

    reasons = {s.reason for s in dist.skipped}
    assert "empty file" in reasons and any(r.startswith("duplicate id brief-1 (also from") for r in reasons)
    assert dist.skipped == single.skipped
    assert dist.added == single.added and dist.chunks_embedded == single.chunks_embedded > 0

    a, b = IndexStore.open(one), IndexStore.open(many)
    assert a.data.documents == b.data.documents
    for name in ("chunk_doc", "chunk_index", "chunk_start", "chunk_end", "chunk_tokens"):
        assert np.array_equal(getattr(a.data, name), getattr(b.data, name)), name
    cosine = np.sum(np.asarray(a.data.vectors) * np.asarray(b.data.vectors), axis=1)
    assert cosine.min() >= 1 - 1e-4
    assert a.manifest["document_hashes"] == b.manifest["document_hashes"]

    answers = [Assistant.open(i, settings=Settings(index_dir=str(i)), reader=span_reader).ask(QUESTION)
               for i in (one, many)]
    assert answers[0].text is not None and answers[0].text == answers[1].text
    cites = [[(c.doc_id, c.passage_start, c.passage_end, c.answer_start, c.answer_end) for c in x.citations]
             for x in answers]
    assert cites[0] and cites[0] == cites[1] and cites[0][0][0] == SEED_ID


def test_ray_index_is_incremental(tmp_path, ray_cluster, monkeypatch, capsys):
    corpus = tmp_path / "reports"
    shutil.copytree(SEEDS, corpus)
    shutil.copy(DATA / "ingest" / "reports" / "strike.txt", corpus)
    shutil.copy(DATA / "ingest" / "reports" / "notes" / "harvest.md", corpus)
    idx = str(tmp_path / "index")
    assert main(["index", str(corpus), "--index", idx, "--ray", "--encoders", "1", "-q"]) == 0
    assert "3 added" in capsys.readouterr().out

    (corpus / "strike.txt").write_text((corpus / "strike.txt").read_text() + "\nTalks resume on Monday.\n")
    (corpus / "harvest.md").unlink()
    with monkeypatch.context() as m:
        m.setattr(Encoder, "encode_ids", _not_on_the_driver)
        report = ray_sync(Settings(index_dir=idx), [corpus], num_encoders=1)
    assert (report.updated, report.removed, report.unchanged, report.added) == (["strike"], ["harvest"], [SEED_ID], [])
    store = IndexStore.open(idx)
    assert report.chunks_embedded == store.chunk_counts()["strike"] > 0
    assert "Talks resume on Monday." in store.documents["strike"].text

    again = ray_sync(Settings(index_dir=idx), [corpus], num_encoders=1)
    assert again.chunks_embedded == 0 and again.generation == report.generation  # nothing changed: no new write


def test_missing_ray_says_what_to_install(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    assert main(["index", str(corpus), "--index", str(tmp_path / "i"), "--ray", "-q"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {RAY_MISSING}"


def test_ray_options_need_ray(corpus, tmp_path, capsys):
    assert main(["index", str(corpus), "--index", str(tmp_path / "i"), "--encoders", "2", "-q"]) == 2
    assert "go with --ray" in capsys.readouterr().err
