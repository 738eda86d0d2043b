"""The ``qa`` command: index, ask, docs, remove, eval, score, bench, feedback. ``main(argv) -> int``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from qa.errors import QAError
from qa.progress import progress_bar
from qa.settings import Settings


def _settings(args):
    over = {"index_dir": getattr(args, "index", None), "reader": getattr(args, "reader", None),
            "device": getattr(args, "device", None), "precision": getattr(args, "precision", None),
            "index_workers": getattr(args, "workers", None)}
    if getattr(args, "k", None):
        over["k"] = args.k
    if getattr(args, "threshold", None) is not None:
        over["not_found_threshold"] = args.threshold
    return Settings.from_env(**over)


def cmd_index(args) -> int:
    from qa.store.indexer import Indexer

    for p in args.paths:
        if not os.path.lexists(p):
            raise QAError(f"no such file or folder: {p}")
    progress = None if args.quiet else progress_bar()
    if args.ray and args.workers is not None:
        raise QAError("--workers is for indexing on this machine; with --ray, --encoders sets the parallelism")
    if args.ray:
        from qa.store.distributed import ray_sync

        report = ray_sync(_settings(args), args.paths, address=args.ray_address, num_encoders=args.encoders,
                          use_gpu=args.gpu, rebuild=args.rebuild, progress=progress)
    elif args.ray_address or args.encoders is not None or args.gpu:
        raise QAError("--ray-address, --encoders and --gpu go with --ray")
    else:
        report = Indexer(_settings(args)).sync(args.paths, rebuild=args.rebuild, progress=progress)
    for s in report.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_ask(args) -> int:
    from qa.assistant import Assistant

    settings = _settings(args)
    answer = Assistant.open(settings.index_dir, settings=settings).ask(args.question, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
        return 0
    if answer.text is None:
        print(f"Not found in the reports (confidence {answer.score:.2f}). Closest passages:")
    else:
        print(f"{answer.text}   (confidence {answer.score:.2f})")
    for i, c in enumerate(answer.citations, 1):
        where = f"{c.title} ({c.date})" if c.date else c.title
        print(f"[{i}] {where} — {c.source} chars {c.passage_start}-{c.passage_end}")
        print("    " + c.passage.replace("\n", " ")[:300])
    return 0


def cmd_docs(args) -> int:
    from qa.store.index import IndexStore

    store = IndexStore.open(_settings(args).index_dir)
    counts = store.chunk_counts()
    rows = [{"id": d.id, "title": d.title, "date": d.date, "source": d.source, "chunks": counts[d.id]}
            for d in store.data.documents]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(f"{r['id']}\t{r['date'] or '-'}\t{r['chunks']} chunks\t{r['title'][:70]}")
        print(f"{len(rows)} reports, {len(store)} chunks")
    return 0


def cmd_remove(args) -> int:
    from qa.store.indexer import Indexer
    from qa.store.index import IndexStore

    settings = _settings(args)
    known = set(IndexStore.open(settings.index_dir).documents)
    missing = [i for i in args.ids if i not in known]
    if missing:
        raise QAError(f"no report with id {missing[0]!r} in {settings.index_dir}/; see `qa docs`")
    print(Indexer(settings).remove(args.ids).summary())
    return 0


def cmd_score(args) -> int:
    from qa.eval.metrics import score_predictions, squad_gold

    gold = squad_gold(json.loads(Path(args.dataset).read_text(encoding="utf-8")))
    preds = json.loads(Path(args.predictions).read_text(encoding="utf-8"))
    na = json.loads(Path(args.na_probs).read_text()) if args.na_probs else None
    print(json.dumps(score_predictions(gold, preds, na), indent=1))
    return 0


def cmd_eval(args) -> int:
    from qa.eval.evaluate import compare, format_compare, format_table, load_records
    from qa.eval.run import run_eval

    if args.compare:
        cmp = compare(load_records(args.compare[0]), load_records(args.compare[1]))
        print(json.dumps(cmp, indent=1) if args.json else format_compare(cmp))
        return 0
    summary = run_eval(args.questions, _settings(args), corpus=args.corpus, gold_context=args.gold_context,
                       limit=args.limit, seed=args.seed, out=args.out, progress=not args.no_progress,
                       index_named=args.index is not None)
    if args.out:
        print(f"wrote {Path(args.out)}/predictions.json, records.csv, summary.json, report.html", file=sys.stderr)
    print(json.dumps(summary, indent=1) if args.json else format_table(
        {k: v for k, v in summary.items() if k != "setting"}))
    return 0


def cmd_bench(args) -> int:
    from qa.eval.bench import format_bench, run_bench

    res = run_bench(_settings(args), corpus=args.corpus, questions=args.questions, work=args.work)
    print(json.dumps(res, indent=1) if args.json else format_bench(res))
    return 0


def cmd_feedback(args) -> int:
    from qa.feedback.cli import run

    return run(args, _settings(args))


def cmd_serve(args) -> int:
    if not args.ray:
        raise QAError("qa serve runs replicas on Ray Serve: add --ray (for one process, run app.py)")
    if args.replicas < 1:
        raise QAError("--replicas must be >= 1")
    from qa.serving.allocator import relaunch_with_jemalloc
    from qa.serving.ray_serve import run
    from qa.store.index import current_generation

    if args.argv is None:  # run as the command (not main(argv) from Python): restart it with jemalloc preloaded,
        relaunch_with_jemalloc(["-m", "qa", *sys.argv[1:]])  # which a local cluster's replicas inherit
    settings = _settings(args)
    current_generation(settings.index_dir)  # no index: say so now, not in every replica
    print(f"report-qa: {args.replicas} replicas of {settings.index_dir}/ at http://{args.host}:{args.port}/ask",
          flush=True)
    run(settings.index_dir, settings, replicas=args.replicas, host=args.host, port=args.port,
        address=args.ray_address)
    return 0


def package_version() -> str:
    """The installed report-qa's version (its metadata), or "unknown" when run from a checkout not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("report-qa")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Cited extractive answers over a collection of reports.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    _index_parser(sub)
    _query_parsers(sub)
    _eval_parsers(sub)
    from qa.feedback.cli import add_parser as add_feedback_parser  # qa feedback list|stats|export|purge|delete

    add_feedback_parser(sub, _common).set_defaults(fn=cmd_feedback)
    _serve_parser(sub)
    return p


def _common(sp, reader=False):
    """The options every subcommand that opens the index takes (and the reader's, with ``reader``)."""
    sp.add_argument("--index", default=None, help="index folder (default: index/, or $QA_INDEX_DIR)")
    sp.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    sp.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16", "fp16"],
                    help="the models' arithmetic: auto (default: bf16 on a CPU that has it, fp16 on a GPU)")
    if reader:
        sp.add_argument("--reader", choices=["span", "rules"], default=None, help="answer reader (default span)")
        sp.add_argument("-k", type=int, default=None, help=f"passages to read (default {Settings.k})")
        sp.add_argument("--threshold", type=float, default=None, help="not-found confidence threshold")


def _index_parser(sub) -> None:
    sp = sub.add_parser("index", help="index reports (files or folders); only new or changed ones are embedded")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--rebuild", action="store_true", help="re-embed everything")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--workers", type=int, default=None, metavar="N",
                    help="processes that chunk reports ahead of the encoder (default: none on a CPU, most cores "
                         "with a GPU)")
    sp.add_argument("--ray", action="store_true", help="read and embed on a Ray cluster (needs report-qa[ray])")
    sp.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="with --ray: the cluster (auto on one of its nodes; default $RAY_ADDRESS, else a local one)")
    sp.add_argument("--encoders", type=int, default=None, metavar="N",
                    help="with --ray: encoder actors (default: up to one per CPU, or per GPU with --gpu)")
    sp.add_argument("--gpu", action="store_true", help="with --ray: one GPU per encoder actor")
    _common(sp)
    sp.set_defaults(fn=cmd_index)


def _query_parsers(sub) -> None:
    """ask, docs, remove, score."""
    sp = sub.add_parser("ask", help="answer a question from the index")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true", help="print Answer.to_dict() as JSON")
    _common(sp, reader=True)
    sp.set_defaults(fn=cmd_ask)

    sp = sub.add_parser("docs", help="list the reports in the index")
    sp.add_argument("--json", action="store_true")
    _common(sp)
    sp.set_defaults(fn=cmd_docs)

    sp = sub.add_parser("remove", help="remove reports from the index by id")
    sp.add_argument("ids", nargs="+")
    _common(sp)
    sp.set_defaults(fn=cmd_remove)

    sp = sub.add_parser("score", help="score a predictions file with the official SQuAD metric")
    sp.add_argument("dataset")
    sp.add_argument("predictions")
    sp.add_argument("--na-probs", default=None, help="no-answer probabilities {id: p} for best-threshold figures")
    sp.add_argument("--json", action="store_true", help="accepted like the other commands: the output is JSON anyway")
    sp.set_defaults(fn=cmd_score)


def _eval_parsers(sub) -> None:
    """eval, bench."""
    sp = sub.add_parser("eval", help="evaluate on a question set (JSONL, CSV, SQuAD JSON, conversations)")
    sp.add_argument("questions", nargs="?")
    sp.add_argument("--corpus", default=None, help="index this corpus (cached) instead of using --index")
    sp.add_argument("--gold-context", action="store_true", help="SQuAD: read each question's own paragraph")
    sp.add_argument("--limit", type=int, default=None, help="evaluate a random sample of N questions")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sp.add_argument("--out", default=None, help="write predictions.json, records.csv and report.html here")
    sp.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two --out folders")
    sp.add_argument("--no-progress", action="store_true")
    _common(sp, reader=True)
    sp.set_defaults(fn=cmd_eval)

    sp = sub.add_parser("bench", help="measure indexing speed, latency, cold start and memory")
    sp.add_argument("--corpus", default=None, help="default: ../shared/data/bbc-news when present, else seeds/")
    sp.add_argument("--questions", type=int, default=50, help="questions for the latency figures")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--work", default=".cache/bench", help="scratch folder for the benchmark index")
    _common(sp, reader=True)
    sp.set_defaults(fn=cmd_bench)


def _serve_parser(sub) -> None:
    sp = sub.add_parser("serve", help="answer questions over HTTP from replicas on a Ray cluster (Ray Serve)")
    sp.add_argument("--ray", action="store_true", help="deploy on Ray Serve (needs ray[serve])")
    sp.add_argument("--replicas", type=int, default=2, help="replicas of the assistant (default 2)")
    sp.add_argument("--host", default="127.0.0.1", help="address of the HTTP endpoint (default loopback)")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="the cluster (auto on one of its nodes; default $RAY_ADDRESS, else a local one)")
    _common(sp, reader=True)
    sp.set_defaults(fn=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args) or 0)
    except QAError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, never a raw traceback
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"error: unexpected {type(e).__name__}: {e} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
