"""``qa eval``: run a question set against the assistant (open corpus or gold context) and report."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from qa.errors import QAError
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


def run_eval(args, settings: Settings) -> int:
    from qa.assistant import Assistant, GoldContextReader, make_reader
    from qa.eval.report import write_html_report
    from qa.eval.evaluate import (compare, evaluate, format_compare, format_table, load_records, summarize,
                           write_csv, write_predictions)
    from qa.eval.questions import load_questions, sample

    if args.compare:
        cmp = compare(load_records(args.compare[0]), load_records(args.compare[1]))
        print(json.dumps(cmp, indent=1) if args.json else format_compare(cmp))
        return 0
    if not args.questions:
        raise QAError("name a question set: qa eval QUESTIONS [--index DIR | --corpus PATH]")
    qs = sample(load_questions(args.questions), args.limit, args.seed)
    progress = None
    if not args.no_progress:
        from qa.progress import progress_bar

        progress = progress_bar()
    if args.gold_context:
        target = GoldContextReader(make_reader(settings), settings)
    else:
        if args.corpus:
            from qa.store.indexer import Indexer

            s = settings.with_(index_dir=str(CACHE / ("corpus-" + hashlib.sha256(
                str(Path(args.corpus).resolve()).encode()).hexdigest()[:12])))
            Indexer(s).sync([args.corpus], progress=progress)
            settings = s
        elif qs.corpus and args.index is None:
            settings = corpus_index(qs, settings, progress)
        target = Assistant.open(settings.index_dir, settings=settings)
        target.warm_up()
    records = evaluate(qs, target, k=settings.k, gold_context=args.gold_context, progress=not args.no_progress)
    summary = summarize(records)
    summary["setting"] = {"questions": args.questions, "gold_context": args.gold_context, "limit": args.limit,
                          "seed": args.seed, "reader": settings.reader, "k": settings.k,
                          "index": None if args.gold_context else settings.index_dir}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_predictions(records, out / "predictions.json")
        write_csv(records, out / "records.csv")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        from qa.feedback.export import read_flagged

        write_html_report(records, summary, out / "report.html", title=f"qa eval {Path(args.questions).name}",
                          flagged=read_flagged(args.questions))
        print(f"wrote {out}/predictions.json, records.csv, summary.json, report.html", file=sys.stderr)
    print(json.dumps(summary, indent=1) if args.json else format_table(
        {k: v for k, v in summary.items() if k != "setting"}))
    return 0
