"""``qa bench``: indexing throughput against raw encode, ask latency by stage, cold start, peak memory.

Figures are medians where a thing is repeated; everything is measured in one run so ratios compare like with
like on this (shared, noisy) machine.
"""
from __future__ import annotations

import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from qa.errors import QAError
from qa.settings import Settings


def _default_corpus() -> str:
    for cand in (Path("../shared/data/bbc-news"), Path(__file__).resolve().parents[3] / "shared/data/bbc-news"):
        if cand.is_dir():
            return str(cand)
    return "seeds"


def _questions(docs, n: int, seed: int = 0) -> list[str]:
    """A fixed, reproducible question list: templates over report titles (latency workload, not accuracy)."""
    rng = random.Random(seed)
    templates = ["What happened with {t}?", "Who is involved in {t}?", "When did {t} happen?",
                 "How much money is involved in {t}?", "Where did {t} take place?", "Why {t}?"]
    picked = rng.sample(docs, min(n, len(docs)))
    return [rng.choice(templates).format(t=d.title.strip().rstrip(".")[:80]) for d in picked]


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would carry a parent's peak across exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(settings: Settings, *, corpus: str | None = None, questions: int = 50,
              work: str | Path = ".cache/bench") -> dict:
    """Index ``corpus`` (default: ../shared/data/bbc-news when present, else seeds/) into ``work``/index and measure:
    indexing against raw sentence-transformers encode, ask latency by stage over ``questions`` questions, cold start
    and peak memory in a fresh process. The figures as one dict (``format_bench`` prints them)."""
    try:  # the reference the indexing ratio is measured against: say what to install before indexing anything
        import sentence_transformers  # noqa: F401
    except ImportError as e:
        raise QAError("qa bench compares with sentence-transformers, which is not installed: "
                      "pip install 'report-qa[bench]'") from e
    from qa.ingest.files import load_paths

    corpus = corpus or _default_corpus()
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    s = settings.with_(index_dir=str(work / "index"))
    res: dict = {"corpus": corpus, "settings": {"reader": s.reader, "k": s.k, "precision": s.precision,
                                                "device": s.device}}
    docs = load_paths([corpus]).documents
    res["reports"] = len(docs)
    store, encoder, res["indexing"] = _bench_indexing(s, corpus)
    qs = _questions(docs, questions)
    res.update(_bench_latency(s, store, encoder, qs))
    res["peak_rss_mb_this_process"] = round(peak_rss_mb())
    res.update(_bench_cold_start(s, qs[0]))
    return res


def _bench_indexing(s: Settings, corpus: str):
    """1. Indexing: the whole pipeline (chunk + embed + FAISS + BM25 + atomic write), then raw encode of the same
    chunk texts with SentenceTransformer.encode, in the same process. (store, encoder, figures)."""
    from sentence_transformers import SentenceTransformer

    from qa.models.encoder import Encoder
    from qa.models.files import embedding_model_path
    from qa.store.index import IndexStore
    from qa.store.indexer import Indexer

    encoder = Encoder(device=s.device, precision=s.precision)
    encoder.warm_up()
    encoder.encode(["warm up"])
    t0 = time.perf_counter()
    Indexer(s, encoder).sync([corpus])
    t_index = time.perf_counter() - t0
    store = IndexStore.open(s.index_dir)
    texts = [store.chunk(i).text for i in range(len(store))]
    tokens = int(store.data.chunk_tokens.sum())
    st = SentenceTransformer(str(embedding_model_path()), device=encoder._device)
    t_raw = _time_encode(st, texts)
    t_raw_same = None
    if encoder.resolved_precision != "fp32":  # the same arithmetic on both sides, for an honest second ratio
        t_raw_same = _time_encode(st.to(encoder.dtype), texts)
    del st
    figures = {
        "chunks": len(texts), "tokens": tokens, "seconds": round(t_index, 2),
        "chunks_per_s": round(len(texts) / t_index, 1), "tokens_per_s": round(tokens / t_index),
        "raw_st_encode_seconds": round(t_raw, 2), "raw_st_chunks_per_s": round(len(texts) / t_raw, 1),
        "pipeline_over_raw_encode": round(t_index / t_raw, 3),
        "pipeline_precision": encoder.resolved_precision, "raw_st_precision": "fp32",
    }
    if t_raw_same is not None:
        figures.update({"raw_st_same_precision_seconds": round(t_raw_same, 2),
                        "pipeline_over_raw_encode_same_precision": round(t_index / t_raw_same, 3)})
    return store, encoder, figures


def _time_encode(st, texts: list[str]) -> float:
    """Seconds SentenceTransformer.encode takes over ``texts`` (after a warm-up batch)."""
    st.encode(texts[:64])
    t0 = time.perf_counter()
    st.encode(texts, batch_size=64)
    return time.perf_counter() - t0


def _bench_latency(s: Settings, store, encoder, qs: list[str]) -> dict:
    """2. Latency: ask end to end by stage, and retrieval alone."""
    from qa.assistant import Assistant, make_reader

    assistant = Assistant(store, encoder, make_reader(s), s)
    assistant.warm_up()
    for q in qs[:3]:
        assistant.ask(q)
    stages: dict[str, list[float]] = {}
    totals, retrieval = [], []
    for q in qs:
        t0 = time.perf_counter()
        a = assistant.ask(q)
        totals.append((time.perf_counter() - t0) * 1e3)
        for k, v in a.timings_ms.items():
            stages.setdefault(k, []).append(v)
        t0 = time.perf_counter()
        assistant.retrieve(q, s.k)
        retrieval.append((time.perf_counter() - t0) * 1e3)
    return {"ask_ms": {"n": len(qs), "p50": round(statistics.median(totals), 1), "p95": round(_pct(totals, 95), 1),
                       "stages_p50": {k: round(statistics.median(v), 2) for k, v in stages.items() if k != "total"}},
            "retrieval_ms": {"p50": round(statistics.median(retrieval), 2), "p95": round(_pct(retrieval, 95), 2)}}


def _bench_cold_start(s: Settings, question: str) -> dict:
    """3. Cold start in a fresh process: open the index, load the models, answer one question."""
    code = ("import time; t=time.perf_counter(); from qa.assistant import Assistant; from qa.settings import Settings;"
            f"a=Assistant.open({str(s.index_dir)!r}, settings=Settings(reader={s.reader!r}, device={s.device!r}, "
            f"precision={s.precision!r}));"
            f"a.ask({question!r}); import json;"
            "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
            "print(json.dumps({'cold_start_s': time.perf_counter()-t, 'peak_rss_mb': int(hwm)/1024}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"cold_start_error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    cold = json.loads(out.stdout.strip().splitlines()[-1])
    return {"cold_start_s": round(cold["cold_start_s"], 2), "serving_peak_rss_mb": round(cold["peak_rss_mb"])}


def format_bench(res: dict) -> str:
    """``run_bench``'s figures as the lines ``qa bench`` prints."""
    ix = res["indexing"]
    lines = [f"corpus            {res['corpus']}: {res['reports']} reports, {ix['chunks']} chunks, "
             f"{ix['tokens']} tokens",
             f"indexing          {ix['seconds']} s  ({ix['chunks_per_s']} chunks/s, {ix['tokens_per_s']} tokens/s)",
             f"raw ST encode     {ix['raw_st_encode_seconds']} s  ({ix['raw_st_chunks_per_s']} chunks/s); "
             f"pipeline / raw = {ix['pipeline_over_raw_encode']}"]
    if "raw_st_same_precision_seconds" in ix:
        lines.append(f"raw ST encode     {ix['raw_st_same_precision_seconds']} s in {ix['pipeline_precision']}; "
                     f"pipeline / raw = {ix['pipeline_over_raw_encode_same_precision']}")
    lines += [f"ask               p50 {res['ask_ms']['p50']} ms, p95 {res['ask_ms']['p95']} ms over "
              f"{res['ask_ms']['n']} questions",
              "  stages p50      " + ", ".join(f"{k} {v} ms" for k, v in res["ask_ms"]["stages_p50"].items()),
              f"retrieval only    p50 {res['retrieval_ms']['p50']} ms, p95 {res['retrieval_ms']['p95']} ms",
              f"cold start        {res.get('cold_start_s', res.get('cold_start_error'))} s; serving peak RSS "
              f"{res.get('serving_peak_rss_mb')} MB (bench process {res['peak_rss_mb_this_process']} MB)"]
    return "\n".join(lines)
