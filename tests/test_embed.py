"""The encoder against SentenceTransformer itself (the oracle), batching and limits."""
import numpy as np
import pytest

from qa.models.encoder import Encoder
from qa.models.files import embedding_model_path

TEXTS = ["Iraq passed an anti-trafficking law in 2012.", "The harbour froze in January.",
         "Wheat prices rose sharply in Argentina after the drought. " * 6, "short"]


@pytest.fixture(scope="module")
def st_vectors():
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(embedding_model_path()), device="cpu")
    return st.encode(TEXTS, normalize_embeddings=True)


def close(a: np.ndarray, b: np.ndarray, precision: str) -> bool:
    """fp32 must match to rounding; bf16 arithmetic to cosine 0.9995 (measured: >= 0.9999 on SQuAD paragraphs)."""
    if precision == "fp32":
        return np.allclose(a, b, atol=1e-5)
    return (a * b).sum(1).min() >= 0.9995


def test_fp32_matches_sentence_transformers(st_vectors):
    got = Encoder(precision="fp32").encode(TEXTS)
    assert got.shape == (4, 384) and got.dtype == np.float32
    assert np.allclose(got, st_vectors, atol=1e-5)


def test_default_precision_stays_close_to_sentence_transformers(encoder, st_vectors):
    got = encoder.encode(TEXTS)
    assert encoder.resolved_precision in ("fp32", "bf16")
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert close(got, st_vectors, encoder.resolved_precision)


def test_bf16_is_close_and_batch_independent(st_vectors):
    # explicit bf16 runs on any CPU (emulated where it is not native, only slower)
    enc = Encoder(precision="bf16")
    vecs = enc.encode(TEXTS)
    assert enc.resolved_precision == "bf16"
    assert (vecs * st_vectors).sum(1).min() >= 0.9995
    alone = np.stack([enc.encode([t])[0] for t in TEXTS])
    assert (alone * vecs).sum(1).min() >= 0.9999


def test_precision_is_validated_at_construction():
    from qa.settings import Settings

    with pytest.raises(ValueError, match="needs a GPU"):
        Encoder(precision="fp16", device="cpu")
    with pytest.raises(ValueError, match="precision"):
        Encoder(precision="int4")
    with pytest.raises(ValueError, match="precision"):
        Settings(precision="double")


def test_auto_precision_follows_the_hardware(monkeypatch):
    import torch

    import qa.models.files as m

    assert m.resolve_precision("auto", "cuda") == torch.float16
    assert m.resolve_precision("fp32", "cuda") == torch.float32
    monkeypatch.setattr(m, "cpu_has_native_bf16", lambda: True)
    assert m.resolve_precision("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(m, "cpu_has_native_bf16", lambda: False)
    assert m.resolve_precision("auto", "cpu") == torch.float32
    assert m.resolve_precision("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="needs a GPU"):
        m.resolve_precision("fp16", "cpu")


def test_pipelined_slices_and_batch_sizes_agree(encoder, monkeypatch):
    texts = [f"report {i} on topic {i % 5}: " + "words " * (i % 30) for i in range(40)]
    whole = encoder.encode(texts)
    monkeypatch.setattr(encoder, "pipeline_step", 7)
    assert close(encoder.encode(texts, batch_size=3), whole, encoder.resolved_precision)
    ids = [encoder.tokenize(t)[0] for t in texts]
    assert close(encoder.encode_ids(ids), whole, encoder.resolved_precision)


def test_overlong_ids_are_refused_not_truncated(encoder):
    with pytest.raises(ValueError, match="exceed 254"):
        encoder.encode_ids([[1000] * 300])


def test_settings_are_validated():
    with pytest.raises(ValueError):
        Encoder(batch_size=0)
    with pytest.raises(ValueError):
        Encoder(max_tokens=1000)


def test_lean_forward_equals_bert_model_with_padding():
    import torch
    from transformers import AutoModel

    from qa.models.lean_bert import LeanBert

    enc = Encoder(precision="fp32")
    enc.warm_up()
    assert isinstance(enc._forward, LeanBert)  # loaded without transformers' model
    model = AutoModel.from_pretrained(str(enc.model_path), dtype=torch.float32, add_pooling_layer=False).eval()
    ids = [enc._ids([t])[0] for t in TEXTS]
    width = max(map(len, ids)) + 2
    t_ids = torch.zeros((len(ids), width), dtype=torch.long)
    t_mask = torch.zeros_like(t_ids)
    for r, x in enumerate(ids):
        t_ids[r, : len(x) + 2] = torch.tensor([101, *x, 102])
        t_mask[r, : len(x) + 2] = 1
    with torch.inference_mode():
        want = model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
        got = enc._forward(t_ids, t_mask)
    real = t_mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-5)
