"""The serving tokenizer (qa.models.files.Tokenizer, the `tokenizers` package alone) gives the same windows, ids, token
types, offsets and sequence ids as transformers' fast tokenizer did, for every call the encoder and the reader make."""
import pytest

from conftest import SEEDS

from qa.models.files import Tokenizer, embedding_model_path, reader_model_path

FILLER = ("The committee met again to review the annual budget, and members discussed routine matters of "
          "procedure, staffing and the maintenance of public buildings in several districts. ")
TEXTS = [
    "Iraq passed an anti-trafficking law in 2012.",
    "  Leading spaces,\ttabs\nand new lines;   Café naïve façade — “quotes” and 'apostrophes'.  ",
    "Numbers 1,230.5 km, 8,849 m, 3×10⁸ m/s, e-mail: a.b@example.org, URL https://example.org/x?y=1",
    "東京 and Zürich: CJK 漢字 mixed with Latin, an emoji 🙂, and a soft hyphen\u00ad here.",
    FILLER * 30 + "The new bridge was opened by Mayor Helen Crofts in 1987. " + FILLER * 5,  # ~1,100 word pieces
    "word " * 700,  # exactly repeating pieces: window boundaries fall on identical tokens
]
QUESTIONS = ["Who opened the bridge?", "When did Iraq pass its anti-trafficking law?", "What?"]


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*"))[:4] if p.suffix in (".txt", ".md")]


@pytest.fixture(scope="module", params=["embedding", "reader"])
def pair(request):
    transformers = pytest.importorskip("transformers")
    folder = embedding_model_path() if request.param == "embedding" else reader_model_path()
    return Tokenizer.from_folder(folder), transformers.AutoTokenizer.from_pretrained(str(folder))


def same(ours, theirs, keys) -> None:
    for key in keys:
        want = theirs[key]
        got = ours[key]
        if key == "offset_mapping":
            want = [[tuple(o) for o in row] for row in want] if want and isinstance(want[0], list) else \
                [tuple(o) for o in want]
        assert got == want, key


@pytest.mark.parametrize("max_length, stride", [(384, 128), (64, 16), (40, 0)])
def test_reader_windows_are_identical_to_transformers(pair, max_length, stride):
    ours, theirs = pair
    contexts = TEXTS + seed_texts()
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(contexts))]
    kw = dict(truncation="only_second", max_length=max_length, stride=stride, return_overflowing_tokens=True,
              return_offsets_mapping=True, padding=False, verbose=False)
    got, want = ours(questions, contexts, **kw), theirs(questions, contexts, **kw)
    assert len(got["input_ids"]) >= len(contexts) + 4, "long texts must overflow into several windows"
    same(got, want, ["input_ids", "token_type_ids", "attention_mask", "offset_mapping", "overflow_to_sample_mapping"])
    for w in range(len(want["input_ids"])):
        assert got.sequence_ids(w) == want.sequence_ids(w)


def test_encoder_calls_are_identical_to_transformers(pair):
    ours, theirs = pair
    texts = TEXTS + seed_texts()
    for text in texts:  # one text: flat lists, no special tokens, no truncation
        kw = dict(add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
        same(ours(text, **kw), theirs(text, **kw), ["input_ids", "offset_mapping"])
    kw = dict(add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    same(ours(texts, **kw), theirs(texts, **kw), ["input_ids", "offset_mapping"])
    kw = dict(add_special_tokens=False, truncation=True, max_length=254, verbose=False)  # queries: cut to the window
    same(ours(texts, **kw), theirs(texts, **kw), ["input_ids"])
    assert (ours.cls_token_id, ours.sep_token_id) == (theirs.cls_token_id, theirs.sep_token_id)
    assert len(ours) == len(theirs)


def test_a_damaged_or_missing_tokenizer_names_the_file(tmp_path):
    from qa.errors import ModelCorrupt, ModelNotFound

    with pytest.raises(ModelNotFound, match="no tokenizer.json"):
        Tokenizer.from_folder(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    with pytest.raises(ModelCorrupt, match="cannot load the tokenizer .*tokenizer.json"):
        Tokenizer.from_folder(tmp_path)


def test_bad_calls_are_refused():
    tok = Tokenizer.from_folder(reader_model_path())
    with pytest.raises(ValueError, match="does not pad"):
        tok(["a", "b"], padding=True)
    with pytest.raises(ValueError, match="needs max_length"):
        tok("a", truncation=True)
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        tok(["a", "b"], ["c"])
