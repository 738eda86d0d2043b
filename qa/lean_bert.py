"""A lean BERT encoder (all-MiniLM-L6-v2 and the span reader built on it): the same arithmetic as
``transformers.BertModel``, loaded straight from ``config.json`` and ``model.safetensors``.

Why, twice over:
- Latency. A query is ~13 word pieces, so embedding one is bound by the number of kernel calls, not by arithmetic.
  The query, key and value projections run as one fused matrix product and nothing else is done per call. On 2
  cores one question took 4.1 ms in bf16 against 5.6 ms through ``BertModel`` (fp32: 6.7 against 9.8 ms).
- Cold start. Importing ``transformers``' BERT modelling code pulls in torch.distributed, torch._dynamo and the
  generation utilities: about 1.5 s of the first answer on this machine, for two models that need none of it.
  Reading the weights with ``safetensors`` takes milliseconds.

Only the configurations reproduced exactly are accepted (``supports``); the callers fall back to ``transformers``
for anything else. ``tests/test_embed.py`` and ``tests/test_reader.py`` check the outputs against ``BertModel`` and
``BertForQuestionAnswering``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import ModelCorrupt
from .models import REINSTALL, model_file, read_json

WEIGHTS = "model.safetensors"


def read_config(folder: str | Path) -> dict:
    return read_json(Path(folder) / "config.json")


def config_int(folder: str | Path, key: str) -> int:
    """An integer field of the folder's config.json (e.g. hidden_size); a missing or bad one is a ModelCorrupt."""
    value = read_config(folder).get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelCorrupt(f"{Path(folder) / 'config.json'} has no valid {key!r} ({value!r}); {REINSTALL}")
    return value


def supports(config: dict) -> bool:
    """True for the BERT configurations this pass reproduces exactly (``config``: a config.json as a dict)."""
    return (config.get("model_type") == "bert" and config.get("position_embedding_type", "absolute") == "absolute"
            and config.get("hidden_act") == "gelu" and not config.get("is_decoder", False)
            and not config.get("add_cross_attention", False))


def can_load(folder: str | Path) -> bool:
    """A folder this module loads without ``transformers``: a supported config and its safetensors weights."""
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() and (folder / "config.json").is_file() and supports(read_config(folder))


def load_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS
    # safetensors raises its own SafetensorError (not an OSError) for a damaged file
    with model_file(f"cannot read the model weights {path}; the file is damaged or incomplete", (Exception,)):
        return load_file(str(path))


def _prefix(tensors: dict) -> str:
    """'' for a bare BertModel's weights, 'bert.' for a task model's (BertForQuestionAnswering)."""
    for p in ("", "bert."):
        if f"{p}embeddings.word_embeddings.weight" in tensors:
            return p
    raise ValueError("not BERT weights: no embeddings.word_embeddings.weight")


class LeanBert:
    """Last hidden states of a BERT encoder, from its weights (a state dict) and its config."""

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, *, device="cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        if not supports(config):
            raise ValueError("this BERT configuration is not one LeanBert reproduces")
        p = _prefix(tensors)

        def w(name: str) -> torch.Tensor:  # fp16 files widen exactly to fp32 first, then round once to dtype
            return tensors[p + name].to(device=device, dtype=torch.float32).to(dtype)

        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.heads = int(config["num_attention_heads"])
        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.types = w("embeddings.token_type_embeddings.weight")
        self.type0 = self.types[0]
        self.norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            a = f"encoder.layer.{i}."
            qkv_w = torch.cat([w(a + f"attention.self.{x}.weight") for x in ("query", "key", "value")])
            qkv_b = torch.cat([w(a + f"attention.self.{x}.bias") for x in ("query", "key", "value")])
            self.layers.append((
                qkv_w, qkv_b,
                w(a + "attention.output.dense.weight"), w(a + "attention.output.dense.bias"),
                w(a + "attention.output.LayerNorm.weight"), w(a + "attention.output.LayerNorm.bias"),
                w(a + "intermediate.dense.weight"), w(a + "intermediate.dense.bias"),
                w(a + "output.dense.weight"), w(a + "output.dense.bias"),
                w(a + "output.LayerNorm.weight"), w(a + "output.LayerNorm.bias"),
            ))
        self.dtype = dtype

    @classmethod
    def from_folder(cls, folder: str | Path, *, device="cpu", dtype: torch.dtype = torch.float32,
                    tensors: dict | None = None) -> "LeanBert":
        """The encoder of a model folder; weights that do not fit its config.json are a ModelCorrupt."""
        tensors = load_tensors(folder) if tensors is None else tensors
        config = read_config(folder)
        with model_file(f"the weights in {Path(folder) / WEIGHTS} do not fit {Path(folder) / 'config.json'}",
                        (KeyError, ValueError, TypeError, IndexError, RuntimeError)):
            return cls(tensors, config, device=device, dtype=dtype)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (batch, tokens, hidden). ``attention_mask``: 1 for real tokens, 0 for padding (None:
        no padding, which the caller knows without a look at the device); ``token_type_ids``: None for all 0."""
        b, n = input_ids.shape
        types = self.type0 if token_type_ids is None else self.types[token_type_ids]
        x = F.layer_norm(self.word[input_ids] + types + self.position[:n], self.word.shape[-1:], *self.norm, self.eps)
        h = self.heads
        d = x.shape[-1] // h
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # keys to attend to
        shape = x.shape[-1:]
        for qkv_w, qkv_b, o_w, o_b, n1_w, n1_b, up_w, up_b, dn_w, dn_b, n2_w, n2_b in self.layers:
            q, k, v = F.linear(x, qkv_w, qkv_b).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, h * d)
            x = F.layer_norm(F.linear(att, o_w, o_b) + x, shape, n1_w, n1_b, self.eps)
            x = F.layer_norm(F.linear(F.gelu(F.linear(x, up_w, up_b)), dn_w, dn_b) + x, shape, n2_w, n2_b, self.eps)
        return x


def check_weights(folder: str | Path) -> None:
    """Read a model folder's weights as the encoder would (on the CPU, briefly): a damaged file is a ModelCorrupt
    now, before work is handed to processes or machines that would each fail on it."""
    if can_load(folder):
        LeanBert.from_folder(folder)
