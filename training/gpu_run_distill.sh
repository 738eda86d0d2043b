#!/usr/bin/env bash
# Ensemble self-distillation: one prepared command for a GPU machine (training/README.md, "Ensemble
# distillation"). PREPARED, NOT YET RUN ON A GPU; the same logic was dry-run on a CPU (DRY_RUN=1).
#   phase 1: N teacher readers trained in parallel on the one GPU, each within BUDGET1 seconds of training,
#   phase 2: one student trained on the hard labels plus the KL to the teachers' averaged start/end
#            distributions (train_reader.py --teachers), within BUDGET2 seconds (shrunk if phase 1 overran, so
#            that the whole command ends within TOTAL seconds),
#   soup:    weighted averages of the student and its partner (training/soup.py), when SOUP_MIN seconds are left,
#   then the student's (or the soup's, if it validates higher) fp16 weights in 15 MiB parts, reader_meta.tar, summaries and logs in $OUT (pick_best.py).
# Starting point: $MINILM (all-MiniLM-L6-v2 in fp16) when it was carried, else the tracked shipped reader
# qa/weights/reader (continued training: its encoder AND its start/end head are already trained). The two do
# not fit one device call together (45 MB + 45 MB > 64 MiB), so the usual call carries only the data:
#   carry: .gpu/qa-train.tar.xz (7 MB; the working tree with the reader weights is ~47 MB)
#   command: OUT=$OUT bash training/gpu_run_distill.sh          (timeout_s 600)
# Expected wall time on one H200 with the defaults: ~40 s unpack + tokenise, ~200 s phase 1, ~220 s phase 2,
# ~10 s output: ~8 minutes (TOTAL=540 is the hard cap), plus the machine's 2-3 minute start.
# CPU dry run of the same logic (tiny sizes and budgets, outputs under /tmp):
#   DRY_RUN=1 PY=.venv/bin/python OUT=/tmp/distill/out WORK=/tmp/distill/w bash training/gpu_run_distill.sh
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; W=${WORK:-/tmp/wd}; PY=${PY:-python3}
DRY_RUN=${DRY_RUN:-0}
if [ "$DRY_RUN" = 1 ]; then  # same steps, sizes for a 2-core CPU; budgets in seconds
  BUDGET1=${BUDGET1:-60}; BUDGET2=${BUDGET2:-60}; TOTAL=${TOTAL:-420}; N=${N:-2}; E1=${E1:-1}
  SLACK=${SLACK:-120}; RESERVE=${RESERVE:-40}; MIN2=${MIN2:-10}
  SIZE="--device cpu --workers 1 --max-train-examples 64 --max-val-examples 32 --max-steps 4 --max-len 192 --stride 64 --batch 8"
else
  SIZE=""
fi
BUDGET1=${BUDGET1:-180}  # seconds of training per teacher (phase 1; all N share the GPU)
BUDGET2=${BUDGET2:-180}  # seconds of training for the student (phase 2; alone on the GPU, N teachers in fp16)
TOTAL=${TOTAL:-540}      # hard cap on the whole command; phase 2's budget shrinks to keep to it
SLACK=${SLACK:-120}      # beyond its budget a run may take this long (loading, last evaluations, saving)
RESERVE=${RESERVE:-60}   # kept free after phase 2's budget (student's last evaluations, saving, output)
MIN2=${MIN2:-45}         # below this many seconds left for the student, skip it and return the best teacher
N=${N:-4}; E1=${E1:-2}; E2=${E2:-2}; B1=${B1:-64}; B2=${B2:-64}
ALPHA=${ALPHA:-0.5}; TEMP=${TEMP:-2.0}
RNEG=${RNEG:-0.2}        # share of answerable questions also given their paragraph with the answer sentence cut out
#                          (train_reader.py --removed-negatives; in training and validation alike; 0 = as before)
SOUP=${SOUP:-1}           # then try weight averages of the student and its partner (training/soup.py)
SOUP_MIN=${SOUP_MIN:-40}  # seconds that must be left of TOTAL to try them
INIT=${INIT:-base}       # the student starts from: base (MiniLM, or the shipped reader) | best (best teacher)
MINILM=${MINILM:-.gpu/minilm}; DATA_TAR=${DATA_TAR:-.gpu/qa-train.tar.xz}
WIKI=(1 2 3 2)           # new_wiki sampling weight per teacher (cycled when N > 4); seeds 21, 22, ...
if [ -f "$MINILM/model.safetensors" ]; then
  MODE=scratch; BASE=$MINILM; FROM=""
  LRS=(1e-4 1.5e-4 2e-4 3e-4); LR2=${LR2:-1.5e-4}
else  # continued training from the shipped reader: lower learning rates
  MODE=continued; BASE=qa/weights/reader; FROM="--init qa/weights/reader"
  LRS=(3e-5 5e-5 7e-5 1e-4); LR2=${LR2:-5e-5}
fi
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
mkdir -p "$W" "$OUT"; rm -rf "$W/t" "$W/s" "$W/tpick"; mkdir -p "$W/t" "$W/s" "$W/tpick"
LOG="$OUT/train_logs.txt"
{ date; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"; nproc
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  echo "mode $MODE (base $BASE) N=$N BUDGET1=$BUDGET1 BUDGET2=$BUDGET2 TOTAL=$TOTAL E1=$E1 E2=$E2 alpha=$ALPHA T=$TEMP INIT=$INIT lr2=$LR2 removed_negatives=$RNEG soup=$SOUP dry_run=$DRY_RUN"
} > "$LOG" 2>&1
tar -xJf "$DATA_TAR" -C "$W" || { echo "cannot unpack $DATA_TAR" | tee -a "$LOG"; exit 1; }
COMMON="--base $BASE --data $W/qa-train --cache $W/cache.pt --no-resume --removed-negatives $RNEG"
$PY training/train_reader.py $COMMON --out "$W/prep" --prepare-only $SIZE ${EXTRA:-} >> "$LOG" 2>&1 \
  || { echo "prepare failed" | tee -a "$LOG"; exit 1; }
echo "prepare done at $(el) s" >> "$LOG"

# phase 1: teachers in parallel
for k in $(seq 1 "$N"); do
  i=$(( (k - 1) % 4 ))
  timeout $(( BUDGET1 + SLACK )) $PY training/train_reader.py $COMMON $FROM --out "$W/t/run_T$k" \
    --time-budget "$BUDGET1" --seed $(( 20 + k )) --lr "${LRS[$i]}" --epochs "$E1" --batch "$B1" \
    --wiki-weight "${WIKI[$i]}" $SIZE ${EXTRA:-} > "$W/log_T$k.txt" 2>&1 &
done
wait
echo "phase 1 done at $(el) s" >> "$LOG"
TEACHERS=$(ls -d "$W"/t/run_T*/ 2>/dev/null | while read -r d; do [ -f "$d/training_summary.json" ] && echo "${d%/}"; done | paste -sd, -)
[ -n "$TEACHERS" ] || { echo "no teacher finished" | tee -a "$LOG"; for f in "$W"/log_T*.txt; do echo "=== $f"; tail -20 "$f"; done >> "$LOG"; exit 1; }
$PY training/pick_best.py "$W/t" "$W/tpick" >> "$LOG" 2>&1
BEST_T=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['best'])" "$W/tpick/summary_all.json")

# phase 2: the student, within what is left of TOTAL
LEFT=$(( TOTAL - $(el) - RESERVE )); B2S=$(( LEFT < BUDGET2 ? LEFT : BUDGET2 ))
if [ "$INIT" = best ]; then SINIT="--init $W/t/$BEST_T"; else SINIT=$FROM; fi
echo "phase 2: teachers $TEACHERS; student init: ${SINIT:-$BASE}; budget $B2S s" >> "$LOG"
if [ "$B2S" -ge "$MIN2" ]; then
  timeout $(( TOTAL - $(el) - 10 )) $PY training/train_reader.py $COMMON $SINIT --out "$W/s/run_student" \
    --teachers "$TEACHERS" --distill-alpha "$ALPHA" --distill-temperature "$TEMP" --time-budget "$B2S" \
    --seed 13 --lr "$LR2" --epochs "$E2" --batch "$B2" --wiki-weight 2 $SIZE ${EXTRA:-} > "$W/log_student.txt" 2>&1
  RC=$?; echo "phase 2 done at $(el) s (rc $RC)" >> "$LOG"
else
  echo "phase 2 skipped: only $B2S s left" >> "$LOG"
fi
# soup: weighted averages of the student with its partner (the shipped reader it was continued from, or the best
# teacher when training started from MiniLM), chosen on the same validation split; the alphas include 0 and 1,
# so pick_best.py below returns the soup only where it validates above the student scored the same way (a = 1)
LEFT=$(( TOTAL - $(el) ))
if [ "$SOUP" = 1 ] && [ -f "$W/s/run_student/training_summary.json" ] && [ "$LEFT" -ge "$SOUP_MIN" ]; then
  if [ "$MODE" = continued ]; then PARTNER=qa/weights/reader; else PARTNER="$W/t/$BEST_T"; fi
  timeout $(( LEFT - 10 )) $PY training/soup.py --readers "$PARTNER,$W/s/run_student" --alphas 0,0.25,0.5,0.75,1 \
    --cache "$W/cache.pt" --out "$W/s/run_soup" $( [ "$DRY_RUN" = 1 ] && echo "--device cpu --batch 8" ) \
    > "$W/log_soup.txt" 2>&1
  RC=$?; echo "soup with $PARTNER done at $(el) s (rc $RC)" >> "$LOG"
else
  echo "soup skipped (SOUP=$SOUP, $LEFT s left)" >> "$LOG"
fi
for f in "$W"/log_T*.txt "$W"/log_student.txt "$W"/log_soup.txt; do [ -f "$f" ] && { echo "=== $f"; grep -vE "Loading weights|it/s\]" "$f"; }; done >> "$LOG"
if [ -f "$W/s/run_student/training_summary.json" ]; then
  $PY training/pick_best.py "$W/s" "$OUT" >> "$LOG" 2>&1
else
  echo "STUDENT MISSING: returning the best teacher ($BEST_T) instead" | tee -a "$LOG"
  $PY training/pick_best.py "$W/t" "$OUT" >> "$LOG" 2>&1
fi
cp "$W/tpick/summary_all.json" "$OUT/teachers_summary_all.json"
$PY - "$W" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
for f in sorted(w.glob("t/run_*/training_summary.json")) + sorted(w.glob("s/run_*/training_summary.json")):
    s = json.loads(f.read_text())
    v = s["validation"]
    if "soup_of" in s:
        print("soup candidates (alpha: score):", [(c["alpha"], round(c["selection_score"], 2)) for c in s["history"]])
    print(f"{f.parent.name:12s} score {s['selection_score']:.2f} best_f1 {v['best_f1']:.2f} "
          f"has_ans_em {v['has_ans_em']:.2f} has_ans_f1 {v['has_ans_f1']:.2f} selected {s['selected']} "
          f"train_s {s['train_seconds']}")
    d = s.get("distillation")
    if d:
        print(f"{'ensemble':12s} score {d['teacher_ensemble_selection_score']:.2f} (teachers' mean logits)")
        print("epochs (loss, ce, kl):", [(h["epoch"], round(h["loss"], 4), round(h["ce"], 4), round(h["kl"], 4))
                                         for h in s["history"] if "ce" in h])
EOF
echo "all done $(el) s" | tee -a "$LOG"
