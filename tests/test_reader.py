"""The shipped span reader: windows, offsets, no-answer, and an accuracy floor on a SQuAD sample."""
import json

import numpy as np
import pytest

from qa.assistant import GoldContextReader
from qa.eval.metrics import exact_score, f1_score
from qa.reading.rules_reader import RulesReader
from qa.settings import Settings
from qa.types import Chunk

from conftest import DATA, damaged_model

FILLER = ("The committee met again to review the annual budget, and members discussed routine matters of "
          "procedure, staffing and the maintenance of public buildings in several districts. ")


def test_answer_in_a_late_window_maps_back_exactly(span_reader):
    fact = "The new bridge over the river Ouse was opened by Mayor Helen Crofts in 1987."
    text = FILLER * 30 + fact + " " + FILLER * 5  # ~1,100 word pieces: many windows
    chunk = Chunk("long", 0, 500, 500 + len(text), text)  # the chunk sits at offset 500 of its report
    report = "x" * 500 + text
    enc = span_reader._tokenizer("Who opened the bridge?", text, truncation="only_second",
                                 max_length=span_reader.max_length, stride=span_reader.stride,
                                 return_overflowing_tokens=True)
    assert len(enc["input_ids"]) >= 4, "the passage must span several windows"
    [span] = span_reader.read("In which year was the new bridge over the Ouse opened?", [chunk])
    assert span.text == "1987"
    assert report[span.start:span.end] == span.text == text[span.start - 500:span.end - 500]
    [who] = span_reader.read("Who opened the new bridge over the river Ouse?", [chunk])
    assert "Helen Crofts" in who.text and report[who.start:who.end] == who.text


def test_spans_from_several_chunks(span_reader):
    a = Chunk("a", 0, 0, 40, "The Rhine is 1,230 kilometres long.")
    b = Chunk("b", 3, 100, 160, "Mount Everest is 8,849 metres high, in the Himalayas.")
    spans = span_reader.read("How high is Mount Everest?", [a, b])
    best = max(spans, key=lambda s: s.score)
    assert best.chunk.doc_id == "b" and "8,849" in best.text
    assert best.start >= 100 and best.end <= 160


def test_confidence_is_calibrated_to_the_threshold(span_reader):
    ctx = "The museum opened in 1921 and holds 4,000 paintings."
    chunk = Chunk("m", 0, 0, len(ctx), ctx)
    [yes] = span_reader.read("When did the museum open?", [chunk])
    [no] = span_reader.read("What is the boiling point of mercury?", [chunk])
    assert yes.text == "1921" and yes.score > 0.5 > no.score


def test_f1_floor_on_squad_sample(span_reader):
    """Regression guard: measured 60.6 EM / 71.2 F1 (forced answers) on this sample when the reader shipped."""
    data = json.loads((DATA / "squad_sample.json").read_text())
    reader = GoldContextReader(span_reader, Settings(not_found_threshold=0.0))
    em, f1, n = 0.0, 0.0, 0
    for art in data["data"]:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                pred = reader.read(qa["question"], p["context"]).text or ""
                em += exact_score(pred, golds)
                f1 += f1_score(pred, golds)
                n += 1
    assert n == 155
    assert 100 * f1 / n >= 66.0
    assert 100 * em / n >= 55.0


def test_rules_reader_narrows_by_question_type():
    text = ("The dam was completed in March 2019 at a cost of $2 billion. The dam was built by Acme Engineering. "
            "The project employed 3,500 workers in Laos.")
    c = Chunk("d", 0, 0, len(text), text)
    r = RulesReader()
    by_q = {q: r.read(q, [c])[0].text for q in
            ["When was the dam completed?", "How many workers did the project employ?", "Who built the dam?"]}
    assert by_q["When was the dam completed?"] == "March 2019"
    assert by_q["How many workers did the project employ?"].startswith("3,500")
    assert by_q["Who built the dam?"] == "Acme Engineering"


def test_missing_model_names_what_to_do(tmp_path, monkeypatch):
    from qa.errors import ModelNotFound
    from qa.reading.reader import SpanReader

    monkeypatch.setenv("QA_READER_MODEL", str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFound, match="training/train_reader.py"):
        SpanReader()


def test_damaged_weights_say_which_file(tmp_path, monkeypatch):
    from qa.errors import ModelCorrupt
    from qa.reading.reader import SpanReader

    damaged_model(tmp_path, monkeypatch, "reader", "model.safetensors", lambda b: b[: 1 << 20])  # an interrupted copy
    reader = SpanReader()
    with pytest.raises(ModelCorrupt, match="model.safetensors.*damaged or incomplete"):
        reader.read("When?", [Chunk("d", 0, 0, 10, "It was 2012.")])
    assert reader._encoder is None  # nothing half-loaded: a later call tries again


def test_span_margins_match_confidences_and_fp16_on_cpu_is_refused(span_reader):
    import math

    from qa.reading.reader import SpanReader

    text = "The Anti-Human Trafficking Law was passed by Iraq's parliament in 2012 after years of debate."
    (sp,) = span_reader.read("When did Iraq pass its anti-trafficking law?", [Chunk("d", 0, 0, len(text), text)])
    assert sp.text == "2012" and sp.margin is not None
    assert math.isclose(1 / (1 + math.exp(-sp.margin)), sp.score, rel_tol=1e-9)
    with pytest.raises(ValueError, match="needs a GPU"):
        SpanReader(device="cpu", precision="fp16")


def test_bf16_reader_agrees_with_fp32():
    from qa.reading.reader import SpanReader

    squad = json.loads((DATA / "squad_sample.json").read_text())
    items = [(qa["question"], p["context"]) for a in squad["data"] for p in a["paragraphs"] for qa in p["qas"]][:24]
    readers = [SpanReader(precision="fp32"), SpanReader(precision="bf16")]
    got = [[r.read(q, [Chunk("d", 0, 0, len(c), c)])[0].text for q, c in items] for r in readers]
    same = sum(x == y for x, y in zip(*got))
    assert same >= 22, list(zip(*got))  # near-ties may flip in bf16 (2,000 SQuAD questions: EM 60.70 vs 60.65)


def test_lean_reader_equals_bert_for_question_answering(span_reader):
    """The reader runs on weights read straight from its safetensors (qa/models/lean_bert.py), not transformers' model:
    same start/end logits as BertForQuestionAnswering, with token types and padding."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.models.lean_bert import LeanBert
    from qa.reading.reader import SpanReader, load_span_model

    reader = SpanReader(precision="fp32")
    reader.warm_up()
    assert isinstance(reader._encoder, LeanBert) and reader._encoder.dtype == torch.float32
    model = AutoModelForQuestionAnswering.from_pretrained(str(reader.model_path), dtype=torch.float32).eval()
    enc = AutoTokenizer.from_pretrained(str(reader.model_path))(
        ["Who opened the bridge?", "When?"], ["Mayor Helen Crofts opened the bridge in 1987.", FILLER], padding=True,
        return_tensors="pt")
    assert (enc["attention_mask"] == 0).any() and (enc["token_type_ids"] == 1).any()
    with torch.inference_mode():
        want = model(**enc)
        encoder, head = load_span_model(reader.model_path, "cpu", torch.float32)
        got = head(encoder(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).float())
    real = enc["attention_mask"].bool()
    assert torch.allclose(got[..., 0][real], want.start_logits[real], atol=1e-4)
    assert torch.allclose(got[..., 1][real], want.end_logits[real], atol=1e-4)


def _in_a_thread_with(threads: int, fn):
    """fn() in a new thread whose torch intra-op thread count is ``threads`` (torch keeps the count per thread)."""
    import threading

    import torch

    out, failed = [], []

    def run():
        torch.set_num_threads(threads)
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            failed.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return out[0]


def test_packed_weights_give_the_same_bits_as_plain_products_on_one_thread(monkeypatch):
    """In bf16 on a CPU the reader and the encoder keep their projection weights packed in oneDNN's layout and use them
    on one intra-op thread (a server's one thread a question). No answer may depend on it: on one thread every packed
    projection of both models equals F.linear bit for bit at every row count from 1 to 384 (first layer; five counts
    in the others, whose shapes are the same) (the reader's windows,
    the encoder's questions and uploaded passages), and the reader's hidden states equal the unpacked pass's at every
    padded width. On two threads the packed copy is not used (there oneDNN's packed 1,536-wide product differs in the
    last bit of some rows on an AMX Xeon), and a model loaded on two threads carries none."""
    import torch
    import torch.nn.functional as F

    from qa.models.files import embedding_model_path
    from qa.models.lean_bert import _PROJECTIONS, LeanBert, _can_pack, _packed_linear, load_tensors, read_config
    from qa.reading.reader import SpanReader

    if not _can_pack():
        pytest.skip("this torch build or CPU has no oneDNN bf16 products")
    reader = SpanReader(precision="bf16")
    reader.warm_up()
    models = {}
    for name, folder in (("reader", reader.model_path), ("encoder", embedding_model_path())):
        tensors, config = load_tensors(folder), read_config(folder)
        models[name] = (_in_a_thread_with(1, lambda: LeanBert(tensors, config, dtype=torch.bfloat16)),  # as served
                        LeanBert(tensors, config, dtype=torch.bfloat16, pack=False))
        packed, plain = models[name]
        if not packed.packed:
            pytest.skip(f"oneDNN's packed products give other bits than F.linear on this CPU ({name}): not used")
        assert not plain.packed
        assert not _in_a_thread_with(2, lambda: LeanBert(tensors, config, dtype=torch.bfloat16)).packed

    def projections(layer, row_counts):
        g = torch.Generator().manual_seed(5)
        bad = []
        with torch.inference_mode():
            for p in _PROJECTIONS:
                w, b = getattr(layer, p + "_w"), getattr(layer, p + "_b")
                for rows in row_counts:
                    x = torch.randn(1, rows, w.shape[1], generator=g).to(torch.bfloat16)
                    if not torch.equal(F.linear(x, w, b), _packed_linear(x, layer.packed_w[p], b)):
                        bad.append((p, rows))
        return bad

    for name, (packed, _) in models.items():  # every count on the first layer; the others have the same shapes
        for i, layer in enumerate(packed.layers):
            counts = range(1, 385) if i == 0 else (1, 17, 64, 200, 384)
            assert _in_a_thread_with(1, lambda: projections(layer, counts)) == [], f"{name} layer {i}"

    g = torch.Generator().manual_seed(3)
    widths = sorted({reader.padded_width(n) for n in range(1, reader.max_length + 1)})
    inputs = []
    for width in widths:
        ids = torch.randint(1000, 29000, (1, width), generator=g)
        types, mask = torch.zeros_like(ids), torch.ones_like(ids)
        types[:, width // 5:] = 1
        mask[:, width - width // 7:] = 0
        inputs.append((ids, mask, types))

    def hidden(model):
        with torch.inference_mode():
            return [model(*x) for x in inputs]

    from qa.models import lean_bert

    calls = []
    real = lean_bert._packed_linear
    monkeypatch.setattr(lean_bert, "_packed_linear", lambda *a: calls.append(1) or real(*a))
    packed, plain = models["reader"]
    for threads, used in ((1, True), (2, False)):
        calls.clear()
        want, got = _in_a_thread_with(threads, lambda: (hidden(plain), hidden(packed)))
        different = [w for w, a, b in zip(widths, want, got) if not torch.equal(a, b)]
        assert not different, f"{threads} thread(s): packed and plain differ at widths {different}"
        assert bool(calls) == used, f"{threads} thread(s): the packed products were {'not ' if used else ''}used"


def test_a_folder_the_lean_pass_does_not_implement_is_refused_with_the_reason(tmp_path, monkeypatch):
    """Serving has one forward pass (qa/models/lean_bert.py) and no transformers fallback: a reader folder of another kind
    is a ModelUnsupported that names the setting, before any weights are read, and nothing is left half-loaded."""
    from qa.errors import ModelUnsupported
    from qa.reading.reader import SpanReader

    damaged_model(tmp_path, monkeypatch, "reader", "config.json",
                  lambda b: b.replace(b'"hidden_act": "gelu"', b'"hidden_act": "gelu_new"'))
    reader = SpanReader()
    with pytest.raises(ModelUnsupported, match="hidden_act 'gelu_new'"):
        reader.read("When?", [Chunk("d", 0, 0, 10, "It was 2012.")])
    assert reader._encoder is None
