#!/usr/bin/env bash
# The one prepared command for a GPU machine (see training/README.md):
#   - tokenises ../shared/data/qa-train once (carried as .gpu/qa-train.tar.xz),
#   - trains four reader recipes in parallel on the one GPU, each within $BUDGET seconds,
#   - keeps the best by validation score (training/pick_best.py) and returns its weights in parts,
#   - benchmarks embedding throughput (benchmarks/gpu_encode.py).
# Carried inputs: .gpu/minilm (all-MiniLM-L6-v2 in fp16), .gpu/qa-train.tar.xz, .gpu/squad_contexts.json.xz.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:-/tmp/out}; W=${WORK:-/tmp/w}; BUDGET=${BUDGET:-300}; PY=${PY:-python3}
mkdir -p "$W" "$OUT"
LOG="$OUT/train_logs.txt"
{ date; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"; } > "$LOG" 2>&1
tar -xJf .gpu/qa-train.tar.xz -C "$W"
T0=$(date +%s)
TOKENIZERS_PARALLELISM=false $PY training/train_reader.py --base .gpu/minilm --data "$W/qa-train" --out "$W/prep" \
  --cache "$W/cache.pt" --prepare-only ${EXTRA:-} >> "$LOG" 2>&1 || { echo "prepare failed" >> "$LOG"; exit 1; }
echo "prepare took $(( $(date +%s) - T0 )) s" >> "$LOG"
run() {
  local name=$1; shift
  TOKENIZERS_PARALLELISM=false $PY training/train_reader.py --base .gpu/minilm --data "$W/qa-train" \
    --cache "$W/cache.pt" --out "$W/run_$name" --time-budget "$BUDGET" --no-resume "$@" ${EXTRA:-} > "$W/log_$name.txt" 2>&1
}
run A --lr 1e-4 --epochs 3 --batch 64 --wiki-weight 1 &
run B --lr 2e-4 --epochs 4 --batch 64 --wiki-weight 3 &
run C --lr 1.5e-4 --epochs 4 --batch 32 --wiki-weight 2 &
run D --lr 3e-4 --epochs 4 --batch 128 --wiki-weight 3 &
wait
echo "training took $(( $(date +%s) - T0 )) s" >> "$LOG"
for f in "$W"/log_*.txt; do echo "=== $f"; grep -vE "Loading weights|it/s\]" "$f"; done >> "$LOG"
$PY training/pick_best.py "$W" "$OUT" >> "$LOG" 2>&1
TOKENIZERS_PARALLELISM=true timeout 120 $PY benchmarks/gpu_encode.py --contexts .gpu/squad_contexts.json.xz \
  --model .gpu/minilm --repeat ${REPEAT:-5} --json "$OUT/bench_gpu.json" >> "$LOG" 2>&1
echo "all done $(( $(date +%s) - T0 )) s" >> "$LOG"
