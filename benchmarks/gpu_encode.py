"""Embedding throughput on a GPU: raw SentenceTransformer.encode (fp32, fp16) against qa's Encoder.

    python benchmarks/gpu_encode.py --contexts contexts.json[.xz] --model MODEL_DIR [--repeat 5] [--json OUT]

The contexts are SQuAD v1.1 dev paragraphs (2,067), repeated to make the run long enough to time.
"""
from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from pathlib import Path

import torch


def timed(fn, sync=True):
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    r = fn()
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    return r, time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--contexts", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=None)
    p.add_argument("--limit", type=int, default=0)
    a = p.parse_args(argv)
    path = Path(a.contexts)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        base = json.load(f)
    texts = (base * a.repeat)[: a.limit or None]
    n = len(texts)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sentence_transformers import SentenceTransformer

    from qa.embed import Encoder

    res = {"paragraphs": n, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    st = SentenceTransformer(a.model, device="cuda" if torch.cuda.is_available() else "cpu",
                             model_kwargs={"dtype": torch.float32})
    st.encode(texts[:512], batch_size=256)
    ref, t = timed(lambda: st.encode(texts, batch_size=256, normalize_embeddings=True))
    res["st_fp32_per_s"] = round(n / t, 1)
    st.half()
    st.encode(texts[:512], batch_size=256)
    _, t = timed(lambda: st.encode(texts, batch_size=256, normalize_embeddings=True))
    res["st_fp16_per_s"] = round(n / t, 1)
    del st
    enc = Encoder(a.model, device="auto")
    enc.warm_up()
    enc.encode(texts[:1024])
    for bs in (512, 1024, 2048):
        vec, t = timed(lambda: enc.encode(texts, batch_size=bs))
        res[f"qa_encoder_bs{bs}_per_s"] = round(n / t, 1)
    _, t_tok = timed(lambda: enc.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=254), sync=False)
    res["tokenize_only_per_s"] = round(n / t_tok, 1)
    res["min_cosine_vs_st_fp32"] = float((vec * ref).sum(1).min())
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
