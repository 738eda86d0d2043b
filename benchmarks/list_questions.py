"""The hand-written list questions (tests/data/list_questions.jsonl): is each answered with the whole list?

    .venv/bin/python benchmarks/list_questions.py [--shared ../shared] [--out benchmarks/results/list-questions.json]

Indexes the seed report and the ten BBC articles the questions are about (from ``../shared/data/bbc-news``, or
``$QA_SHARED_DIR``; the articles are not copied into the repository), asks every question through
``Assistant.ask`` and prints one JSON object: exact match per question and in all.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.assistant import Assistant  # noqa: E402
from qa.eval.metrics import exact_score  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=os.environ.get("QA_SHARED_DIR", str(ROOT.parent / "shared")))
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    questions = [json.loads(line) for line in (ROOT / "tests/data/list_questions.jsonl").read_text().splitlines()
                 if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for q in questions:
            src = (ROOT / q["source"]) if q["source"].startswith("seeds/") else Path(args.shared) / "data" / q["source"]
            if not src.exists():
                raise SystemExit(f"{src} is missing: pass --shared (the folder holding data/bbc-news)")
            dst = docs / src.parent.name / src.name
            dst.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, dst)
        assistant = Assistant.from_paths([docs], index_dir=Path(tmp) / "index")
        rows = []
        for q in questions:
            ans = assistant.ask(q["question"])
            rows.append({"id": q["id"], "em": exact_score(ans.text or "", q["answers"]), "answer": ans.text,
                         "confidence": ans.score})
    result = {"questions": len(rows), "whole": sum(r["em"] for r in rows), "rows": rows}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
