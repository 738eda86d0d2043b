"""``qa eval``: run a question set against the assistant (open corpus or gold context), write the run's files."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from qa.errors import QAError
from qa.progress import progress_bar
from qa.settings import Settings
from qa.types import Document

CACHE = Path(".cache") / "eval-index"


def corpus_index(qs, settings: Settings, progress) -> Settings:
    """Index a question set's own corpus (SQuAD contexts) into a cached folder; the settings that open it."""
    from qa.store.indexer import Indexer

    h = hashlib.sha256()
    for doc_id, _, text in qs.corpus:
        h.update(doc_id.encode() + b"\0" + text.encode() + b"\0")
    h.update(json.dumps([settings.chunking.to_dict(), settings.precision]).encode())
    folder = CACHE / f"{Path(qs.name).stem}-{h.hexdigest()[:12]}"
    s = settings.with_(index_dir=str(folder))
    docs = [Document(doc_id, text, title, None, f"{qs.name}#{doc_id}") for doc_id, title, text in qs.corpus]
    Indexer(s).upsert(docs, progress=progress)
    return s


def folder_index(corpus: str, settings: Settings, progress) -> Settings:
    """Index a folder of reports (``--corpus``) into a cached folder of its own; the settings that open it."""
    from qa.store.indexer import Indexer

    key = hashlib.sha256(str(Path(corpus).resolve()).encode()).hexdigest()[:12]
    s = settings.with_(index_dir=str(CACHE / f"corpus-{key}"))
    Indexer(s).sync([corpus], progress=progress)
    return s


def run_eval(questions: str, settings: Settings, *, corpus: str | None = None, gold_context: bool = False,
             limit: int | None = None, seed: int = 0, out: str | None = None, progress: bool = True,
             index_named: bool = False) -> dict:
    """Evaluate the question set at ``questions``; the run's summary (``qa.eval.evaluate.summarize`` plus its
    setting). ``corpus``: index that folder instead of ``settings.index_dir``; a SQuAD set's own paragraphs are
    indexed when it carries them and no index was named (``index_named``). ``out``: write predictions.json,
    records.csv, summary.json and report.html there."""
    from qa.assistant import Assistant, GoldContextReader, make_reader
    from qa.eval.evaluate import evaluate, summarize
    from qa.eval.questions import load_questions, sample

    if not questions:
        raise QAError("name a question set: qa eval QUESTIONS [--index DIR | --corpus PATH]")
    qs = sample(load_questions(questions), limit, seed)
    bar = progress_bar() if progress else None
    if gold_context:
        target = GoldContextReader(make_reader(settings), settings)
    else:
        if corpus:
            settings = folder_index(corpus, settings, bar)
        elif qs.corpus and not index_named:
            settings = corpus_index(qs, settings, bar)
        target = Assistant.open(settings.index_dir, settings=settings)
        target.warm_up()
    records = evaluate(qs, target, k=settings.k, gold_context=gold_context, progress=progress)
    summary = summarize(records)
    summary["setting"] = {"questions": questions, "gold_context": gold_context, "limit": limit, "seed": seed,
                          "reader": settings.reader, "k": settings.k,
                          "index": None if gold_context else settings.index_dir}
    if out:
        write_run(records, summary, Path(out), questions)
    return summary


def write_run(records, summary: dict, out: Path, questions: str) -> None:
    """A run's files: predictions.json (official SQuAD form), records.csv, summary.json and report.html."""
    from qa.eval.evaluate import write_csv, write_predictions
    from qa.eval.report import write_html_report
    from qa.feedback.export import read_flagged

    out.mkdir(parents=True, exist_ok=True)
    write_predictions(records, out / "predictions.json")
    write_csv(records, out / "records.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    write_html_report(records, summary, out / "report.html", title=f"qa eval {Path(questions).name}",
                      flagged=read_flagged(questions))
