"""``qa feedback``: list, stats, export, purge and delete staff verdicts (the database is ``qa/feedback/store.py``'s)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qa.errors import IndexNotFound, QAError
from qa.feedback.store import DB_NAME, VERDICTS, FeedbackStore, check_date
from qa.feedback.export import (FORMATS, feedback_questions, format_row, format_stats, provenance, stats, to_jsonl,
                              to_squad)


def add_parser(sub, common):
    """The ``feedback`` subcommand and its actions, on the ``qa`` parser's subparsers."""
    sp = sub.add_parser("feedback", help="staff verdicts on the chat's answers: list, stats, export, purge, delete")
    common(sp)
    sp.add_argument("--db", default=None, help=f"feedback database (default: $QA_FEEDBACK_DB, else {DB_NAME} in the "
                                               "index folder)")
    acts = sp.add_subparsers(dest="action", required=True)

    def filters(p) -> None:
        p.add_argument("--verdict", choices=VERDICTS, default=None)
        p.add_argument("--since", default=None, metavar="YYYY-MM-DD", help="verdicts given on or after this day (UTC)")
        p.add_argument("--until", default=None, metavar="YYYY-MM-DD", help="verdicts given on or before this day")
        p.add_argument("--report", default=None, metavar="ID", help="answers taken from, or corrected to, this report")

    p = acts.add_parser("list", help="the verdicts, oldest first (stale: the report was removed or changed since)")
    filters(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = acts.add_parser("stats", help="share of each verdict, by ISO week and by question type")
    filters(p)
    p.add_argument("--json", action="store_true")
    p = acts.add_parser("export", help="the verdicts as a question set that `qa eval` runs as is")
    filters(p)
    p.add_argument("--format", choices=FORMATS, default="jsonl",
                   help="jsonl (default) or squad (v2.0 JSON carrying the reports' text, so it needs no index)")
    p.add_argument("--out", "-o", default=None, help="file to write (default: standard output)")
    p = acts.add_parser("purge", help="delete the answers asked before a date, with their verdicts")
    p.add_argument("--before", required=True, metavar="YYYY-MM-DD")
    p = acts.add_parser("delete", help="delete everything one user asked or said")
    p.add_argument("--user", required=True)
    return sp


def database(args, index_dir: str) -> Path:
    return Path(args.db or os.environ.get("QA_FEEDBACK_DB") or Path(index_dir) / DB_NAME)


def current_reports(index_dir: str) -> dict[str, str] | None:
    """{report id: sha256} of the live index (to mark stale verdicts); None when there is no index."""
    from qa.store.index import current_generation, read_manifest

    try:
        gen = current_generation(Path(index_dir))
    except (IndexNotFound, QAError):
        return None
    return dict(read_manifest(gen, Path(index_dir)).get("document_hashes", {}))


def run(args, settings) -> int:
    path = database(args, settings.index_dir)
    if not path.is_file():
        raise QAError(f"no feedback database at {path}; the chat creates it with the first answer "
                      "(or pass --db / $QA_FEEDBACK_DB)")
    store = FeedbackStore(path)
    if args.action == "purge":
        print(f"deleted {store.purge(check_date(args.before, '--before'))} answers asked before {args.before} "
              "(with their verdicts)")
        return 0
    if args.action == "delete":
        print(f"deleted {store.delete_user(args.user)} answers and verdicts of user {args.user!r}")
        return 0
    reports = current_reports(settings.index_dir)
    if reports is None:
        print(f"note: no index at {settings.index_dir}/, so stale verdicts (removed reports) cannot be marked",
              file=sys.stderr)
    chosen = {"verdict": args.verdict, "since": args.since, "until": args.until, "report": args.report}
    rows = store.rows(reports=reports, **chosen)
    if args.action == "list":
        for r in rows:
            print(json.dumps(r.to_dict(), ensure_ascii=False) if args.json else format_row(r))
        if not args.json:
            print(f"{len(rows)} verdicts", file=sys.stderr)
        return 0
    if args.action == "stats":
        s = stats(rows)
        print(json.dumps(s, indent=1) if args.json else format_stats(s))
        return 0
    questions, skipped = feedback_questions(rows)
    prov = provenance(rows, questions, skipped, str(path), chosen)
    if args.format == "squad":
        from qa.store.index import IndexStore

        payload, _ = to_squad(questions, prov, IndexStore.open(settings.index_dir).documents)
        prov = payload["provenance"]
        text = json.dumps(payload, ensure_ascii=False, indent=1) + "\n"
    else:
        text = to_jsonl(questions, prov)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"{prov['questions']} questions ({prov['answerable']} answerable, {prov['unanswerable']} unanswerable) from "
          f"{prov['verdicts']} verdicts; left out: {prov['left_out'] or 'none'}"
          + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    return 0

