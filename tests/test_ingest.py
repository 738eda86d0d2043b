"""Tests for qa.ingest.files on real files: fixtures in tests/data/ingest/, PDFs and DOCX files built in tmp_path."""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable

import docx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from conftest import need_shared
from qa.ingest.extract import normalise_text, parse_date
from qa.errors import IngestError
from qa.ingest.files import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_SUFFIXES,
    IngestResult,
    Skipped,
    load_file,
    load_paths,
    read_text_file,
)
from qa.types import Document

FIXTURES = Path(__file__).parent / "data" / "ingest"
REPORTS = FIXTURES / "reports"


# ---------------------------------------------------------------- builders


def make_pdf(pages: list[str], info: dict[str, str] | None = None) -> bytes:
    """A minimal valid PDF written by hand: one line of Helvetica text per page, optional /Info."""
    n = len(pages)
    font = 3 + 2 * n
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>".encode(),
    ]
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info_ref = ""
    if info:
        objects.append(("<< " + " ".join(f"/{k} ({v})" for k, v in info.items()) + " >>").encode("latin-1"))
        info_ref = f" /Info {len(objects)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info_ref} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path, pages: list[str], info: dict[str, str] | None = None) -> Path:
    path.write_bytes(make_pdf(pages, info))
    return path


def write_encrypted_pdf(path: Path, user_password: str) -> Path:
    plain = write_pdf(path.with_name("plain-" + path.name), ["Secret budget figures"], {"Title": "Budget"})
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password, "owner-password", algorithm="RC4-128")  # RC4 needs no extra package
    writer.write(path)
    plain.unlink()
    return path


def write_docx(path: Path, *, title: str = "", created: bool = True) -> Path:
    import datetime as dt

    document = docx.Document()
    document.add_paragraph("Water supply assessment")
    document.add_paragraph("Three of the five reservoirs are below 40% capacity.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Reservoir", "Level"
    table.cell(1, 0).text, table.cell(1, 1).text = "Kielder", "38%"
    document.add_paragraph("Hosepipe bans are not expected before July.")
    document.core_properties.title = title
    if created:
        document.core_properties.created = dt.datetime(2024, 6, 2, 9, 30)
    document.save(path)
    return path


def write_zip_bomb(path: Path, member_bytes: int) -> Path:
    """A 'docx' whose single member is ``member_bytes`` of zeros: compresses about 1000x."""
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(member_bytes // len(chunk)):
                member.write(chunk)
    return path


def only(result: IngestResult) -> Document:
    assert result.skipped == ()
    assert len(result.documents) == 1
    return result.documents[0]


# ---------------------------------------------------------------- each type


def test_txt_title_is_first_nonempty_line_and_date_line_is_kept() -> None:
    doc = only(load_paths([REPORTS / "strike.txt"]))
    assert doc.id == "strike"
    assert doc.title == "Port strike ends after three weeks"
    assert doc.date == "2024-03-05"
    assert "Date: 5 March 2024" in doc.text
    assert doc.text.startswith("\nPort strike")  # leading text is kept: only trailing whitespace goes
    assert doc.text.endswith("accepted a 7% rise.")
    assert doc.source == str(REPORTS / "strike.txt")


def test_markdown_front_matter_gives_date_and_is_removed() -> None:
    doc = only(load_paths([REPORTS / "notes" / "harvest.md"]))
    assert doc.date == "2023-10-12"
    assert doc.title == "Harvest outlook improves"  # the first '# heading', not the first line
    assert doc.text.startswith("Summary for the agriculture desk.")
    assert "---" not in doc.text and "author:" not in doc.text


def test_html_gives_readable_text_title_and_meta_date() -> None:
    doc = only(load_paths([REPORTS / "notes" / "flood.html"]))
    assert doc.title == "Flood warning for the Severn & Wye"
    assert doc.date == "2024-01-17"
    assert doc.text == (
        "Flood warning\n\n"
        "The Environment Agency issued 12 flood warnings \u2014 river levels are expected to peak on Thursday.\n\n"
        "Upton-upon-Severn\nTewkesbury"
    )


def test_html_title_falls_back_to_h1_then_first_line(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<body><p>Intro</p><h1>The <i>real</i> title</h1><p>Body</p></body>")
    (tmp_path / "b.htm").write_text("<div>First line here</div><div>Second</div>")
    a, b = load_paths([tmp_path]).documents
    assert (a.title, b.title) == ("The real title", "First line here")
    assert a.date is None


def test_jsonl_one_document_per_line() -> None:
    result = load_paths([REPORTS / "feeds" / "briefs.jsonl"])
    assert result.skipped == ()
    first, second, third = result.documents
    assert first == Document(
        id="brief-1",
        text="The copper mine at Kansanshi reopened after a two-month closure.",
        title="Mine reopens",
        date="2024-03-05",
        source="https://example.org/briefs/1",
    )
    path = str(REPORTS / "feeds" / "briefs.jsonl")
    assert (second.id, second.title, second.date, second.source) == (
        "briefs:2", "Rail fares rise 4.9% in March.", "2024-03-05", f"{path}:2",
    )
    assert (third.id, third.date, third.source) == ("7", None, f"{path}:4")  # blank line 3 is not an error


def test_pdf_text_title_and_creation_date(tmp_path: Path) -> None:
    write_pdf(tmp_path / "ports.pdf", ["Quarterly report on ports", "Container volumes rose 3%"],
              {"Title": "Ports Q1", "CreationDate": "D:20240305101500Z"})
    doc = only(load_paths([tmp_path / "ports.pdf"]))
    assert (doc.id, doc.title, doc.date) == ("ports", "Ports Q1", "2024-03-05")
    assert doc.text == "Quarterly report on ports\n\nContainer volumes rose 3%"


def test_pdf_without_metadata_uses_first_line(tmp_path: Path) -> None:
    doc = only(load_paths([write_pdf(tmp_path / "bare.pdf", ["Bare report text"])]))
    assert (doc.title, doc.date) == ("Bare report text", None)


def test_pdf_encrypted_with_empty_user_password_still_loads(tmp_path: Path) -> None:
    doc = only(load_paths([write_encrypted_pdf(tmp_path / "owner-only.pdf", user_password="")]))
    assert doc.text == "Secret budget figures"


def test_docx_paragraphs_tables_and_core_properties(tmp_path: Path) -> None:
    doc = only(load_paths([write_docx(tmp_path / "water.docx", title="Water 2024")]))
    assert (doc.id, doc.title, doc.date) == ("water", "Water 2024", "2024-06-02")
    assert doc.text == (
        "Water supply assessment\nThree of the five reservoirs are below 40% capacity.\n"
        "Reservoir\nLevel\nKielder\n38%\nHosepipe bans are not expected before July."
    )


def test_docx_without_title_uses_first_paragraph(tmp_path: Path) -> None:
    doc = only(load_paths([write_docx(tmp_path / "water.docx", created=False)]))
    assert doc.title == "Water supply assessment"


# ---------------------------------------------------------------- folders and ids


def test_folder_is_walked_in_sorted_order_with_relative_ids() -> None:
    result = load_paths([REPORTS])
    assert result.skipped == ()  # table.csv inside a folder is skipped silently
    assert [d.id for d in result.documents] == ["brief-1", "feeds/briefs:2", "7", "notes/flood", "notes/harvest", "strike"]
    assert {d.source for d in result.documents if d.id == "notes/flood"} == {str(REPORTS / "notes" / "flood.html")}
    assert not any("Hidden" in d.text or "Draft" in d.text for d in result.documents)  # .hidden.txt, .drafts/


def test_same_folder_loads_identically_twice() -> None:
    assert load_paths([REPORTS]) == load_paths([str(REPORTS)])


def test_single_path_string_is_not_iterated_as_characters() -> None:
    assert only(load_paths(str(REPORTS / "strike.txt"))).id == "strike"  # type: ignore[arg-type]


def test_load_file_id_defaults_to_stem_and_can_be_given() -> None:
    assert [d.id for d in load_file(REPORTS / "strike.txt")] == ["strike"]
    assert [d.id for d in load_file(REPORTS / "strike.txt", doc_id="news/strike")] == ["news/strike"]


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "report.txt").write_text(f"Report from {folder}\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "sub/report", "text": "Report from c"}) + "\n")
    result = load_paths([tmp_path / "a", tmp_path / "b", tmp_path / "c.jsonl"])
    assert [d.text for d in result.documents] == ["Report from a"]
    first = str(tmp_path / "a" / "sub" / "report.txt")
    assert result.skipped == (
        Skipped(str(tmp_path / "b" / "sub" / "report.txt"), f"duplicate id sub/report (also from {first})"),
        Skipped(str(tmp_path / "c.jsonl"), f"duplicate id sub/report (also from {first})"),
    )


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "note.txt").write_text("Only once\n")
    os.symlink(root, root / "sub" / "back-to-root")  # a loop through the parent
    os.symlink(root / "self-loop", root / "self-loop")  # a link to itself (ELOOP)
    os.symlink(tmp_path / "missing", root / "dangling.txt")
    result = load_paths([root])
    assert [d.id for d in result.documents] == ["sub/note"]
    assert result.skipped == ()


def test_unsupported_suffix_named_explicitly_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    result = load_paths([tmp_path / "tool.exe"])
    assert result.documents == ()
    assert result.skipped[0].path == str(tmp_path / "tool.exe")
    assert result.skipped[0].reason.startswith("unsupported type .exe")


def test_suffix_match_ignores_case(tmp_path: Path) -> None:
    (tmp_path / "README.TXT").write_text("Read me\n")
    assert only(load_paths([tmp_path])).id == "README"


# ---------------------------------------------------------------- encodings and normalisation


def test_cp1252_file_is_decoded(tmp_path: Path) -> None:
    (tmp_path / "mutu.txt").write_bytes(b"Chelsea sack Mutu\n\na \xa315.8m signing, Mutu\x92s lawyer said\n")
    doc = only(load_paths([tmp_path / "mutu.txt"]))
    assert doc.text == "Chelsea sack Mutu\n\na \u00a315.8m signing, Mutu\u2019s lawyer said"


def test_newlines_bom_and_control_characters_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "crlf.txt").write_bytes(b"\xef\xbb\xbfTitle line\r\nsecond\rthird\x07\x1b[0m\tend \r\n\r\n  \n")
    doc = only(load_paths([tmp_path / "crlf.txt"]))
    assert doc.text == "Title line\nsecond\nthird[0m\tend"
    assert doc.title == "Title line"


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    (tmp_path / "wide.txt").write_bytes("Caf\u00e9 report\n".encode("utf-16"))
    assert read_text_file(tmp_path / "wide.txt") == "Caf\u00e9 report\n"


def test_no_carriage_returns_and_no_markup_in_any_text(tmp_path: Path) -> None:
    (tmp_path / "crlf.html").write_bytes(b"<html>\r\n<body>\r\n<p>One\r\ntwo</p>\r\n<p>Three &lt;four&gt;</p></body></html>")
    (tmp_path / "crlf-notes.md").write_bytes(b"# Head\r\n\r\nBody\r\n")
    docs = load_paths([REPORTS, tmp_path]).documents
    assert len(docs) == 8
    assert all("\r" not in d.text for d in docs)
    html_texts = [d.text for d in docs if d.source.endswith((".html", ".htm"))]
    assert "One two\n\nThree <four>" in html_texts  # '<four>' here is decoded text, not markup
    for text in html_texts:
        for tag in ("<p", "</", "<html", "<body", "<li", "<title", "<script", "&amp;", "&lt;", "should not appear"):
            assert tag not in text


@given(st.text())
def test_normalised_text_has_no_cr_or_controls_and_is_stable(text: str) -> None:
    clean = normalise_text(text)
    assert "\r" not in clean and "\ufeff" != clean[:1]
    assert all(c in "\n\t" or ord(c) >= 32 for c in clean)
    assert clean == clean.rstrip()
    assert normalise_text(clean) == clean


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="\ufffd"), min_size=1))
def test_printable_utf8_text_round_trips(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    assert read_text_file(path) == text.removeprefix("\ufeff")


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024/03/05", "2024-03-05"),
        ("5 March 2024", "2024-03-05"),
        ("5th of March, 2024", "2024-03-05"),
        ("March 5, 2024", "2024-03-05"),
        ("Mar. 5 2024", "2024-03-05"),
        ("05.03.2024", "2024-03-05"),
        ("2024-03-05T10:00:00+01:00", "2024-03-05"),
        ("Tue, 05 Mar 2024 10:00:00 +0000", "2024-03-05"),
        ("D:20240305101500Z", "2024-03-05"),
        ("25/12/2023", "2023-12-25"),
        ("03/04/2024", None),  # day-first or month-first: ambiguous
        ("2024-02-30", None),
        ("March 2024", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_date(written: str, iso: str | None) -> None:
    assert parse_date(written) == iso


def test_front_matter_needs_key_value_lines(tmp_path: Path) -> None:
    (tmp_path / "rule.md").write_text("---\nJust a rule, not front matter\n---\nBody\n")
    doc = only(load_paths([tmp_path / "rule.md"]))
    assert doc.text.startswith("---\nJust a rule")
    assert (tmp_path / "rule.md").read_text().rstrip() == doc.text


def test_date_line_only_within_first_five_lines(tmp_path: Path) -> None:
    (tmp_path / "late.txt").write_text("Title\n1\n2\n3\n4\nDate: 2024-03-05\n")
    assert only(load_paths([tmp_path / "late.txt"])).date is None


# ---------------------------------------------------------------- bad files: skipped, the rest still loads


def _bad_file(kind: str, folder: Path) -> Path:
    builders: dict[str, Callable[[], Path]] = {
        "empty": lambda: _write(folder / "empty.txt", b""),
        "blank": lambda: _write(folder / "blank.md", b"  \n\n\t\n"),
        "binary": lambda: _write(folder / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
        "invalid-utf8": lambda: _write(folder / "garbled.txt", b"\x81\x8d\x8f\x90\x9d" * 200),
        "truncated-pdf": lambda: _write(folder / "cut.pdf", make_pdf(["Some text here"])[:300]),
        "not-a-pdf": lambda: _write(folder / "fake.pdf", b"%PDF-1.4\nthis is not really a pdf\n"),
        "encrypted-pdf": lambda: write_encrypted_pdf(folder / "locked.pdf", user_password="secret"),
        "no-text-pdf": lambda: write_pdf(folder / "blank.pdf", [""]),
        "not-a-zip-docx": lambda: _write(folder / "fake.docx", b"Just some text, not a zip"),
        "broken-docx": lambda: _write_zip(folder / "broken.docx", {"hello.txt": b"no word/document.xml here"}),
        "zip-bomb-docx": lambda: write_zip_bomb(folder / "bomb.docx", 5 * 1024 * 1024),
        "too-big": lambda: _sparse(folder / "huge.txt", DEFAULT_MAX_BYTES + 1),
        "empty-html": lambda: _write(folder / "shell.html", b"<html><head><title>T</title></head><body></body></html>"),
        "missing": lambda: folder / "does-not-exist.txt",
    }
    return builders[kind]()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)  # reads as NUL bytes, but the size check comes before any reading
    return path


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


BAD_FILES = {
    "empty": "empty file",
    "blank": "no text",
    "binary": "binary file",
    "invalid-utf8": "not UTF-8 or cp1252 text",
    "truncated-pdf": "corrupt PDF",
    "not-a-pdf": "corrupt PDF",
    "encrypted-pdf": "encrypted PDF",
    "no-text-pdf": "no text",
    "not-a-zip-docx": "corrupt DOCX",
    "broken-docx": "corrupt DOCX",
    "zip-bomb-docx": "zip bomb",
    "too-big": "larger than 50 MB limit",
    "empty-html": "no text",
    "missing": "no such file or folder",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_skipped_and_the_others_load(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _bad_file(kind, tmp_path)
    with caplog.at_level(logging.WARNING, logger="qa.ingest.files"):
        result = load_paths([REPORTS / "strike.txt", bad, REPORTS / "notes" / "harvest.md"])
    assert [d.id for d in result.documents] == ["strike", "harvest"]
    assert len(result.skipped) == 1
    skipped = result.skipped[0]
    assert skipped.path == str(bad)
    assert skipped.reason.startswith(BAD_FILES[kind]) and "\n" not in skipped.reason
    assert str(bad) in caplog.text and BAD_FILES[kind] in caplog.text


@pytest.mark.parametrize("kind", sorted(set(BAD_FILES) - {"missing"}))
def test_bad_files_in_a_folder_are_skipped_and_load_file_raises(kind: str, tmp_path: Path) -> None:
    bad = _bad_file(kind, tmp_path)
    (tmp_path / "good.txt").write_text("A good report\n")
    result = load_paths([tmp_path])
    assert [d.id for d in result.documents] == ["good"]
    assert [s.path for s in result.skipped] == [str(bad)]
    with pytest.raises(IngestError, match=BAD_FILES[kind]) as raised:
        load_file(bad)
    assert str(bad) in str(raised.value)


def test_small_max_bytes_limit(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("tiny\n")
    (tmp_path / "large.txt").write_text("large " * 100)
    result = load_paths([tmp_path], max_bytes=100)
    assert [d.id for d in result.documents] == ["small"]
    assert result.skipped == (Skipped(str(tmp_path / "large.txt"), "larger than 100 bytes limit (600 bytes); raise max_bytes to load it"),)


def test_zip_bomb_of_200_mb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = write_zip_bomb(tmp_path / "bomb.docx", 200 * 1024 * 1024)
    assert bomb.stat().st_size < 1024 * 1024
    result = load_paths([bomb])
    assert result.documents == ()
    assert result.skipped[0].reason.startswith("zip bomb: uncompressed size over limit")


def test_deeply_nested_html_has_no_recursion_error(tmp_path: Path) -> None:
    depth = 100_000
    (tmp_path / "deep.html").write_text("<div>" * depth + "Deep <b>text</b>" + "</div>" * depth + "<p>after</p>")
    doc = only(load_paths([tmp_path / "deep.html"]))
    assert doc.text == "Deep text\n\nafter"


def test_malformed_jsonl_lines_are_skipped_and_the_rest_load(tmp_path: Path) -> None:
    lines = [
        '{"text": "first good"}',
        '{"text": "unterminated',
        '{"title": "no text field"}',
        '["not", "an", "object"]',
        '{"text": 42}',
        '{"text": "   "}',
        "[" * 100_000,
        '{"text": "bad id", "id": [1]}',
        '{"text": "nul\\u0000 and \\r\\n escapes"}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = load_paths([path])
    assert [(d.id, d.text) for d in result.documents] == [("mixed:1", "first good"), ("mixed:9", "nul and \n escapes")]
    assert all(s.path == str(path) for s in result.skipped)
    assert [s.reason.split(":")[0] for s in result.skipped] == [f"line {n}" for n in range(2, 9)]
    assert result.skipped[0].reason.startswith("line 2: invalid JSON")
    assert result.skipped[1].reason == 'line 3: no "text" field'
    assert str(result.skipped[1]) == f'{path}: line 3: no "text" field'
    with pytest.raises(IngestError, match="7 bad line"):
        load_file(path)


def test_everything_bad_in_one_folder(tmp_path: Path) -> None:
    for kind in BAD_FILES:
        _bad_file(kind, tmp_path)
    (tmp_path / "zz-good.txt").write_text("Still loads\n")
    result = load_paths([tmp_path])
    assert [d.id for d in result.documents] == ["zz-good"]
    assert len(result.skipped) == len(BAD_FILES) - 1  # 'missing' was never created


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"}


# ---------------------------------------------------------------- a real corpus


@pytest.mark.shared
def test_bbc_news_corpus_loads_completely() -> None:
    result = load_paths([need_shared("data", "bbc-news")])
    assert result.skipped == ()
    articles = [d for d in result.documents if "/" in d.id]
    assert len(articles) == 2225
    assert sorted(d.id for d in result.documents if "/" not in d.id) == ["PROVENANCE", "README"]
    counts = {topic: sum(d.id.startswith(topic + "/") for d in articles)
              for topic in ("business", "entertainment", "politics", "sport", "tech")}
    assert counts == {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}
    mutu = next(d for d in articles if d.id == "sport/199")  # the one cp1252 file
    assert mutu.title == "Chelsea sack Mutu" and "\u00a315.8m" in mutu.text
    assert all(d.title and "\r" not in d.text for d in articles)
