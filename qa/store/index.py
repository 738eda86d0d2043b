"""The persisted index: one folder holding FAISS + BM25 + chunks + reports + manifest.

Layout of ``index/``::

    CURRENT                 name of the live generation (replaced atomically with os.replace)
    .lock                   held (filelock) by the one process writing
    gen-000003/             a complete, immutable generation
        manifest.json       format version, model, chunking settings, FAISS type, report hashes, file sizes
        documents.jsonl     the reports (id, title, date, source, sha256, text)
        chunks.npz          per chunk: report number, position, start, end, word pieces
        vectors.npy         unit-length float32 embeddings (memory-mapped on load)
        dense.faiss         FAISS inner-product index over the vectors
        bm25/               bm25s sparse index over the same chunks

A write builds a new generation beside the live one, fsyncs it, then switches CURRENT: a crash at any point
leaves the previous index whole. Readers that opened the old generation keep reading it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import IndexCorrupt, IndexIncompatible, IndexLocked, IndexNotFound
from qa.types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: the manifest records a sha256 per file
_FILES = ("manifest.json", "documents.jsonl", "chunks.npz", "vectors.npy", "dense.faiss")


def content_hash(doc: Document) -> str:
    h = hashlib.sha256()
    for part in (doc.text, doc.title, doc.date or "", doc.source):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class IndexData:
    """Everything a generation holds, in memory (used to write one)."""

    documents: list[Document]
    chunk_doc: np.ndarray  # int32: position of the chunk's report in ``documents``
    chunk_index: np.ndarray  # int32
    chunk_start: np.ndarray  # int64
    chunk_end: np.ndarray  # int64
    chunk_tokens: np.ndarray  # int32
    vectors: np.ndarray  # float32 (n, dim), unit length


def _rebuild_hint(root: Path) -> str:
    return f'run "qa index --rebuild PATH... --index {root}"'


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def write_lock(root: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Exclusive writer lock on ``root`` (``filelock``: flock on Unix, msvcrt on Windows, so a writer that dies
    releases it); tries every 0.2 s for up to ``wait_s`` seconds, then raises IndexLocked."""
    from filelock import FileLock, Timeout

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / ".lock")
    try:
        lock.acquire(timeout=max(0.0, wait_s), poll_interval=0.2)
    except Timeout:
        raise IndexLocked(
            f"another process is writing the index at {root}; wait for it to finish and try again"
        ) from None
    try:
        yield
    finally:
        lock.release()


def current_generation(root: Path) -> Path:
    root = Path(root)
    cur = root / "CURRENT"
    if not cur.exists():
        raise IndexNotFound(f'no index at {root}/; run "qa index seeds/ --index {root}" to build one')
    raw = cur.read_bytes().strip()
    name = raw.decode("ascii", "replace")
    if not re.fullmatch(r"gen-\d{6}", name):
        raise IndexCorrupt(f"{cur} is damaged (it should name a generation like gen-000001); {_rebuild_hint(root)}")
    gen = root / name
    if not gen.is_dir():
        raise IndexCorrupt(f"{cur} names a missing generation {name!r}; {_rebuild_hint(root)}")
    return gen


def write_generation(root: Path, data: IndexData, manifest: dict, faiss_index, bm25) -> Path:
    """Write ``data`` as a new generation and make it live. The caller holds ``write_lock(root)``."""
    import faiss

    root.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in root.glob("gen-*") if p.is_dir())
    number = int(existing[-1].split("-")[1]) + 1 if existing else 1
    tmp = root / f".tmp-gen-{number:06d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    with open(tmp / "documents.jsonl", "w", encoding="utf-8") as f:
        for d in data.documents:
            f.write(json.dumps({**d.to_dict(), "sha256": content_hash(d)}, ensure_ascii=False) + "\n")
    np.savez(tmp / "chunks.npz", doc=data.chunk_doc, index=data.chunk_index, start=data.chunk_start,
             end=data.chunk_end, tokens=data.chunk_tokens)
    np.save(tmp / "vectors.npy", np.ascontiguousarray(data.vectors, dtype=np.float32))
    faiss.write_index(faiss_index, str(tmp / "dense.faiss"))
    bm25.save(str(tmp / "bm25"), show_progress=False)
    manifest = {**manifest, "format_version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "n_documents": len(data.documents), "n_chunks": int(len(data.chunk_doc))}
    manifest["files"] = {p.relative_to(tmp).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for p in tmp.rglob("*"):
        if p.is_file():
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(tmp)
    gen = root / f"gen-{number:06d}"
    os.replace(tmp, gen)
    _fsync_dir(root)
    cur_tmp = root / f".CURRENT.{os.getpid()}"
    cur_tmp.write_text(gen.name + "\n")
    with open(cur_tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(cur_tmp, root / "CURRENT")  # the atomic switch
    _fsync_dir(root)
    # keep the previous generation too: a reader that has just read the old CURRENT can still open it
    _prune(root, keep={gen.name, *existing[-1:]})
    return gen


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


VERIFY_MAX_BYTES = 512 * 2**20  # files up to this size are checked against their sha256 on every open


def verify_files(gen: Path, manifest: dict, root: Path) -> None:
    """Every file of the generation is present, of its recorded size and (up to VERIFY_MAX_BYTES) checksum."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexCorrupt(f"{gen / 'manifest.json'} lists no files; {_rebuild_hint(root)}")
    for name, rec in files.items():
        p = gen / name
        if not isinstance(rec, dict):
            raise IndexCorrupt(f"{gen / 'manifest.json'} is damaged (bad entry for {name}); {_rebuild_hint(root)}")
        if not p.is_file():
            raise IndexCorrupt(f"{p} is missing; {_rebuild_hint(root)}")
        size = p.stat().st_size
        if size != rec.get("size"):
            raise IndexCorrupt(f"{p} is damaged (size {size}, expected {rec.get('size')}); {_rebuild_hint(root)}")
        if size <= VERIFY_MAX_BYTES and _sha256(p) != rec.get("sha256"):
            raise IndexCorrupt(f"{p} does not match the checksum recorded in {gen / 'manifest.json'} (one of the two "
                               f"is damaged); {_rebuild_hint(root)}")


def _prune(root: Path, keep: set[str]) -> None:
    """Remove older generations and leftovers of crashed writes (readers holding them keep their mmaps)."""
    for p in root.iterdir():
        if p.name in keep:
            continue
        if p.name.startswith(("gen-", ".tmp-gen-")) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".CURRENT."):
            p.unlink(missing_ok=True)


class IndexStore:
    """A loaded, read-only generation of the index."""

    def __init__(self, root: Path, gen: Path, manifest: dict, data: IndexData, faiss_index, bm25) -> None:
        self.root = root
        self.generation = gen
        self.manifest = manifest
        self.data = data
        self.faiss_index = faiss_index
        self.bm25 = bm25
        self.documents = {d.id: d for d in data.documents}
        self._hashes = manifest.get("document_hashes", {})

    # --- opening ---
    @classmethod
    def open(cls, root: str | os.PathLike, *, expect: dict | None = None, mmap: bool = True) -> "IndexStore":
        """Open the live generation; ``expect`` lists manifest keys (model, dim...) that must match.

        A writer may switch and prune generations while this reads; damage seen while CURRENT moved on is that
        race, not damage, and the open is retried on the new generation.
        """
        root = Path(root)
        for attempt in range(5):
            gen = current_generation(root)
            try:
                return cls._open_generation(root, gen, expect, mmap)
            except IndexCorrupt:
                if attempt == 4 or current_generation(root) == gen:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _open_generation(cls, root: Path, gen: Path, expect: dict | None, mmap: bool) -> "IndexStore":
        import bm25s
        import faiss

        manifest = read_manifest(gen, root)
        check_expectations(manifest, expect or {}, root)
        verify_files(gen, manifest, root)
        try:
            docs = []
            with open(gen / "documents.jsonl", encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    docs.append(Document(r["id"], r["text"], r.get("title", ""), r.get("date"), r.get("source", "")))
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise IndexCorrupt(f"{gen / 'documents.jsonl'} is damaged ({e}); {_rebuild_hint(root)}") from e
        arrays = _load(gen / "chunks.npz", root, lambda p: dict(np.load(p)))
        vectors = _load(gen / "vectors.npy", root, lambda p: np.load(p, mmap_mode="r" if mmap else None))
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap and manifest.get("faiss_type") == "flat" else 0
        index = _load(gen / "dense.faiss", root, lambda p: faiss.read_index(str(p), flags))
        bm25 = _load(gen / "bm25", root, lambda p: bm25s.BM25.load(str(p), mmap=mmap, show_progress=False))
        data = IndexData(docs, arrays["doc"], arrays["index"], arrays["start"], arrays["end"], arrays["tokens"], vectors)
        n = len(data.chunk_doc)
        if not (vectors.shape[0] == index.ntotal == n == manifest.get("n_chunks")) or (
            n and int(data.chunk_doc.max()) >= len(docs)
        ):
            raise IndexCorrupt(f"the files of {gen} disagree on the number of chunks; {_rebuild_hint(root)}")
        return cls(root, gen, manifest, data, index, bm25)

    # --- reading ---
    def __len__(self) -> int:
        return int(len(self.data.chunk_doc))

    def chunk(self, i: int) -> Chunk:
        d = self.data
        doc = d.documents[int(d.chunk_doc[i])]
        s, e = int(d.chunk_start[i]), int(d.chunk_end[i])
        return Chunk(doc.id, int(d.chunk_index[i]), s, e, doc.text[s:e], int(d.chunk_tokens[i]))

    def document_hash(self, doc_id: str) -> str | None:
        return self._hashes.get(doc_id)

    def chunk_counts(self) -> dict[str, int]:
        """Number of chunks of each report."""
        counts = np.bincount(np.asarray(self.data.chunk_doc, dtype=np.int64), minlength=len(self.data.documents))
        return {d.id: int(c) for d, c in zip(self.data.documents, counts)}

    def chunk_rows(self, doc_ids: set[str]) -> np.ndarray:
        """Chunk numbers of the given reports (for filtering)."""
        pos = [i for i, d in enumerate(self.data.documents) if d.id in doc_ids]
        return np.flatnonzero(np.isin(self.data.chunk_doc, pos))


def check_expectations(manifest: dict, expect: dict, root: Path) -> None:
    """IndexIncompatible unless the manifest has every ``expect`` key (model, dim...) at the expected value."""
    for key, want in expect.items():
        have = manifest.get(key)
        if have != want:
            raise IndexIncompatible(f"the index at {root}/ was built with {key}={have!r}, but this setup uses {want!r}; "
                                    f"{_rebuild_hint(root)}")


def read_manifest(gen: Path, root: Path) -> dict:
    """A generation's manifest, checked for format; IndexCorrupt / IndexIncompatible otherwise."""
    try:
        manifest = json.loads((gen / "manifest.json").read_text())
    except FileNotFoundError:
        raise IndexCorrupt(f"{gen / 'manifest.json'} is missing; {_rebuild_hint(root)}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"{gen / 'manifest.json'} is damaged ({e}); {_rebuild_hint(root)}") from e
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexIncompatible(
            f"the index at {root}/ has format {manifest.get('format_version')!r}; this version of report-qa reads "
            f"format {FORMAT_VERSION}; {_rebuild_hint(root)}"
        )
    return manifest


def _load(path: Path, root: Path, fn):
    try:
        return fn(path)
    except Exception as e:  # noqa: BLE001 - any failure to parse a file means the file is damaged
        raise IndexCorrupt(f"{path} could not be read ({type(e).__name__}: {e}); {_rebuild_hint(root)}") from e
