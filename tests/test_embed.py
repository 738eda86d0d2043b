"""The encoder against SentenceTransformer itself (the oracle), batching and limits."""
import numpy as np
import pytest

from qa.embed import Encoder
from qa.models import embedding_model_path

TEXTS = ["Iraq passed an anti-trafficking law in 2012.", "The harbour froze in January.",
         "Wheat prices rose sharply in Argentina after the drought. " * 6, "short"]


def test_matches_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(embedding_model_path()), device="cpu")
    want = st.encode(TEXTS, normalize_embeddings=True)
    got = encoder.encode(TEXTS)
    assert got.shape == (4, 384) and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-5)


def test_pipelined_slices_and_batch_sizes_agree(encoder, monkeypatch):
    texts = [f"report {i} on topic {i % 5}: " + "words " * (i % 30) for i in range(40)]
    whole = encoder.encode(texts)
    monkeypatch.setattr(encoder, "pipeline_step", 7)
    assert np.allclose(encoder.encode(texts, batch_size=3), whole, atol=1e-5)
    ids = [encoder.tokenize(t)[0] for t in texts]
    assert np.allclose(encoder.encode_ids(ids), whole, atol=1e-5)


def test_overlong_ids_are_refused_not_truncated(encoder):
    with pytest.raises(ValueError, match="exceed 254"):
        encoder.encode_ids([[1000] * 300])


def test_int8_option_stays_close_and_batch_independent():
    q = Encoder(quantize=True)
    vecs = q.encode(TEXTS)
    ref = Encoder().encode(TEXTS)
    assert (vecs * ref).sum(1).min() > 0.98
    alone = np.stack([q.encode([t])[0] for t in TEXTS])
    assert (alone * vecs).sum(1).min() > 0.999


def test_settings_are_validated():
    with pytest.raises(ValueError):
        Encoder(batch_size=0)
    with pytest.raises(ValueError):
        Encoder(max_tokens=1000)
