#!/usr/bin/env bash
# Every figure issue #13 reports for a reader, in one command, written to benchmarks/results/*-TAG.json:
#   bash benchmarks/reader_report.sh TAG [READER_DIR]      (READER_DIR: default the shipped qa/weights/reader)
# SQuAD v2.0 dev (all 11,873, the reader alone on each question's paragraph, shipped threshold), SQuAD v1.1 dev
# (all 10,570, paragraph given, always answering), SQuAD v1.1 dev as an open corpus (1,000 questions, seed 0), the
# seed report's questions and the hand-written list questions. Needs ../shared (or QA_SHARED_DIR). For reporting
# only: nothing here chooses a reader or a setting.
set -euo pipefail

tag=${1:?usage: reader_report.sh TAG [READER_DIR]}
cd "$(dirname "$0")/.."
shared=${QA_SHARED_DIR:-../shared}
if [ -n "${2:-}" ]; then export QA_READER_MODEL=$2; fi
qa=".venv/bin/qa"
res=benchmarks/results
seed_index=$(mktemp -d)
trap 'rm -rf "$seed_index"' EXIT
$qa eval "$shared/data/squad/dev-v2.0.json" --gold-context --json --no-progress > "$res/squad-v2.0-gold-$tag.json"
$qa eval "$shared/data/squad/dev-v1.1.json" --gold-context --threshold 0 --json --no-progress > "$res/squad-v1.1-gold-all-$tag.json"
$qa eval "$shared/data/squad/dev-v1.1.json" --limit 1000 --seed 0 --json --no-progress > "$res/open-corpus-v1.1-seed0-$tag.json"
$qa index seeds/ --index "$seed_index/seed" > /dev/null
$qa eval tests/data/seed_questions.jsonl --index "$seed_index/seed" --json --no-progress > "$res/seed-questions-$tag.json"
QA_SHARED_DIR=$shared .venv/bin/python benchmarks/list_questions.py --out "$res/list-questions-$tag.json" > /dev/null
.venv/bin/python - "$tag" <<'PY'
import json, sys
tag = sys.argv[1]
r = lambda name: json.load(open(f"benchmarks/results/{name}-{tag}.json"))
v2, v1, oc, sd, ls = (r("squad-v2.0-gold"), r("squad-v1.1-gold-all"), r("open-corpus-v1.1-seed0"),
                      r("seed-questions"), r("list-questions"))
print(json.dumps({
    "v2.0 EM/F1": [round(v2["exact_match"], 1), round(v2["f1"], 1)],
    "v2.0 HasAns F1 / NoAns": [round(v2["has_answer"]["f1"], 1), round(v2["no_answer"]["accuracy"], 1)],
    "v2.0 best-threshold F1": round(v2["best_f1_thresh"]["f1"], 1),
    "v1.1 gold EM/F1": [round(v1["exact_match"], 1), round(v1["f1"], 1)],
    "v1.1 open EM/F1": [round(oc["exact_match"], 1), round(oc["f1"], 1)],
    "open reading p50 ms": oc.get("latency_ms", {}).get("p50"),
    "seed EM/F1": [round(sd["exact_match"], 1), round(sd["f1"], 1)],
    "seed unanswerables abstained %": sd["no_answer"]["accuracy"],
    "lists whole": [ls["whole"], ls["questions"]],
}, indent=1))
PY
