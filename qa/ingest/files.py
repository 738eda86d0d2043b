"""Files and folders -> :class:`~qa.types.Document` s (txt, md, html, pdf, docx, jsonl) with title and date.

``load_paths`` never stops at a bad file: each one becomes a :class:`Skipped` entry with a one-line reason.
``load_file`` loads one file and raises :class:`~qa.errors.IngestError` instead.

The text of a ``Document`` is the canonical report text (downstream offsets index into it); it is only
normalised: newlines to ``\\n``, no BOM, no control characters but ``\\n``/``\\t``, no trailing whitespace.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from qa.ingest import extract
from qa.ingest.extract import Extracted, clip_title, date_of, first_line, normalise_text, parse_date
from qa.errors import IngestError
from qa.types import Document

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"})
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

_UNPRINTABLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_DATE_LINE = re.compile(r"\s*[*_]{0,2}date[*_]{0,2}\s*:[*_]{0,2}\s*(.+)", re.IGNORECASE)
_MD_HEADING = re.compile(r" {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


@dataclass(frozen=True)
class Skipped:
    """A file (or a line of a .jsonl file) that was not loaded, and why."""

    path: str
    reason: str  # one line, e.g. "empty file", "encrypted PDF", "line 3: invalid JSON (...)"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class IngestResult:
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]


def load_paths(paths: Iterable[str | os.PathLike], *, max_bytes: int = DEFAULT_MAX_BYTES) -> IngestResult:
    """Load files and folders (recursively, in sorted order). Ids must be unique: a later duplicate is skipped."""
    return merge_loaded((path, *load_target(path, file_id, problem, max_bytes))
                        for path, file_id, problem in iter_targets(paths))


def iter_targets(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, str, str | None]]:
    """The files ``load_paths`` reads, in its order: (path, id, None), or (path, "", reason) for one it skips."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one path, not an iterable of characters
    for given in paths:
        yield from _targets(os.fsdecode(given))


def load_target(path: str, file_id: str, problem: str | None,
                max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[Document], list[Skipped]]:
    """One target of ``iter_targets`` -> its reports and what was skipped in it; never raises for a bad file."""
    if problem is not None:
        return [], [Skipped(path, problem)]
    return _load_safely(path, file_id, max_bytes)


def merge_loaded(loaded: Iterable[tuple[str, list[Document], list[Skipped]]]) -> IngestResult:
    """Per-file results (path, reports, skipped), in file order -> one result; a later duplicate id is skipped."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    first_source: dict[str, str] = {}  # id -> path of the file that supplied it
    for path, docs, bad in loaded:
        bad = list(bad)
        for doc in docs:
            if doc.id in first_source:
                bad.append(Skipped(path, f"duplicate id {doc.id} (also from {first_source[doc.id]})"))
            else:
                first_source[doc.id] = path
                documents.append(doc)
        for skip in bad:
            logger.warning("skipped %s", skip)
        skipped.extend(bad)
    return IngestResult(tuple(documents), tuple(skipped))


def load_file(
    path: str | os.PathLike, *, doc_id: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Document]:
    """Load one file (a .jsonl file gives one Document per line). ``doc_id`` defaults to the file's stem."""
    name = os.fsdecode(path)
    try:
        docs, bad = _load(name, doc_id or Path(name).stem, max_bytes)
    except IngestError as exc:
        raise IngestError(f"{name}: {exc}") from exc
    if bad:
        raise IngestError(
            f"{name}: {len(bad)} bad line(s), first {bad[0].reason}; fix them, or use load_paths to skip them"
        )
    return docs


def read_text_file(path: str | os.PathLike) -> str:
    """Decode a text file: UTF-8 (BOM stripped; UTF-16 with a BOM too), else cp1252, else latin-1.

    Raises IngestError for binary data (NUL bytes, or mostly non-printable characters).
    """
    return _decode(Path(path).read_bytes())


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IngestError("not UTF-8 or cp1252 text (broken UTF-16)") from exc
    elif b"\x00" in data:
        raise IngestError("binary file (contains NUL bytes), not text")
    else:
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = body.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    sample = text[:100_000]
    if len(_UNPRINTABLE.findall(sample)) > 0.1 * len(sample):
        raise IngestError("not UTF-8 or cp1252 text (mostly non-printable characters)")
    return text


def _targets(path: str) -> Iterator[tuple[str, str, str | None]]:
    """(file path, id, None) for each file to load, or (path, "", reason) for one to report as skipped."""
    if os.path.isdir(path):
        for found, problem in _walk(path):
            file_id = Path(os.path.relpath(found, path)).with_suffix("").as_posix()
            yield found, file_id, problem
    elif not os.path.exists(path):
        yield path, "", "no such file or folder"
    elif Path(path).suffix.lower() not in SUPPORTED_SUFFIXES:
        yield path, "", _unsupported(Path(path).suffix)
    else:
        yield path, Path(path).stem, None


def _walk(root: str) -> Iterator[tuple[str, str | None]]:
    """Supported files under ``root`` in sorted order, depth first; hidden entries and revisited folders skipped."""
    visited: set[str] = set()
    stack: list[tuple[str, bool]] = [(root, True)]
    while stack:
        path, is_dir = stack.pop()
        if not is_dir:
            yield path, None
            continue
        real = os.path.realpath(path)
        if real in visited:
            logger.debug("not entering %s: %s was already walked (symlink)", path, real)
            continue
        visited.add(real)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield path, f"cannot read folder: {exc.strerror or exc}"
            continue
        children: list[tuple[str, bool]] = []
        for entry in entries:
            kind = _kind(entry)
            if entry.name.startswith("."):
                logger.debug("skipping hidden %s", entry.path)
            elif kind == "dir":
                children.append((entry.path, True))
            elif kind == "file" and Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES:
                children.append((entry.path, False))
            else:
                logger.debug("skipping %s: unsupported type or not a regular file", entry.path)
        stack.extend(reversed(children))


def _kind(entry: os.DirEntry) -> str:
    try:
        if entry.is_dir():
            return "dir"
        if entry.is_file():
            return "file"
    except OSError:  # a symlink loop or a vanished entry
        pass
    return "other"


def _unsupported(suffix: str) -> str:
    return f"unsupported type {suffix or '(no suffix)'}; supported: {' '.join(sorted(SUPPORTED_SUFFIXES))}"


def _size(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _load_safely(path: str, file_id: str, max_bytes: int) -> tuple[list[Document], list[Skipped]]:
    try:
        return _load(path, file_id, max_bytes)
    except IngestError as exc:
        return [], [Skipped(path, str(exc))]
    except Exception as exc:  # one bad file must never abort a run
        logger.debug("unexpected error loading %s", path, exc_info=True)
        return [], [Skipped(path, f"unexpected {type(exc).__name__}: {extract.one_line(exc)}")]


def _load(path: str, file_id: str, max_bytes: int) -> tuple[list[Document], list[Skipped]]:
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(_unsupported(suffix))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file")
    if info.st_size > max_bytes:
        raise IngestError(f"larger than {_size(max_bytes)} limit ({_size(info.st_size)}); raise max_bytes to load it")
    if info.st_size == 0:
        raise IngestError("empty file")
    try:
        if suffix == ".jsonl":
            return _load_jsonl(path, file_id)
        extracted = _extract_file(path, suffix, max_bytes)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    text = normalise_text(extracted.text)
    if not text:
        raise IngestError("no text")
    title = extracted.title or first_line(text)
    return [Document(id=file_id, text=text, title=title, date=extracted.date, source=path)], []


def _extract_file(path: str, suffix: str, max_bytes: int) -> Extracted:
    if suffix == ".pdf":
        return extract.extract_pdf(path)
    if suffix == ".docx":
        extract.check_zip(path, max_bytes)
        return extract.extract_docx(path)
    raw = read_text_file(path)
    if suffix in (".html", ".htm"):
        return extract.extract_html(raw)
    return _extract_plain(raw, markdown=suffix in (".md", ".markdown"))


def _extract_plain(raw: str, *, markdown: bool) -> Extracted:
    """txt / md: front matter (removed) or a ``Date:`` line (kept) for the date; heading or first line for title."""
    meta, text = _split_front_matter(normalise_text(raw))
    date = date_of(_scalar(meta.get("date")) or meta.get("date"))
    if date is None:
        date = next((d for line in text.split("\n")[:5] if (d := _date_line(line))), None)
    title = clip_title(_scalar(meta.get("title")))
    if not title and markdown:
        title = _md_title(text)
    return Extracted(text, title or first_line(text), date)


def _split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """A leading ``---`` block that is a YAML mapping -> (its keys lower-cased, text without it). Anything else (a
    horizontal rule, a line of prose, YAML that does not parse) is no front matter, and the text stays whole."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match[1])
    except yaml.YAMLError:
        return {}, text
    if not isinstance(data, dict) or not data:
        return {}, text
    meta: dict[str, object] = {}
    for key, value in data.items():
        meta.setdefault(str(key).lower(), value)
    return meta, text[match.end():].lstrip("\n")


def _scalar(value: object) -> str:
    """A front-matter value written as a string or a number, as text ("" for a list, a mapping, a date, nothing)."""
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def _date_line(line: str) -> str | None:
    match = _DATE_LINE.match(line)
    return parse_date(match[1]) if match else None


def _md_title(text: str) -> str:
    in_code = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        elif not in_code and (match := _MD_HEADING.match(line)):
            return clip_title(match[1])
    return clip_title(first_line(text).lstrip("#"))


def _load_jsonl(path: str, file_id: str) -> tuple[list[Document], list[Skipped]]:
    docs: list[Document] = []
    bad: list[Skipped] = []
    for number, line in enumerate(read_text_file(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            docs.append(_jsonl_document(line, number, path, file_id))
        except IngestError as exc:
            bad.append(Skipped(path, f"line {number}: {exc}"))
    if not docs and not bad:
        raise IngestError("no text")
    return docs, bad


def jsonl_source(path: str, number: int) -> str:
    """The source of line ``number`` of a .jsonl file, for a record that names none: ``PATH:N``."""
    return f"{path}:{number}"


_JSONL_SOURCE = re.compile(r"(.+\.jsonl):\d+", re.IGNORECASE)


def source_file(source: str) -> str:
    """The file a report came from, read from its ``Document.source``: the source itself, or for a record of a .jsonl
    file (``PATH:N``, :func:`jsonl_source`) the .jsonl file's path. A source a record names itself is returned as is."""
    match = _JSONL_SOURCE.fullmatch(source)
    return match.group(1) if match else source


def _jsonl_document(line: str, number: int, path: str, file_id: str) -> Document:
    try:
        record = json.loads(line, strict=False)
    except json.JSONDecodeError as exc:
        raise IngestError(f"invalid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise IngestError("invalid JSON (nested too deeply)") from exc
    if not isinstance(record, dict):
        raise IngestError("not a JSON object")
    if "text" not in record:
        raise IngestError('no "text" field')
    if not isinstance(record["text"], str):
        raise IngestError('"text" is not a string')
    text = normalise_text(record["text"])
    if not text:
        raise IngestError("no text")
    doc_id = record.get("id")
    if doc_id is None or doc_id == "":
        doc_id = f"{file_id}:{number}"
    elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise IngestError('"id" must be a string or an integer')
    title, date, source = (record.get(k) for k in ("title", "date", "source"))
    return Document(
        id=str(doc_id),
        text=text,
        title=clip_title(title) if isinstance(title, str) and title.strip() else first_line(text),
        date=parse_date(date) if isinstance(date, str) else None,
        source=source if isinstance(source, str) and source else jsonl_source(path, number),
    )
