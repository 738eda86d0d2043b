"""qa index --ray (qa/store/distributed.py) on a local Ray cluster: the same index, and answers, as qa index."""
import shutil
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="needs the ray extra (pip install -e '.[ray]')")

from qa.assistant import Assistant
from qa.cli import main
from qa.store.distributed import RAY_MISSING, ray_sync
from qa.models.encoder import Encoder
from qa.store.indexer import Indexer
from qa.settings import Settings
from qa.store.index import IndexStore

from conftest import DATA, SEED_ID, SEEDS, damaged_model

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


@pytest.mark.parametrize("extra, says", [(["--device", "cuda"], "follows --gpu"),
                                         (["--precision", "fp16"], "needs a GPU")])
def test_settings_the_actors_would_refuse_are_refused_first(corpus, tmp_path, capsys, extra, says):
    assert main(["index", str(corpus), "--index", str(tmp_path / "i"), "--ray", "-q", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_gpu_on_a_cluster_without_one_is_refused(corpus, tmp_path, ray_cluster):
    from qa.errors import QAError

    with pytest.raises(QAError, match="no GPU"):
        ray_sync(Settings(index_dir=str(tmp_path / "i")), [corpus], use_gpu=True)


def test_the_first_report_with_an_id_keeps_its_own_chunks():
    from qa.store.distributed import _merge

    def row(seq, text, unchanged, start):
        return {"seq": seq, "pos": 0, "path": f"f{seq}.txt", "reason": None, "id": "dup", "text": text, "title": "t",
                "date": None, "source": f"f{seq}.txt", "unchanged": unchanged, "chunk_index": [0],
                "chunk_start": [start], "chunk_end": [len(text)], "chunk_tokens": [3],
                "vectors": np.ones(4, dtype=np.float32).tobytes()}

    # the first copy is unchanged in the index; the later duplicate differs and was embedded
    result, embedded = _merge([row(1, "a longer later copy", False, 2), row(0, "short", True, 0)], dim=4)
    assert [d.text for d in result.documents] == ["short"] and "dup" not in embedded
    assert [s.reason for s in result.skipped] == ["duplicate id dup (also from f0.txt)"]
    result, embedded = _merge([row(0, "short", False, 0), row(1, "a longer later copy", False, 2)], dim=4)
    assert embedded["dup"].end.tolist() == [5]


def test_an_incompatible_index_is_rebuilt_whole(corpus, tmp_path, ray_cluster):
    import json

    idx = tmp_path / "i"
    ray_sync(Settings(index_dir=str(idx)), [corpus], num_encoders=1)
    gen = IndexStore.open(idx).generation
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["embedding_model"] = "some/other-model"
    (gen / "manifest.json").write_text(json.dumps(manifest))
    assert Indexer(Settings(index_dir=str(idx))).content_hashes() == {}
    again = ray_sync(Settings(index_dir=str(idx)), [corpus], num_encoders=1)
    assert again.unchanged == [] and again.chunks_embedded == again.n_chunks > 0
    assert IndexStore.open(idx, expect={"embedding_model": Encoder.name}).data.documents


def test_a_damaged_embedding_model_fails_before_any_actor_starts(tmp_path, monkeypatch, capsys):
    weights = damaged_model(tmp_path, monkeypatch, "embedding", "model.safetensors", lambda b: b[:100_000])
    started = ray.is_initialized()
    assert main(["index", str(SEEDS), "--index", str(tmp_path / "idx"), "--ray"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read the model weights") and str(weights) in err
    assert len(err.splitlines()) == 1 and ray.is_initialized() == started  # no cluster was started for it
    assert not (tmp_path / "idx" / "manifest.json").exists()
