"""qa/models/lean_bert.py, serving's only forward pass, against transformers' BERT on random configurations (sizes,
attention heads, layers, vocabularies, token types) and random weights; and the refusal of what it does not
implement. The encoder's pooling read from the sentence-transformers config, against SentenceTransformer."""
import json
import shutil

import numpy as np
import pytest
import torch

from qa.errors import ModelUnsupported
from qa.models.lean_bert import LeanBert, unsupported

transformers = pytest.importorskip("transformers")

# hidden, heads, layers, intermediate, vocab, token types, positions, layer_norm_eps
CONFIGS = [(32, 1, 1, 37, 99, 1, 24, 1e-12), (48, 3, 2, 64, 500, 2, 40, 1e-6), (64, 8, 3, 128, 1000, 3, 64, 1e-12),
           (96, 12, 2, 200, 30522, 2, 80, 1e-5), (120, 6, 1, 90, 7, 4, 33, 1e-12)]


def random_bert(kind, cfg, seed):
    hidden, heads, layers, inter, vocab, types, positions, eps = cfg
    config = transformers.BertConfig(hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
                                     intermediate_size=inter, vocab_size=vocab, type_vocab_size=types,
                                     max_position_embeddings=positions, layer_norm_eps=eps, hidden_act="gelu")
    torch.manual_seed(seed)
    model = (transformers.BertModel(config, add_pooling_layer=False) if kind == "encoder"
             else transformers.BertForQuestionAnswering(config)).eval()
    with torch.no_grad():  # every weight random, LayerNorm scales and biases too, so that each one is exercised
        for p in model.parameters():
            p.normal_(0, 0.3 if p.dim() > 1 else 0.5)
    return model


def random_batch(cfg, seed, pad=True):
    _, _, _, _, vocab, types, positions, _ = cfg
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (3, positions), generator=g)
    tt = torch.randint(0, types, (3, positions), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        mask[1, positions // 2:] = 0
        mask[2, 3:] = 0
    return ids, mask, tt


@pytest.mark.parametrize("i, cfg", list(enumerate(CONFIGS)))
def test_random_encoders_match_bert_model(tmp_path, i, cfg):
    model = random_bert("encoder", cfg, seed=i)
    model.save_pretrained(tmp_path)
    lean = LeanBert.from_folder(tmp_path)
    assert isinstance(lean, torch.nn.Module) and not any(True for _ in lean.parameters())  # weights are buffers
    ids, mask, tt = random_batch(cfg, seed=100 + i)
    with torch.inference_mode():
        want = model(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
        got = lean(ids, mask, tt)
        got_unpadded = lean(ids[:1], None, tt[:1])  # no mask: the caller knows there is no padding
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-4, rtol=1e-4)
    assert torch.allclose(got_unpadded[0], want[0], atol=1e-4, rtol=1e-4)
    if cfg[5] == 1:  # one token type: None means all 0
        with torch.inference_mode():
            assert torch.allclose(lean(ids, mask)[real], want[real], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("i, cfg", list(enumerate(CONFIGS[:3])))
def test_random_span_readers_match_bert_for_question_answering(tmp_path, i, cfg):
    from qa.reading.reader import load_span_model

    model = random_bert("qa", cfg, seed=10 + i)
    model.save_pretrained(tmp_path)
    encoder, head = load_span_model(tmp_path, "cpu", torch.float32)
    ids, mask, tt = random_batch(cfg, seed=200 + i)
    with torch.inference_mode():
        want = model(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        got = head(encoder(ids, mask, tt).float())
    real = mask.bool()
    assert torch.allclose(got[..., 0][real], want.start_logits[real], atol=1e-4, rtol=1e-4)
    assert torch.allclose(got[..., 1][real], want.end_logits[real], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("change, says", [
    ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new'"),
    ({"hidden_act": "relu"}, "hidden_act 'relu'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"is_decoder": True}, "decoder"),
    ({"add_cross_attention": True}, "decoder"),
    ({"model_type": "roberta"}, "model_type 'roberta'"),
    ({"num_attention_heads": 5}, "not a multiple of num_attention_heads"),
    ({"num_hidden_layers": None}, "num_hidden_layers None"),
])
def test_what_the_lean_pass_does_not_implement_is_refused_with_the_reason(tmp_path, change, says):
    model = random_bert("encoder", CONFIGS[1], seed=0)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert unsupported(config) is None
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert unsupported(config) is not None and says in unsupported(config)
    with pytest.raises(ModelUnsupported, match=says):
        LeanBert.from_folder(tmp_path)


def test_weights_not_in_safetensors_are_refused(tmp_path):
    model = random_bert("encoder", CONFIGS[0], seed=0)
    model.save_pretrained(tmp_path, safe_serialization=False)
    if (tmp_path / "model.safetensors").exists():  # recent transformers always write safetensors
        (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelUnsupported, match="only safetensors weights are read"):
        LeanBert.from_folder(tmp_path)


# --- pooling, as the model's sentence-transformers config says ---
TEXTS = ["Iraq passed an anti-trafficking law in 2012.", "The harbour froze in January.",
         "Wheat prices rose sharply in Argentina after the drought. " * 6, "short"]


def model_copy(tmp_path):
    from qa.models.files import embedding_model_path

    src = embedding_model_path()
    dst = tmp_path / "model"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    return dst


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len"])
def test_pooling_mode_is_read_from_the_model_and_matches_sentence_transformers(tmp_path, mode):
    st = pytest.importorskip("sentence_transformers")
    from qa.models.encoder import Encoder

    folder = model_copy(tmp_path)
    cfg_path = folder / "1_Pooling" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg = {k: (k == f"pooling_mode_{mode}_token" or k == f"pooling_mode_{mode}_tokens") if k.startswith(
        "pooling_mode_") else v for k, v in cfg.items()}
    cfg_path.write_text(json.dumps(cfg))
    enc = Encoder(folder, device="cpu", precision="fp32")
    assert enc.pooling == mode
    want = st.SentenceTransformer(str(folder), device="cpu").encode(TEXTS, normalize_embeddings=True)
    got = enc.encode(TEXTS)
    assert np.allclose(got, want, atol=1e-5)
    if mode != "mean_sqrt_len":  # (which the L2 norm makes equal to mean)
        assert not np.allclose(got, Encoder(device="cpu", precision="fp32").encode(TEXTS), atol=1e-3)


@pytest.mark.parametrize("edit, says", [
    (lambda f: (f / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_weightedmean_tokens": True})), "pooling \\['weightedmean'\\]"),
    (lambda f: (f / "modules.json").write_text(json.dumps(
        json.loads((f / "modules.json").read_text())
        + [{"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}])),
     "modules .*Dense"),
])
def test_an_unsupported_pooling_is_refused_at_construction(tmp_path, edit, says):
    from qa.models.encoder import Encoder

    folder = model_copy(tmp_path)
    edit(folder)
    with pytest.raises(ModelUnsupported, match=says):
        Encoder(folder)


def test_serving_imports_neither_transformers_nor_sentence_transformers():
    """One inference stack: loading and running both models, and importing the assistant, pull in neither."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys\nimport qa.assistant\nfrom qa.models.encoder import Encoder\nfrom qa.reading.reader import SpanReader\n"
            "from qa.types import Chunk\n"
            "Encoder(device='cpu').encode(['When was the bridge opened?'])\n"
            "text = 'The bridge was opened in 1987.'\n"
            "chunk = Chunk('d', 0, 0, len(text), text)\n"
            "print(SpanReader(device='cpu').read('When was the bridge opened?', [chunk])[0].text)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'sentence_transformers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["1987", "[]"]
