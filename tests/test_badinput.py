"""Bad input end to end: odd questions through ``Assistant.ask`` and ``qa ask``; bad files through ``qa index`` and
``Indexer.sync`` (each refused by name while the good file beside it is indexed and answerable); upload names with
``..`` through the app's upload handler.

The loader-level cases live in tests/test_ingest.py; here the same kinds of file go through the indexer and the CLI.
How many inputs of each kind were tried is written to .cache/stress/badinput.json (``make stress`` prints it).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from qa.assistant import Assistant, check_question
from qa.cli import main
from qa.errors import BadQuestion, IngestError
from qa.store.indexer import Indexer
from qa.ingest.files import DEFAULT_MAX_BYTES, load_file, load_paths
from qa.settings import MAX_QUESTION_CHARS, Settings
from qa.store.index import IndexStore
from qa.types import Answer
from qa.ui.service import ChatService

from conftest import ROOT, SEED_QUESTION, write_tally
from test_ingest import make_pdf, write_encrypted_pdf, write_zip_bomb

TALLY: Counter[str] = Counter()
TALLY_FILE = ROOT / ".cache" / "stress" / "badinput.json"


@pytest.fixture(scope="module", autouse=True)
def _write_tally():
    yield
    write_tally(TALLY_FILE, TALLY)


def _one_error_line(err: str) -> str:
    """stderr of a failed ``qa`` call: exactly one line, "error: ...", no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def _check_answer(answer: Answer, store: IndexStore, question: str) -> None:
    """A well-formed Answer: its citations point at real report text (the invariants the app renders from)."""
    assert isinstance(answer, Answer)
    assert answer.question == check_question(question, MAX_QUESTION_CHARS)
    assert answer.text is None or (isinstance(answer.text, str) and answer.text.strip())
    assert 0.0 <= answer.score <= 1.0
    for c in answer.citations:
        doc = store.documents[c.doc_id]
        assert doc.text[c.passage_start:c.passage_end] == c.passage
        if c.answer_start is not None:
            assert c.passage_start <= c.answer_start < c.answer_end <= c.passage_end
    if answer.text is not None:
        first = answer.citations[0]
        assert store.documents[first.doc_id].text[first.answer_start:first.answer_end] == answer.text


# ---------------------------------------------------------------- questions

# kind -> (question, what the one-line error says)
BAD_QUESTIONS = {
    "empty": ("", "question is empty"),
    "whitespace": (" \t\n\r\u00a0\u3000\u2003 ", "question is empty"),
    "100k-chars": ("why " * 25_000, f"limit is {MAX_QUESTION_CHARS:,}"),
    "control-chars": ("\x00\x01\x07\x08\x1b\x7f\x0b\x0c", "question is empty"),
    "punctuation-only": ("?!?... ,;: — «» ¿¡ …", "no words"),
    "symbols-only": ("🙂🙂 ++ == ## $$ ©", "no words"),
    "zero-width-only": ("\u200b\u200c\ufeff", "no words"),
}

# questions that are odd but answerable: an Answer (found or not), never an error
ODD_QUESTIONS = {
    "arabic": "متى أقر العراق قانون مكافحة الاتجار بالبشر؟",
    "chinese": "伊拉克什么时候通过了反人口贩卖法？",
    "cyrillic": "Когда Ирак принял закон о борьбе с торговлей людьми?",
    "devanagari": "इराक ने मानव तस्करी विरोधी कानून कब पारित किया?",
    "greek-math": "∑ αβγ ∫ when ≠ law?",
    "controls-inside": "when\x00 did Iraq\x07 pass its\x1b anti-trafficking law",
    "at-the-limit": "when did Iraq pass its anti-trafficking law " + "x" * (MAX_QUESTION_CHARS - 44),
    "html-injection": '<script>alert(1)</script> when did Iraq pass its law? <img src=x onerror="alert(2)">',
    "sql-ish": "'; DROP TABLE reports; -- when did Iraq pass its anti-trafficking law",
    "format-string": "%s %n {0} {question!r} ${HOME} when did Iraq pass its law",
}


@pytest.mark.parametrize("kind", sorted(BAD_QUESTIONS))
def test_bad_question_is_refused_by_assistant_and_cli(kind, seed_assistant, seed_index, capsys):
    question, says = BAD_QUESTIONS[kind]
    TALLY[f"question:{kind}"] += 2
    with pytest.raises(BadQuestion, match=re.escape(says)):
        seed_assistant.ask(question)
    assert main(["ask", question, "--index", str(seed_index)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert says in _one_error_line(out.err)


@pytest.mark.parametrize("kind", sorted(ODD_QUESTIONS))
def test_odd_question_gets_an_answer(kind, seed_assistant, monkeypatch):
    TALLY[f"question:{kind}"] += 1
    question = ODD_QUESTIONS[kind]
    answer = seed_assistant.ask(question)
    _check_answer(answer, seed_assistant.store, question)
    if kind == "sql-ish":
        # buried in SQL, the question reads less surely: the reader may say "not found", never something else ...
        assert answer.text in ("2012", None)
        # ... and the question reaches it whole: with every answer kept, its best answer is still the year
        monkeypatch.setattr(seed_assistant, "settings", seed_assistant.settings.with_(not_found_threshold=0.0))
        answer = seed_assistant.ask(question)
        _check_answer(answer, seed_assistant.store, question)
    if "Iraq pass its anti-trafficking law" in question:
        assert answer.text == "2012"


def test_odd_questions_through_the_cli(seed_index, capsys):
    for kind in ("controls-inside", "cyrillic"):
        TALLY[f"question:{kind}"] += 1
        assert main(["ask", ODD_QUESTIONS[kind], "--index", str(seed_index), "--json"]) == 0
        out = capsys.readouterr()
        d = json.loads(out.out)
        assert "Traceback" not in out.err
        if kind == "controls-inside":
            assert d["text"] == "2012"


_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "P", "S", "M"]), max_size=60),
    st.builds(lambda a, b: a + SEED_QUESTION + b, st.text(max_size=30), st.text(max_size=30)),
    st.builds(lambda a, b: a + SEED_QUESTION + b, st.text(st.characters(categories=["Cs", "Lo"]), max_size=10),
              st.text(st.characters(categories=["Cs", "Zs"]), max_size=10)),  # lone surrogates around a question
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=MAX_QUESTION_CHARS + 1,
            max_size=MAX_QUESTION_CHARS + 50),  # over the limit
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=_TEXT)
def test_any_text_gives_an_answer_or_bad_question(seed_assistant, question):
    TALLY["question:hypothesis-text"] += 1
    try:
        answer = seed_assistant.ask(question)
    except BadQuestion as e:
        msg = str(e)
        assert "question" in msg and "\n" not in msg
        return
    _check_answer(answer, seed_assistant.store, question)


# Questions that used to crash the reader: not valid Unicode (a TypeError from the tokenizer), or under the
# 2,000-character limit but over 252 word pieces, which left the reader's 384-token window no room past its
# 128-token stride (253-380 pieces: a Rust panic, a BaseException that hung the /chat request; 381+: a bare
# Exception("Truncation error")). qa/reading/reader.py now cuts the question to 64 word pieces for the reader.
_PASTED = (ROOT / "seeds" / "iraq-trafficking-networks.txt").read_text(encoding="utf-8")[:1500]
LONG_OR_BROKEN = {
    "lone-surrogates": "\udce9t\udce9 when did Iraq pass its anti-trafficking law",  # argv from a latin-1 terminal
    "253-word-pieces": "a " * 253,
    "300-word-pieces": "a " * 300,
    "999-word-pieces": "a " * 999,
    "pasted-paragraph": _PASTED + " When was the law passed?",
    "hangul-syllables": "한 " * 999,  # 3 word pieces per character
}


@pytest.mark.parametrize("kind", sorted(LONG_OR_BROKEN))
def test_long_or_mis_encoded_question_gets_an_answer(kind, seed_assistant):
    TALLY[f"question:{kind}"] += 1
    question = LONG_OR_BROKEN[kind]
    _check_answer(seed_assistant.ask(question), seed_assistant.store, question)


def test_the_question_is_cut_for_the_reader_not_for_the_search(seed_assistant):
    """The start of a long question still finds the answer: what the reader cannot take is dropped at the end."""
    TALLY["question:long-with-padding"] += 1
    answer = seed_assistant.ask(SEED_QUESTION + " " + "please " * 250)  # 1,794 characters, 250+ word pieces
    assert answer.text == "2012"


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=st.lists(st.sampled_from(["a", "the", "law", "Iraq", "?", "2012", "when", "did", "(", "x", "한"]),
                         min_size=200, max_size=MAX_QUESTION_CHARS // 4).map(" ".join))
def test_long_questions_under_the_limit_give_an_answer(seed_assistant, question):
    TALLY["question:hypothesis-long"] += 1
    _check_answer(seed_assistant.ask(question), seed_assistant.store, question)


def test_cli_question_from_a_latin1_terminal(seed_index, capsys):
    TALLY["question:lone-surrogates"] += 1
    assert main(["ask", LONG_OR_BROKEN["lone-surrogates"], "--index", str(seed_index), "--json"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert json.loads(out.out)["text"] == "2012"


# ---------------------------------------------------------------- files through the indexer and the CLI

GOOD_TEXT = "Orsova bridge survey\nThe Orsova bridge over the Danube reopened in 1987 after four years of repairs.\n"
GOOD_QUESTION = "When did the Orsova bridge reopen?"
DEEP_TEXT = "The Varna ferry carried 4,512 passengers in the summer season."
DEEP_QUESTION = "How many passengers did the Varna ferry carry?"


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """kind -> (path, the start of the reason it is refused with). Built fast: the big file is sparse."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    huge = folder / "huge.txt"
    with huge.open("wb") as f:
        f.write(b"A report that is far too long.\n")
        f.truncate(DEFAULT_MAX_BYTES + 1024)  # 50 MB + 1 KB, sparse: nothing past the size check reads it
    return {
        "empty": (write("empty.txt", b""), "empty file"),
        "binary": (write("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4), "binary file"),
        "truncated-pdf": (write("cut.pdf", make_pdf(["Budget figures for 2024"])[:300]), "corrupt PDF"),
        "encrypted-pdf": (write_encrypted_pdf(folder / "locked.pdf", user_password="secret"), "encrypted PDF"),
        "invalid-utf8": (write("garbled.txt", b"\x81\x8d\x8f\x90\x9d" * 400), "not UTF-8 or cp1252 text"),
        "over-50MB": (huge, "larger than 50 MB limit"),
        "zip-bomb-docx": (write_zip_bomb(folder / "bomb.docx", 8 * 1024 * 1024), "zip bomb"),
    }


def _deep_html(path: Path, depth: int = 100_000) -> Path:
    path.write_text("<div>" * depth + DEEP_TEXT + "</div>" * depth, encoding="utf-8")
    return path


def _symlink_loops(folder: Path) -> None:
    (folder / "loop").mkdir()
    os.symlink(folder, folder / "loop" / "back-up")  # a directory cycle
    os.symlink(folder / "self.txt", folder / "self.txt")  # ELOOP


def _ask(index: Path, question: str, encoder, span_reader) -> Answer:
    a = Assistant(IndexStore.open(index), encoder, span_reader, Settings(index_dir=str(index)))
    return a.ask(question)


def test_qa_index_folder_skips_each_bad_file_by_name_and_indexes_the_rest(tmp_path, capsys, encoder, span_reader):
    folder = tmp_path / "reports"
    bad = _bad_files(folder)
    (folder / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    _deep_html(folder / "deep.html")
    _symlink_loops(folder)
    for kind in [*bad, "deeply-nested-html", "symlink-loop"]:
        TALLY[f"file:{kind}"] += 1
    index = tmp_path / "index"
    assert main(["index", str(folder), "--index", str(index), "-q"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert f"2 added, 0 updated, 0 removed, 0 unchanged, {len(bad)} skipped" in out.out
    lines = [x for x in out.err.splitlines() if x.startswith("skipped ")]
    assert len(lines) == len(bad), out.err
    for kind, (path, reason) in bad.items():
        assert any(x.startswith(f"skipped {path}: {reason}") for x in lines), (kind, out.err)
    assert sorted(IndexStore.open(index).documents) == ["deep", "good"]  # nested HTML is read, loops are not walked
    assert _ask(index, GOOD_QUESTION, encoder, span_reader).text == "1987"
    assert _ask(index, DEEP_QUESTION, encoder, span_reader).text == "4,512"


def test_qa_index_named_files_skips_each_bad_one_by_name(tmp_path, capsys, encoder, span_reader):
    bad = _bad_files(tmp_path / "r")
    good = tmp_path / "r" / "good.txt"
    good.write_text(GOOD_TEXT, encoding="utf-8")
    for kind in bad:
        TALLY[f"file:{kind}"] += 1
    index = tmp_path / "index"
    paths = [str(p) for p, _ in bad.values()]
    assert main(["index", paths[0], str(good), *paths[1:], "--index", str(index), "-q"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "1 added" in out.out and f"{len(bad)} skipped" in out.out
    for path, reason in bad.values():
        assert f"skipped {path}: {reason}" in out.err
    assert list(IndexStore.open(index).documents) == ["good"]
    assert _ask(index, GOOD_QUESTION, encoder, span_reader).text == "1987"


def test_indexer_sync_reports_bad_paths_and_keeps_the_index_whole(tmp_path, encoder, span_reader, seed_index_copy):
    bad = _bad_files(tmp_path / "r")
    good = tmp_path / "r" / "good.txt"
    good.write_text(GOOD_TEXT, encoding="utf-8")
    loop = tmp_path / "loop.txt"
    os.symlink(loop, loop)
    bad["symlink-loop"] = (loop, "no such file or folder")
    bad["missing"] = (tmp_path / "not-there.txt", "no such file or folder")
    bad["unsupported"] = (tmp_path / "r" / "tool.exe", "unsupported type .exe")
    bad["unsupported"][0].write_bytes(b"MZ\x90\x00")
    for kind in bad:
        TALLY[f"file:{kind}"] += 1
    report = Indexer(Settings(index_dir=str(seed_index_copy)), encoder).sync([good, *(p for p, _ in bad.values())])
    assert report.added == ["good"] and report.removed == []
    skipped = {s.path: s.reason for s in report.skipped}
    for kind, (path, reason) in bad.items():
        assert skipped[str(path)].startswith(reason), kind
        assert "\n" not in skipped[str(path)]
    assert _ask(seed_index_copy, GOOD_QUESTION, encoder, span_reader).text == "1987"
    assert _ask(seed_index_copy, SEED_QUESTION, encoder, span_reader).text == "2012"  # the earlier report stays


def test_explicit_symlink_loop_argument_is_skipped_by_name(tmp_path, capsys):
    """A symlink loop named on the command line is skipped with one line naming it; the run goes on."""
    loop = tmp_path / "loop.txt"
    os.symlink(loop, loop)
    good = tmp_path / "good.txt"
    good.write_text("The lighthouse at Cape Wrath was automated in 1998.")
    TALLY["file:symlink-loop"] += 1
    assert main(["index", str(loop), str(good), "--index", str(tmp_path / "index"), "-q"]) == 0
    out = capsys.readouterr()
    assert "1 added" in out.out and "1 skipped" in out.out
    lines = [line for line in out.err.splitlines() if str(loop) in line]
    assert len(lines) == 1 and lines[0].startswith("skipped ") and "Traceback" not in out.err


def test_a_bad_file_that_was_good_keeps_its_indexed_copy(tmp_path, encoder, span_reader):
    """A report that turns unreadable (truncated mid-copy, say) is skipped by name; its earlier text stays answerable."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "bridge.txt").write_text(GOOD_TEXT, encoding="utf-8")
    settings = Settings(index_dir=str(tmp_path / "index"))
    Indexer(settings, encoder).sync([folder])
    (folder / "bridge.txt").write_bytes(b"\x00\x01\x02" * 50)
    TALLY["file:became-binary"] += 1
    report = Indexer(settings, encoder).sync([folder])
    assert [s.path for s in report.skipped] == [str(folder / "bridge.txt")] and report.removed == []
    assert _ask(tmp_path / "index", GOOD_QUESTION, encoder, span_reader).text == "1987"


@pytest.mark.parametrize("damage", [b"\xff\xfe\x00\x01" * 40, b'{"id": "half a record", "text": '])
def test_a_bad_jsonl_file_that_was_good_keeps_its_indexed_reports(tmp_path, encoder, damage):
    """Like a .txt, a .jsonl file that turns unreadable (binary bytes, or JSON cut mid-record) is skipped by name and
    its reports stay in the index; once the file is deleted, they go."""
    folder = tmp_path / "r"
    folder.mkdir()
    records = [{"id": "bridge", "text": GOOD_TEXT}, {"text": "The Iron Gate dam was finished in 1972."}]
    (folder / "batch.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    (folder / "other.txt").write_text("The ferry to Calafat runs twice a day.", encoding="utf-8")
    settings = Settings(index_dir=str(tmp_path / "index"))
    first = Indexer(settings, encoder).sync([folder])
    assert sorted(first.added) == ["batch:2", "bridge", "other"]
    (folder / "batch.jsonl").write_bytes(damage)
    TALLY["file:jsonl-became-bad"] += 1
    report = Indexer(settings, encoder).sync([folder])
    assert [s.path for s in report.skipped] == [str(folder / "batch.jsonl")]
    assert report.removed == [] and sorted(IndexStore.open(tmp_path / "index").documents) == ["batch:2", "bridge",
                                                                                              "other"]
    (folder / "batch.jsonl").unlink()
    assert sorted(Indexer(settings, encoder).sync([folder]).removed) == ["batch:2", "bridge"]


def test_a_bad_jsonl_line_keeps_only_its_own_report_and_deleted_records_go(tmp_path, encoder):
    """A .jsonl file read but for one bad line keeps the report of that line; a record deleted from the file goes.
    (A record that names no source is known by its line, ``PATH:N``, so it is that line's report that stays.)"""
    folder = tmp_path / "r"
    folder.mkdir()
    records = [{"id": i, "text": f"{GOOD_TEXT} Record {i}."} for i in ("a", "b", "c", "d")]
    (folder / "batch.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    settings = Settings(index_dir=str(tmp_path / "index"))
    assert sorted(Indexer(settings, encoder).sync([folder]).added) == ["a", "b", "c", "d"]
    # b's line is cut mid-record in place, d (the last line) is deleted
    lines = [json.dumps(records[0]), '{"id": "b", "text": "cut', json.dumps(records[2])]
    (folder / "batch.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    TALLY["file:jsonl-line-became-bad"] += 1
    report = Indexer(settings, encoder).sync([folder])
    assert [(s.path, s.line) for s in report.skipped] == [(str(folder / "batch.jsonl"), 2)]
    assert report.removed == ["d"] and report.added == [] and sorted(report.unchanged) == ["a", "c"]
    assert sorted(IndexStore.open(tmp_path / "index").documents) == ["a", "b", "c"]


# ---------------------------------------------------------------- paths and names with ".."


def test_load_file_through_dotdot_reads_the_file_the_os_resolves(tmp_path):
    (tmp_path / "reports" / "sub").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text(GOOD_TEXT, encoding="utf-8")
    TALLY["file:dotdot-path"] += 2
    escaping = tmp_path / "reports" / "sub" / ".." / ".." / "outside.txt"
    (doc,) = load_file(escaping)
    assert doc.id == "outside" and "/" not in doc.id and ".." not in doc.id
    with pytest.raises(IngestError, match=re.escape(str(tmp_path / "reports" / ".." / "nope.txt"))):
        load_file(tmp_path / "reports" / ".." / "nope.txt")


def test_folder_given_through_dotdot_has_the_same_ids(tmp_path, encoder):
    (tmp_path / "reports" / "sub").mkdir(parents=True)
    (tmp_path / "reports" / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    (tmp_path / "reports" / "sub" / "deeper.txt").write_text("Deeper report.\nIt rained.\n", encoding="utf-8")
    TALLY["file:dotdot-folder"] += 1
    plain = load_paths([tmp_path / "reports"])
    dotted = load_paths([tmp_path / "reports" / "sub" / ".."])
    assert [d.id for d in dotted.documents] == [d.id for d in plain.documents] == ["good", "sub/deeper"]
    idx = Indexer(Settings(index_dir=str(tmp_path / "index")), encoder)
    idx.sync([tmp_path / "reports"])
    again = idx.sync([tmp_path / "reports" / "sub" / ".."])
    assert again.added == [] and again.removed == [] and again.n_documents == 2


UPLOAD_NAMES = ["..\\..\\windows-style.txt", "..%2F..%2Fencoded.txt", "....txt", "a..b.md", "<script>.txt",
                "名前.txt"]  # distinct ids once cleaned ("....txt" becomes "upload")


def test_upload_names_with_dotdot_are_neutralised(tmp_path, seed_index_copy):
    """ChatService.load_upload / add_files: the id and source come from the file's own name, never a path."""
    uploads = tmp_path / "uploads"
    (uploads / "sub").mkdir(parents=True)
    paths = []
    for n, name in enumerate(UPLOAD_NAMES):
        (uploads / name).write_text(f"Upload {n}\nThe count of item {n} was {100 + n} units.\n", encoding="utf-8")
        paths.append(str(uploads / name))
    outside = tmp_path / "escaped.txt"
    outside.write_text("Escaped upload\nIt says 7.\n", encoding="utf-8")
    paths.append(str(uploads / "sub" / ".." / ".." / "escaped.txt"))  # a path (not a name) with ".." segments
    TALLY["file:upload-dotdot-name"] += len(paths)
    before = sorted(p for p in tmp_path.rglob("*") if seed_index_copy not in p.parents and p != seed_index_copy)
    service = ChatService(seed_index_copy, settings=Settings(), max_upload_mb=1)
    for path in paths:
        (doc,) = service.load_upload(path)
        assert re.fullmatch(r"[\w.-]+", doc.id, re.UNICODE) and not doc.id.startswith(".")
        assert "/" not in doc.id and "\\" not in doc.id
        assert doc.source == f"upload: {Path(path).name}"
    done, errors = service.add_files(paths)
    assert errors == [] and sum(x.startswith("added ") for x in done) == len(paths)
    after = sorted(p for p in tmp_path.rglob("*") if seed_index_copy not in p.parents and p != seed_index_copy)
    assert after == before  # nothing written outside the index folder
    assert len(service.assistant.store.documents) == len(paths) + 1
