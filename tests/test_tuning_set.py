"""benchmarks/tuning_set.py: the open-corpus set that retrieval and ranking settings are chosen on, not SQuAD dev."""
import json
import sys

from conftest import ROOT, need_shared

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training"))
from reader_data import _is_val, load_examples  # noqa: E402
from tuning_set import SOURCE, build  # noqa: E402

from qa.eval.questions import load_questions  # noqa: E402


def test_questions_come_only_from_the_readers_validation_articles(tmp_path):
    data = need_shared("data", "qa-train")
    out = build(data)
    arts = out["data"]
    assert out["stats"] == {"questions": 723, "question_paragraphs": 144, "paragraphs": 1581, "articles": 48}
    for art in arts:
        asked = sum(len(p["qas"]) for p in art["paragraphs"])
        if not _is_val(SOURCE, art["title"]):
            assert asked == 0  # training articles are distractors only
    # the same questions the reader's validation split holds, answerable ones, none from its training split
    train, val, _ = load_examples(data)
    val_ids = {e.qid for e in val if e.source == SOURCE and e.answers}
    train_ids = {e.qid for e in train if e.source == SOURCE}
    ids = {f"{SOURCE}/{qa['id']}" for art in arts for p in art["paragraphs"] for qa in p["qas"]}
    assert ids == val_ids and not ids & train_ids
    # and qa's own loader reads it as a SQuAD file: every paragraph in the corpus, every answer in its paragraph
    f = tmp_path / "set.json"
    f.write_text(json.dumps(out))
    qs = load_questions(f)
    assert len(qs.corpus) == 1581 and len(qs.questions) == 723
    ctx = {doc_id: text for doc_id, _, text in qs.corpus}
    assert all(any(a in ctx[q.doc_id] for a in q.answers) for q in qs.questions)
