#!/usr/bin/env bash
# Every figure issue #13 reports for a reader, in one command, written to benchmarks/results/*-TAG.json:
#   bash benchmarks/reader_report.sh TAG [READER_DIR]      (READER_DIR: default the shipped qa/weights/reader)
# SQuAD v2.0 dev (all 11,873, the reader alone on each question's paragraph, shipped threshold), SQuAD v1.1 dev
# (all 10,570, paragraph given, always answering), SQuAD v1.1 dev as an open corpus (1,000 questions, seed 0), the
# seed report's questions and the hand-written list questions. Needs ../shared (or QA_SHARED_DIR). For reporting
# only: nothing here chooses a reader or a setting. A file is written only when its command succeeds.
set -euo pipefail
tag=${1:?usage: reader_report.sh TAG [READER_DIR]}
reader=$(realpath "${2:-$(dirname "$0")/../qa/weights/reader}")  # an explicit folder wins over QA_READER_MODEL
shared=$(realpath "${QA_SHARED_DIR:-$(dirname "$0")/../../shared}")
cd "$(dirname "$0")/.."
export QA_READER_MODEL=$reader
qa=".venv/bin/qa"
res=benchmarks/results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # run NAME CMD...: CMD's stdout to $res/NAME-$tag.json, only if it succeeds
    local name=$1; shift
    "$@" > "$work/out.json"
    mv "$work/out.json" "$res/$name-$tag.json"
}
run squad-v2.0-gold $qa eval "$shared/data/squad/dev-v2.0.json" --gold-context --json --no-progress
run squad-v1.1-gold-all $qa eval "$shared/data/squad/dev-v1.1.json" --gold-context --threshold 0 --json --no-progress
run open-corpus-v1.1-seed0 $qa eval "$shared/data/squad/dev-v1.1.json" --limit 1000 --seed 0 --json --no-progress
$qa index seeds/ --index "$work/seed" -q > /dev/null
run seed-questions $qa eval tests/data/seed_questions.jsonl --index "$work/seed" --json --no-progress
.venv/bin/python benchmarks/list_questions.py --shared "$shared" --out "$work/list.json" > /dev/null
mv "$work/list.json" "$res/list-questions-$tag.json"
.venv/bin/python - "$tag" "$reader" <<'PY'
import json, sys
from pathlib import Path
tag, reader = sys.argv[1], sys.argv[2]
r = lambda name: json.load(open(f"benchmarks/results/{name}-{tag}.json"))
v2, v1, oc, sd, ls = (r("squad-v2.0-gold"), r("squad-v1.1-gold-all"), r("open-corpus-v1.1-seed0"),
                      r("seed-questions"), r("list-questions"))
print(json.dumps({
    "reader": reader,
    "null_threshold": json.loads((Path(reader) / "reader_config.json").read_text())["null_threshold"],
    "ask_threshold (questions asked of a collection)": json.loads(
        (Path(reader) / "reader_config.json").read_text()).get("ask_threshold"),
    "v2.0 EM/F1": [round(v2["exact_match"], 1), round(v2["f1"], 1)],
    "v2.0 HasAns F1 / NoAns": [round(v2["has_answer"]["f1"], 1), round(v2["no_answer"]["accuracy"], 1)],
    "v2.0 best-threshold F1 (thresholds at least as strict as the shipped one)": round(v2["best_f1_thresh"]["f1"], 1),
    "v1.1 gold EM/F1": [round(v1["exact_match"], 1), round(v1["f1"], 1)],
    "v1.1 open EM/F1": [round(oc["exact_match"], 1), round(oc["f1"], 1)],
    "open ask p50 ms (a question end to end, reading included)": oc.get("latency_ms", {}).get("p50"),
    "seed EM/F1": [round(sd["exact_match"], 1), round(sd["f1"], 1)],
    "seed unanswerables abstained %": sd["no_answer"]["accuracy"],
    "lists whole": [ls["whole"], ls["questions"]],
}, indent=1))
PY
