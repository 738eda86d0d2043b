#!/usr/bin/env bash
# What the open issues need from a GPU, in one device call (within its 600 s limit):
#   1. benchmarks/gpu_index.sh (issue #6): qa's encoder and the whole indexing pipeline with 1-12 chunking
#      workers, next to SentenceTransformer.encode; capped at INDEX_S seconds (about 2 minutes needed)
#   2. training/gpu_run_distill.sh (issue #3): teachers, then a distilled student, with answer-sentence-cut
#      negatives; capped at TOTAL seconds
#
#   device call: carry [".gpu/minilm-arch", ".gpu/wheels", ".gpu/squad_contexts.json.xz", ".gpu/qa-train.tar.xz"]
#                (about 11 MB beside the ~47 MB tree), timeout_s 600
#   command:     OUT=$OUT bash benchmarks/gpu_session.sh
#
# Comes back in $OUT (8 files): gpu_index.tar (gpu-index.json and its log) and the distillation's 7 files
# (training/README.md says how to install the student's weights if it validates better than the shipped reader).
# CPU dry run (small sizes): DRY_RUN=1 BUDGET1=60 TOTAL=420 INDEX_EXTRA="--limit 300 --skip-st" WORKERS=1,2 REPEAT=1 PY=.venv/bin/python \
#   MINILM=/nonexistent OUT=/tmp/gs/out WORK=/tmp/gs/w bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:-/tmp/out}; W=${WORK:-/tmp/gs-work}; INDEX_S=${INDEX_S:-150}
export TOTAL=${TOTAL:-400} BUDGET1=${BUDGET1:-150}
mkdir -p "$OUT" "$W/index"
T0=$(date +%s)
timeout "$INDEX_S" env OUT="$W/index" WORK="$W/index-work" EXTRA="${INDEX_EXTRA:-}" bash benchmarks/gpu_index.sh \
  > /dev/null 2>&1 || echo "gpu_index.sh stopped: exit $?" >> "$W/index/gpu-index-log.txt"
tar -cf "$OUT/gpu_index.tar" -C "$W/index" .
echo "gpu_index.sh took $(( $(date +%s) - T0 )) s"
OUT="$OUT" WORK="$W/distill" bash training/gpu_run_distill.sh
echo "all done in $(( $(date +%s) - T0 )) s"
