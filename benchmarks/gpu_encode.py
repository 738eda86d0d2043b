"""Embedding throughput on a GPU: raw SentenceTransformer.encode (fp32, fp16) against qa's Encoder, and the
whole indexing pipeline (chunking, BM25 terms, embedding, FAISS, BM25, the atomic write) with N chunking workers.

    python benchmarks/gpu_encode.py --contexts contexts.json[.xz] --model MODEL_DIR [--repeat 5]
        [--index-workers 1,4,8,12] [--json OUT]

The contexts are SQuAD v1.1 dev paragraphs (2,067), repeated to make the run long enough to time; for the
pipeline each paragraph is one report (``Indexer.upsert``, a fresh index each time). ``benchmarks/gpu_index.sh``
is the prepared device command.
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
    p.add_argument("--index-workers", default="", help="comma-separated chunking worker counts for the pipeline")
    p.add_argument("--skip-st", action="store_true", help="skip the SentenceTransformer figures")
    a = p.parse_args(argv)
    path = Path(a.contexts)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        base = json.load(f)
    texts = (base * a.repeat)[: a.limit or None]
    n = len(texts)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from qa.models.encoder import Encoder

    res = {"paragraphs": n, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    ref = None
    if not a.skip_st:
        from sentence_transformers import SentenceTransformer

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
    if ref is not None:
        res["min_cosine_vs_st_fp32"] = float((vec * ref).sum(1).min())
    if a.index_workers:
        _pipeline(enc, texts[:200], 1)  # one-time costs (imports, first BM25 and FAISS builds) out of the figures
        res["pipeline"] = [_pipeline(enc, texts, int(w)) for w in a.index_workers.split(",")]
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


def _pipeline(enc, texts: list[str], workers: int) -> dict:
    """Every paragraph as a report into a fresh index: paragraphs/s of the whole pipeline (``Indexer.upsert``).

    Without FAISS (a machine that has only torch and transformers), the stages before it are timed instead:
    chunking with BM25 terms and embedding (pooled as in ``upsert``), then building BM25; the FAISS build and the
    write are left out and the result says so.
    """
    import importlib.util
    import tempfile

    from qa.store.indexer import Indexer, IndexReport
    from qa.settings import Settings
    from qa.types import Document

    docs = [Document(id=f"p{i}", text=t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as root:
        indexer = Indexer(Settings(index_dir=root, device=enc.device_setting, index_workers=workers), enc)
        t0 = time.perf_counter()
        if importlib.util.find_spec("faiss") is not None:
            stages = "whole pipeline (Indexer.upsert)"
            n_chunks = indexer.upsert(docs).n_chunks
        else:  # what _write does before FAISS: chunk and embed (pooled as configured), then BM25 from the terms
            stages = "chunking + BM25 terms + embedding + BM25 build (no FAISS on this machine: its build and the write not timed)"
            data, terms = indexer._assemble(None, [], docs, None, IndexReport(), {})
            indexer._bm25(data, terms)
            n_chunks = len(data.chunk_doc)
        seconds = time.perf_counter() - t0
    return {"workers": indexer.workers, "stages": stages, "paragraphs": len(docs), "chunks": n_chunks,
            "seconds": round(seconds, 2), "paragraphs_per_s": round(len(docs) / seconds, 1),
            "chunks_per_s": round(n_chunks / seconds, 1)}


if __name__ == "__main__":
    sys.exit(main())
