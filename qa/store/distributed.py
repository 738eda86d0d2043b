"""``qa index --ray``: reports read, chunked and embedded across a Ray cluster, merged into the same index.

Ray Data spreads the list of report files over the cluster. A map stage loads and chunks each file with
``qa.ingest.files`` and ``qa.chunking``, so files are named, skipped and split exactly as ``qa index`` does it. Reports
that the index already holds with the same content hash are passed through without being chunked. An actor pool of
encoders (one :class:`~qa.models.encoder.Encoder` each, on a CPU or one GPU) embeds the chunks. The driver collects the
results in file order and writes them through :meth:`~qa.store.indexer.Indexer.sync_loaded`, the one write path (lock,
incremental update, FAISS and BM25, atomic switch).

Needs the ``ray`` extra (``pip install 'report-qa[ray]'``) and report-qa on every node. Every node must be able
to read the report paths (a shared filesystem). The index is written by the driver.
"""
from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from qa.chunking import Chunker, ChunkSettings
from qa.models.encoder import Encoder
from qa.errors import QAError
from qa.store.indexer import Embedded, Indexer, IndexReport, Progress
from qa.ingest.files import DEFAULT_MAX_BYTES, IngestResult, Skipped, iter_targets, load_target, merge_loaded
from qa.models.files import resolve_precision
from qa.settings import Settings
from qa.store.index import content_hash
from qa.types import Document

log = logging.getLogger(__name__)

RAY_MISSING = "qa index --ray needs the ray extra: pip install 'report-qa[ray]'"
FILES_PER_BLOCK = 64  # report files per Ray Data block, i.e. per load-and-chunk task
REPORTS_PER_BATCH = 256  # reports per encoder call (the encoder batches their chunks itself)


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise QAError(RAY_MISSING) from e
    return ray


def ray_sync(settings: Settings, paths: Sequence[str | os.PathLike], *, address: str | None = None,
             num_encoders: int | None = None, use_gpu: bool = False, rebuild: bool = False,
             progress: Progress | None = None, lock_wait_s: float = 0.0) -> IndexReport:
    """``Indexer(settings).sync(paths)``, with the reading, chunking and embedding done on a Ray cluster.

    ``address``: the cluster ("auto" on one of its nodes, "HEAD_IP:6379"); None connects to ``$RAY_ADDRESS``, else
    to a Ray cluster already running on this machine, else starts a local one. A Ray session this process already holds is used as it is, and left open. ``num_encoders``: encoder
    actors (default: an autoscaling pool up to the cluster's CPUs, or GPUs with ``use_gpu``, each actor then
    holding one GPU).
    """
    t0 = time.perf_counter()
    ray = _import_ray()
    if num_encoders is not None and num_encoders < 1:
        raise ValueError("num_encoders must be >= 1")
    if settings.device != "auto" and settings.device.startswith("cuda") != use_gpu:
        raise QAError(f"with --ray the encoders' device follows --gpu; drop --device {settings.device}"
                      + ("" if use_gpu else " or add --gpu"))
    try:  # refuse here, in one line, what every encoder actor would refuse
        resolve_precision(settings.precision, "cuda" if use_gpu else "cpu")
    except ValueError as e:
        raise QAError(str(e)) from None
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    indexer = Indexer(settings)
    indexer.encoder.check()  # a damaged model fails here, in one line, not as encoder actors dying one by one
    targets = [{"seq": i, "path": p, "file_id": f, "problem": why} for i, (p, f, why) in enumerate(iter_targets(paths))]
    known = {} if rebuild else indexer.content_hashes()
    rows: list[dict] = []
    if targets:
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, **({"include_dashboard": False} if address is None else {}))
        try:
            rows = _run(ray, targets, known, settings, num_encoders, use_gpu, progress)
        finally:
            if started:
                ray.shutdown()
    result, embedded = _merge(rows, indexer.encoder.dim)
    report = indexer.sync_loaded(paths, result, embedded=embedded, rebuild=rebuild, progress=progress,
                                 lock_wait_s=lock_wait_s)
    report.seconds = time.perf_counter() - t0  # the whole run, not only the write
    return report


def _run(ray, targets: list[dict], known: dict[str, str], settings: Settings, num_encoders: int | None,
         use_gpu: bool, progress: Progress | None) -> list[dict]:
    """The Ray Data pipeline: files -> loaded, chunked reports -> embedded reports, collected on the driver."""
    resource = "GPU" if use_gpu else "CPU"
    available = int(ray.cluster_resources().get(resource, 0))
    if use_gpu and available < 1:
        raise QAError("--gpu: the Ray cluster has no GPU; leave out --gpu to embed on CPUs")
    if num_encoders:
        pool = ray.data.ActorPoolStrategy(size=num_encoders)
    else:
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, available))
    blocks = min(len(targets), max(2 * (num_encoders or max(1, available)), -(-len(targets) // FILES_PER_BLOCK)))
    ds = ray.data.from_items(targets, override_num_blocks=blocks)
    ds.context.enable_progress_bars = False  # the caller's progress callback reports instead
    ds = ds.map_batches(_load_and_chunk, batch_format="pyarrow", batch_size=None,
                        fn_kwargs={"chunking": settings.chunking, "known": ray.put(known), "cwd": os.getcwd()})
    ds = ds.map_batches(_EmbedChunks, batch_format="pyarrow", batch_size=REPORTS_PER_BATCH, compute=pool,
                        fn_constructor_kwargs={"device": "cuda" if use_gpu else "cpu",
                                               "precision": settings.precision},
                        **({"num_gpus": 1} if use_gpu else {}))
    rows: list[dict] = []
    files_done: set[int] = set()
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        part = batch.to_pylist()
        rows.extend(part)
        files_done.update(r["seq"] for r in part)
        if progress:
            progress("reading and embedding", len(files_done), len(targets))
    return rows


def _merge(rows: list[dict], dim: int) -> tuple[IngestResult, dict[str, Embedded]]:
    """Rows -> what ``load_paths`` would have returned, plus each new report's chunks and vectors.

    Every file gives at least one row; ``merge_loaded`` skips later duplicates of an id as ``load_paths`` does, and
    the first report with an id is the one whose chunks are kept.
    """
    per_file: list[tuple[str, list[Document], list[Skipped]]] = []
    embedded: dict[str, Embedded] = {}
    seen: set[str] = set()
    rows = sorted(rows, key=lambda r: (r["seq"], r["pos"]))
    for _, group in itertools.groupby(rows, key=lambda r: r["seq"]):
        group = list(group)
        docs = [r for r in group if r["reason"] is None]
        per_file.append((group[0]["path"], [Document(r["id"], r["text"], r["title"], r["date"], r["source"])
                                            for r in docs],
                         [Skipped(r["path"], r["reason"], r.get("line")) for r in group if r["reason"] is not None]))
        for r in docs:
            if r["id"] in seen:  # a later duplicate: merge_loaded skips it, so its chunks must not stand in
                continue
            seen.add(r["id"])
            if not r["unchanged"]:
                embedded[r["id"]] = Embedded(
                    np.asarray(r["chunk_index"], dtype=np.int64), np.asarray(r["chunk_start"], dtype=np.int64),
                    np.asarray(r["chunk_end"], dtype=np.int64), np.asarray(r["chunk_tokens"], dtype=np.int64),
                    np.frombuffer(r["vectors"], dtype=np.float32).reshape(-1, dim))
    return merge_loaded(per_file), embedded


# --- what runs on the cluster ---
def _loaded_schema():
    import pyarrow as pa

    ints = pa.list_(pa.int64())
    return pa.schema([("seq", pa.int64()), ("pos", pa.int64()), ("path", pa.string()), ("reason", pa.string()),
                      ("line", pa.int64()), ("id", pa.string()), ("text", pa.large_string()), ("title", pa.string()),
                      ("date", pa.string()), ("source", pa.string()), ("unchanged", pa.bool_()),
                      ("chunk_index", ints), ("chunk_start", ints), ("chunk_end", ints), ("chunk_tokens", ints),
                      ("ids", pa.list_(pa.list_(pa.int32())))])


@functools.lru_cache(maxsize=2)
def _chunker(chunking: ChunkSettings) -> Chunker:
    """One tokenizer per worker process."""
    return Chunker(Encoder().tokenize, chunking)


@functools.lru_cache(maxsize=1)
def _known_hashes(ref) -> dict[str, str]:
    """The index's content hashes by report id, fetched once per worker process."""
    import ray

    return ray.get(ref)


def _load_and_chunk(batch, *, chunking: ChunkSettings, known, cwd: str, max_bytes: int = DEFAULT_MAX_BYTES):
    """Files -> one row per report (chunk offsets and word-piece ids) and one per skipped file or line."""
    import pyarrow as pa

    if os.getcwd() != cwd:  # relative paths name the driver's files, and sources stay as ``qa index`` records them
        try:
            os.chdir(cwd)
        except OSError as e:  # the files will be reported as skipped, by name
            log.warning("cannot enter the driver's folder %s on this node: %s", cwd, e)
    hashes = _known_hashes(known)
    out: list[dict] = []
    for item in batch.to_pylist():
        path = item["path"]
        docs, bad = load_target(path, item["file_id"], item["problem"], max_bytes)
        for pos, doc in enumerate(docs):
            unchanged = hashes.get(doc.id) == content_hash(doc)
            chunks, ids = ([], []) if unchanged else _chunker(chunking).split(doc)
            out.append({"seq": item["seq"], "pos": pos, "path": path, "reason": None, "line": None, "id": doc.id,
                        "text": doc.text, "title": doc.title, "date": doc.date, "source": doc.source,
                        "unchanged": unchanged, "chunk_index": [c.index for c in chunks],
                        "chunk_start": [c.start for c in chunks], "chunk_end": [c.end for c in chunks],
                        "chunk_tokens": [c.n_tokens for c in chunks], "ids": ids})
        for pos, skip in enumerate(bad, start=len(docs)):
            out.append({"seq": item["seq"], "pos": pos, "path": skip.path, "reason": skip.reason, "line": skip.line, "id": "",
                        "text": "", "title": "", "date": None, "source": "", "unchanged": False, "chunk_index": [],
                        "chunk_start": [], "chunk_end": [], "chunk_tokens": [], "ids": []})
    return pa.Table.from_pylist(out, schema=_loaded_schema())


class _EmbedChunks:
    """A Ray Data actor holding one Encoder: embeds the chunks of a batch of reports, vectors as float32 bytes."""

    def __init__(self, device: str, precision: str) -> None:
        self.encoder = Encoder(device=device, precision=precision)
        self.encoder.warm_up()

    def __call__(self, batch):
        import pyarrow as pa

        per_report = batch.column("ids").to_pylist()
        flat = [ids for report in per_report for ids in report]
        vectors = self.encoder.encode_ids(flat)
        out, at = [], 0
        for report in per_report:
            out.append(vectors[at : at + len(report)].tobytes())
            at += len(report)
        return batch.drop_columns(["ids"]).append_column("vectors", pa.array(out, type=pa.large_binary()))
