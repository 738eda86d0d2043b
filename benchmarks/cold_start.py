"""Cold start on its own: fresh processes that open an index, load the models and answer one question.

    .venv/bin/python benchmarks/cold_start.py --index /tmp/seed [--repeat 5] [--checkout OTHER_TREE ...]

Each run is a new Python process (imports included), timed from its first line to the first answer, with its peak
resident memory. ``--checkout`` adds other source trees of this repository (e.g. ``git worktree add /tmp/old
HEAD~3``); their runs are interleaved with this tree's, so that both see the same machine, and the medians are
printed side by side. Build the index first: ``qa index seeds/ --index /tmp/seed``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = """
import time; t = time.perf_counter()
import sys; sys.path.insert(0, {tree!r})
from qa.assistant import Assistant
from qa.settings import Settings
a = Assistant.open({index!r}, settings=Settings())
answer = a.ask({question!r})
s = time.perf_counter() - t
import json, qa
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{'seconds': s, 'peak_rss_mb': int(hwm) / 1024, 'answer': answer.text, 'qa': qa.__file__,
                   'transformers_bert_imported': 'transformers.models.bert.modeling_bert' in sys.modules,
                   'transformers_imported': 'transformers' in sys.modules}}))
"""


def run(tree: Path, index: str, question: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CODE.format(tree=str(tree), index=index, question=question)],
                         capture_output=True, text=True, timeout=300, cwd="/")
    if out.returncode:
        raise SystemExit(f"{tree}: {out.stderr.strip().splitlines()[-1:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res["qa"].startswith(str(tree)):
        raise SystemExit(f"{tree}: imported qa from {res['qa']}, not from this tree")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True)
    p.add_argument("--question", default="When did Iraq pass its anti-trafficking law?")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--checkout", nargs="*", default=[], help="other source trees to compare, interleaved")
    a = p.parse_args(argv)
    trees = [ROOT] + [Path(t).resolve() for t in a.checkout]
    runs: dict[str, list[dict]] = {str(t): [] for t in trees}
    for i in range(a.repeat):
        for t in trees:
            r = run(t, a.index, a.question)
            runs[str(t)].append(r)
            print(f"{i + 1}/{a.repeat} {t}: {r['seconds']:.2f} s, {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
    out = {t: {"cold_start_s_median": round(statistics.median(r["seconds"] for r in rs), 2),
               "cold_start_s": [round(r["seconds"], 2) for r in rs],
               "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in rs)),
               "answers": sorted({r["answer"] for r in rs}),
               "transformers_bert_imported": rs[0]["transformers_bert_imported"],
               "transformers_imported": rs[0].get("transformers_imported")}
           for t, rs in runs.items()}
    print(json.dumps({"index": a.index, "question": a.question, "repeat": a.repeat, "trees": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
