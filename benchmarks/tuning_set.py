"""An open-corpus question set for choosing retrieval and answer-ranking settings without touching SQuAD dev.

    .venv/bin/python benchmarks/tuning_set.py [--data ../shared/data/qa-train] [--out build/tuning/new_wiki-val-open.json]
    .venv/bin/python benchmarks/retrieval.py --squad build/tuning/new_wiki-val-open.json
    .venv/bin/python benchmarks/answer_ranking.py --squad build/tuning/new_wiki-val-open.json

SQuAD v1.1/v2.0 dev are evaluation data only, so the settings the open-corpus figures depend on (fusion mix,
passages read, how answers are ranked across passages) are chosen here: SQuADShifts' new Wikipedia set
(``new_wiki_v1.0``, built the way SQuAD was: crowd-written questions on recent Wikipedia articles), with the
questions of the reader's **validation** articles only (the same split ``training/reader_data.py`` holds out, so
the reader never trained on them) and **every** paragraph of the set as the corpus (1,581, near SQuAD dev's
2,067), the training articles' paragraphs serving as distractors. Written in SQuAD JSON, so ``qa eval`` and the
benchmarks read it as they read SQuAD dev.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from reader_data import _is_val, _open, _stem  # noqa: E402

SOURCE = "new_wiki_v1.0"


def build(data_dir: Path) -> dict:
    path = next((p for p in sorted(data_dir.iterdir()) if _stem(p) == SOURCE), None)
    if path is None:
        raise FileNotFoundError(f"{data_dir}: no {SOURCE}.json")
    data = json.load(_open(path))["data"]
    if len(data) < 20:  # reader_data splits files of fewer articles by paragraph, which this does not follow
        raise ValueError(f"{path}: {len(data)} articles; expected the by-article split of 20 or more")
    arts, n_q, n_val_par = [], 0, 0
    for art in data:
        title = str(art.get("title", ""))
        val = _is_val(SOURCE, title)
        paras = []
        for para in art["paragraphs"]:
            qas = []
            if val:
                n_val_par += 1
                qas = [{"id": qa["id"], "question": qa["question"],
                        "answers": [{"text": a["text"], "answer_start": a["answer_start"]}
                                    for a in qa.get("answers", []) if a.get("text")]}
                       for qa in para["qas"] if not qa.get("is_impossible") and any(a.get("text")
                                                                                   for a in qa.get("answers", []))]
                n_q += len(qas)
            paras.append({"context": para["context"], "qas": qas})
        arts.append({"title": title, "paragraphs": paras})
    return {"version": f"{SOURCE} validation articles as an open corpus (report-qa benchmarks/tuning_set.py)",
            "stats": {"questions": n_q, "question_paragraphs": n_val_par,
                      "paragraphs": sum(len(a["paragraphs"]) for a in arts), "articles": len(arts)},
            "data": arts}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/qa-train")
    p.add_argument("--out", default="build/tuning/new_wiki-val-open.json")
    a = p.parse_args(argv)
    out = build(Path(a.data))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(a.out)
    print(json.dumps({"out": a.out, **out["stats"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
