"""Private helpers for :mod:`qa.ingest.files`: text clean-up, date parsing and HTML / PDF / DOCX extraction.

Every extractor returns an :class:`Extracted` and raises :class:`~qa.errors.IngestError` with a one-line
reason (no path: the caller adds it) when the file cannot be read as a report.
"""
from __future__ import annotations

import datetime as dt
import re
import zipfile
from html.parser import HTMLParser
from typing import Iterator, NamedTuple

from qa.errors import IngestError

MAX_TITLE_CHARS = 200
_MB = 1024 * 1024

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")  # C0 controls except \t and \n (\r is turned into \n first)
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
         ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
         ("oct", "october"), ("nov", "november"), ("dec", "december")]
    )
    for name in names
}
_YMD = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_COMPACT = re.compile(r"^(?:D:)?(\d{4})(\d{2})(\d{2})")  # PDF dates: D:20240305101500Z
_DMY_DOTS = re.compile(r"(?<!\d)(\d{1,2})\.(\d{1,2})\.(\d{4})(?!\d)")
_DMY_SLASH = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)")
_D_MONTH_Y = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\.?,?\s+(\d{4})(?!\d)")
_MONTH_D_Y = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)")


class Extracted(NamedTuple):
    text: str
    title: str = ""
    date: str | None = None


def normalise_text(text: str) -> str:
    """Newlines to ``\\n``, no BOM, no C0 control characters but ``\\n``/``\\t``, no trailing whitespace."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    return _CONTROL.sub("", text).rstrip()


def clip_title(title: str) -> str:
    """One line, single spaces, at most 200 characters."""
    return " ".join(title.split())[:MAX_TITLE_CHARS].rstrip()


def first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return clip_title(line)
    return ""


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(value: str) -> str | None:
    """A date written in a common format -> ``YYYY-MM-DD``; None when there is no unambiguous date."""
    s = value.strip()
    if not s or len(s) > 200:
        return None
    if m := _YMD.search(s):
        return _iso(int(m[1]), int(m[2]), int(m[3]))
    if m := _COMPACT.match(s):
        return _iso(int(m[1]), int(m[2]), int(m[3]))
    if m := _DMY_DOTS.search(s):
        return _iso(int(m[3]), int(m[2]), int(m[1]))
    if m := _DMY_SLASH.search(s):  # 05/03/2024 is ambiguous unless one part is over 12
        a, b, year = int(m[1]), int(m[2]), int(m[3])
        if a > 12 >= b:
            return _iso(year, b, a)
        if b > 12 >= a:
            return _iso(year, a, b)
        return None
    if (m := _D_MONTH_Y.search(s)) and m[2].lower() in _MONTHS:
        return _iso(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    if (m := _MONTH_D_Y.search(s)) and m[1].lower() in _MONTHS:
        return _iso(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    return None


def date_of(value: object) -> str | None:
    """A datetime, date or string from file metadata -> ``YYYY-MM-DD`` or None."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return parse_date(value)
    return None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# ---------------------------------------------------------------- HTML
# Hand-written on purpose, because it measured better than the maintained extractors on this project's cases
# (tests/test_ingest.py, tests/data/ingest), tried in a scratch venv:
# - inscriptis 2.7.6: keeps <noscript> and <template> text, writes list items as "  * item", and for 100,000
#   nested <div>s returns '' (the report's text lost); this parser keeps "Deep text\n\nafter".
# - trafilatura 2.3.1 (main-content extraction): drops the <h1> of a short page, breaks a paragraph at each <b>,
#   returns None for the deep page; its dependency justext did not import without the extra lxml_html_clean.
# - htmldate: not used; dates come only from <meta> tags named in _DATE_META, which a test pins.

_SKIP = frozenset({"script", "style", "noscript", "template"})
_HEAD_OK = frozenset({"title", "meta", "link", "base", "style", "script", "noscript", "template"})
_PARAGRAPH = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote", "pre", "table", "ul", "ol",
    "dl", "header", "footer", "main", "aside", "nav", "figure", "hr", "address", "details", "form",
})
_LINE = frozenset({
    "br", "div", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "body", "html", "fieldset",
    "thead", "tbody", "tfoot", "option", "legend", "dialog",
})
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"\s+")
_DATE_META = frozenset({"date", "dc.date", "dcterms.date", "dc.date.issued", "article:published_time"})


class _HTMLText(HTMLParser):
    """Collects readable text. Keeps counters, not a stack, so nesting depth costs nothing.

    Block tags only record a pending line break (one, or two for a paragraph), written before the next
    text, so ``</li><li>`` or a thousand nested ``<div>`` s give one break, not a run of blank lines.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.date: str | None = None
        self._skip = 0
        self._in_head = False
        self._in_title = False
        self._title_done = False
        self._h1_depth = 0
        self._h1_done = False
        self._pending = 0  # line breaks owed before the next text: 0, 1 or 2 (a blank line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
            return
        if self._in_head and tag not in _HEAD_OK:
            self._in_head = False  # browsers close <head> at the first body element
        if tag == "meta":
            self._meta(dict(attrs))
        elif tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        else:
            if tag == "h1" and not self._h1_done:
                self._h1_depth += 1
            self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <br/>, <div/>: browsers treat both as start tags

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
            self._title_done = self._title_done or bool("".join(self.title_parts).strip())
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag != "br":
            if tag == "h1" and self._h1_depth:
                self._h1_depth -= 1
                self._h1_done = self._h1_depth == 0
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            if not self._title_done:
                self.title_parts.append(data)
            return
        if self._skip:
            return
        if self._in_head:
            if not data.strip():
                return
            self._in_head = False
        self._emit(_SPACES.sub(" ", data))
        if self._h1_depth:
            self.h1_parts.append(data)

    def _emit(self, text: str) -> None:
        if text == " " and (self._pending or not self.parts):
            return  # whitespace between blocks
        if self._pending and self.parts:
            self.parts.append("\n" * self._pending)
        self._pending = 0
        self.parts.append(text)

    def _break(self, tag: str) -> None:
        if self._skip or self._in_head:
            return
        if tag == "br":
            self._pending = min(2, self._pending + 1)
        elif tag in _PARAGRAPH:
            self._pending = 2
        elif tag in _LINE:
            self._pending = max(1, self._pending)
        elif tag in _CELL:
            self._emit(" ")

    def _meta(self, attrs: dict[str, str | None]) -> None:
        key = attrs.get("name") or attrs.get("property") or attrs.get("itemprop") or ""
        content = attrs.get("content") or ""
        if self.date is None and key.lower() in _DATE_META:
            self.date = parse_date(content)


def _tidy_lines(text: str) -> str:
    """Single spaces inside lines, no blank line at the ends, at most one blank line in a row."""
    out: list[str] = []
    blank = False
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if not line:
            blank = bool(out)
            continue
        if blank:
            out.append("")
        out.append(line)
        blank = False
    return "\n".join(out)


def extract_html(markup: str) -> Extracted:
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    text = _tidy_lines("".join(parser.parts))
    title = clip_title("".join(parser.title_parts)) or clip_title("".join(parser.h1_parts)) or first_line(text)
    return Extracted(text, title, parser.date)


# ---------------------------------------------------------------- PDF


def extract_pdf(path: str) -> Extracted:
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(path)
        encrypted = reader.is_encrypted
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise IngestError(f"corrupt PDF: {one_line(exc)}") from exc
    if encrypted:
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except Exception as exc:
            raise IngestError(f"encrypted PDF that cannot be opened ({one_line(exc)})") from exc
        if not opened:
            raise IngestError("encrypted PDF: it needs a password; add an unencrypted copy instead")
    try:
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:
        raise IngestError(f"corrupt PDF: {one_line(exc)}") from exc
    title, date = _pdf_metadata(reader)
    return Extracted(text, title, date)


def _pdf_metadata(reader: object) -> tuple[str, str | None]:
    try:
        meta = reader.metadata  # type: ignore[attr-defined]
    except Exception:
        return "", None
    if meta is None:
        return "", None
    title = clip_title(str(meta.title or ""))
    try:
        date = date_of(meta.creation_date)
    except Exception:  # a malformed /CreationDate: try our own parser on the raw string
        date = date_of(str(meta.get("/CreationDate", "")))
    return title, date


# ---------------------------------------------------------------- DOCX


def check_zip(path: str, max_bytes: int) -> None:
    """Refuse an archive that would expand past ``max_bytes`` or has a member compressed over 100x."""
    if not zipfile.is_zipfile(path):
        raise IngestError("corrupt DOCX: not a zip archive")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"corrupt DOCX: {one_line(exc)}") from exc
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise IngestError(f"zip bomb: uncompressed size over limit ({total} bytes > {max_bytes})")
    for m in members:
        if m.file_size > _MB and m.file_size > 100 * max(m.compress_size, 1):
            ratio = m.file_size / max(m.compress_size, 1)
            raise IngestError(f"zip bomb: member {m.filename} is compressed {ratio:.0f}x (limit 100x)")


def extract_docx(path: str) -> Extracted:
    import docx

    try:
        document = docx.Document(path)
        text = "\n".join(_docx_lines(document))
        props = document.core_properties
        title, created = props.title or "", props.created
    except Exception as exc:  # python-docx / lxml / zipfile errors on damaged files
        raise IngestError(f"corrupt DOCX: {one_line(exc)}") from exc
    return Extracted(text, clip_title(title), date_of(created))


def _docx_lines(container: object) -> Iterator[str]:
    """Paragraph texts in document order; each table cell's paragraphs too (merged cells once)."""
    from docx.table import Table

    for block in container.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(block, Table):
            seen: set[object] = set()  # holding the elements keeps lxml's proxies (and identities) alive
            for row in block.rows:
                for cell in row.cells:
                    if cell._tc not in seen:
                        seen.add(cell._tc)
                        yield from _docx_lines(cell)
        else:
            yield block.text
