"""A lean BERT encoder (all-MiniLM-L6-v2 and the span reader built on it): the same arithmetic as
``transformers.BertModel``, loaded straight from ``config.json`` and ``model.safetensors``.

Why, twice over:
- Latency. A query is ~13 word pieces, so embedding one is bound by the number of kernel calls, not by arithmetic.
  The query, key and value projections run as one fused matrix product and nothing else is done per call. On 2
  cores one question took 4.1 ms in bf16 against 5.6 ms through ``BertModel`` (fp32: 6.7 against 9.8 ms).
- Cold start. Importing ``transformers``' BERT modelling code pulls in torch.distributed, torch._dynamo and the
  generation utilities: about 1.5 s of the first answer on this machine, for two models that need none of it.
  Reading the weights with ``safetensors`` takes milliseconds.

This is the only forward pass serving has: ``transformers`` is not imported at all. So only the configurations it
reproduces exactly are accepted (``unsupported`` names what is not: another architecture or activation, relative
position embeddings, a decoder); any other folder is a ``ModelUnsupported`` error that says why.
``tests/test_lean_bert.py`` checks random configurations (sizes, heads, vocabularies) against ``BertModel`` and
``BertForQuestionAnswering``; ``tests/test_embed.py`` and ``tests/test_reader.py`` the shipped models.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from qa.errors import ModelCorrupt, ModelUnsupported
from qa.models.files import REINSTALL, model_file, read_json

WEIGHTS = "model.safetensors"
log = logging.getLogger(__name__)


def read_config(folder: str | Path) -> dict:
    return read_json(Path(folder) / "config.json")


def config_int(folder: str | Path, key: str) -> int:
    """An integer field of the folder's config.json (e.g. hidden_size); a missing or bad one is a ModelCorrupt."""
    value = read_config(folder).get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelCorrupt(f"{Path(folder) / 'config.json'} has no valid {key!r} ({value!r}); {REINSTALL}")
    return value


def unsupported(config: dict) -> str | None:
    """Why this pass cannot reproduce the model of ``config`` (a config.json as a dict), or None when it can."""
    if config.get("model_type") != "bert":
        return f"model_type {config.get('model_type')!r} (only 'bert' is implemented)"
    if config.get("hidden_act") != "gelu":  # the exact (erf) GELU; gelu_new / tanh approximations differ
        return f"hidden_act {config.get('hidden_act')!r} (only 'gelu' is implemented)"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {config.get('position_embedding_type')!r} (only 'absolute' is implemented)"
    if config.get("is_decoder", False) or config.get("add_cross_attention", False):
        return "a decoder (is_decoder / add_cross_attention): only the encoder is implemented"
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "vocab_size"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return f"{key} {value!r} (a positive integer is needed)"
    if config["hidden_size"] % config["num_attention_heads"]:
        return f"hidden_size {config['hidden_size']} is not a multiple of num_attention_heads"
    return None


def check_folder(folder: str | Path) -> dict:
    """The folder's config.json, when this pass can load the folder; else a ModelUnsupported that says why."""
    folder = Path(folder)
    config = read_config(folder)
    why = unsupported(config)
    if why is not None:
        raise ModelUnsupported(f"{folder / 'config.json'}: {why}; report-qa runs BERT encoders only "
                               "(qa/models/lean_bert.py); use a model of that kind")
    if not (folder / WEIGHTS).is_file():
        raise ModelUnsupported(f"no {WEIGHTS} in {folder}: only safetensors weights are read; save the model with "
                               "safe_serialization (the default of save_pretrained)")
    return config


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


class _Layer(torch.nn.Module):
    """One encoder layer; the query, key and value projections fused into one matrix product."""

    def __init__(self, w, a: str, heads: int, eps: float) -> None:
        super().__init__()
        self.heads, self.eps = heads, eps
        qkv = ("query", "key", "value")
        self.register_buffer("qkv_w", torch.cat([w(a + f"attention.self.{x}.weight") for x in qkv]))
        self.register_buffer("qkv_b", torch.cat([w(a + f"attention.self.{x}.bias") for x in qkv]))
        for name, key in (("o_w", "attention.output.dense.weight"), ("o_b", "attention.output.dense.bias"),
                          ("n1_w", "attention.output.LayerNorm.weight"), ("n1_b", "attention.output.LayerNorm.bias"),
                          ("up_w", "intermediate.dense.weight"), ("up_b", "intermediate.dense.bias"),
                          ("dn_w", "output.dense.weight"), ("dn_b", "output.dense.bias"),
                          ("n2_w", "output.LayerNorm.weight"), ("n2_b", "output.LayerNorm.bias")):
            self.register_buffer(name, w(a + key))

        self.packed_w: dict[str, torch.Tensor] = {}  # projection -> its weight in oneDNN's layout (LeanBert.pack)

    def pack(self) -> None:
        self.packed_w = {p: torch.ops.mkldnn._reorder_linear_weight(getattr(self, p + "_w"), None)
                         for p in _PROJECTIONS}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, packed: bool = False) -> torch.Tensor:
        b, n, hidden = x.shape
        h = self.heads
        shape = (hidden,)
        if packed:
            qkv_w, o_w, up_w, dn_w, linear = (*(self.packed_w[p] for p in _PROJECTIONS), _packed_linear)
        else:
            qkv_w, o_w, up_w, dn_w, linear = self.qkv_w, self.o_w, self.up_w, self.dn_w, F.linear
        q, k, v = linear(x, qkv_w, self.qkv_b).view(b, n, 3, h, hidden // h).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, hidden)
        x = F.layer_norm(linear(att, o_w, self.o_b) + x, shape, self.n1_w, self.n1_b, self.eps)
        up = F.gelu(linear(x, up_w, self.up_b))
        return F.layer_norm(linear(up, dn_w, self.dn_b) + x, shape, self.n2_w, self.n2_b, self.eps)


_PROJECTIONS = ("qkv", "o", "up", "dn")  # each layer's matrix products: weight {p}_w, bias {p}_b


def _packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.linear`` with a weight already in oneDNN's layout (``torch.ops.mkldnn._reorder_linear_weight``)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class LeanBert(torch.nn.Module):
    """Last hidden states of a BERT encoder, from its weights (a state dict) and its config. Inference only: the
    weights are buffers, not parameters, and dropout is not applied."""

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, *, device="cpu",
                 dtype: torch.dtype = torch.float32, pack: bool = True) -> None:
        why = unsupported(config)
        if why is not None:
            raise ModelUnsupported(f"LeanBert does not implement this configuration: {why}")
        super().__init__()
        p = _prefix(tensors)

        def w(name: str) -> torch.Tensor:  # fp16 files widen exactly to fp32 first, then round once to dtype
            return tensors[p + name].to(device=device, dtype=torch.float32).to(dtype)

        eps = float(config.get("layer_norm_eps", 1e-12))
        self.eps = eps
        self.heads = int(config["num_attention_heads"])
        self.register_buffer("word", w("embeddings.word_embeddings.weight"))
        self.register_buffer("position", w("embeddings.position_embeddings.weight"))
        self.register_buffer("types", w("embeddings.token_type_embeddings.weight"))
        self.register_buffer("norm_w", w("embeddings.LayerNorm.weight"))
        self.register_buffer("norm_b", w("embeddings.LayerNorm.bias"))
        self.layers = torch.nn.ModuleList(_Layer(w, f"encoder.layer.{i}.", self.heads, eps)
                                          for i in range(int(config["num_hidden_layers"])))
        self.eval()
        self.packed = False
        if pack and torch.get_num_threads() == 1:
            self.pack()  # loaded for one-thread passes (a server's serve_with_threads(1)): the packed copy is used

    def pack(self) -> bool:
        """bf16 on a CPU: keep a second copy of the projection weights in oneDNN's blocked layout, used by every
        forward pass that runs on one intra-op thread (a server's one thread a question, ``serve_with_threads``), so
        that a matrix product does not reorder its weight on every call. With a window read alone that reorder is a
        large part of each product: on an AMX Xeon (2026-12-05) a reader window took 0.71-0.91 of ``F.linear``'s time
        (0.83 the median of its 12 widths) and a question 0.87 of its CPU time (``benchmarks/packed_weights.py``).

        The bits are the same as ``F.linear``'s on one thread; on two, oneDNN splits the 1,536-wide product
        differently and the last bit of some rows differs, so a pass on more threads keeps ``F.linear``. Packing is
        kept only where one thread gives the same bits (checked here on every projection of the first layer at six
        row counts), so no answer depends on it. Costs the packed copies' memory (21 MB for MiniLM-L6), so a model
        loaded on more than one thread (``qa eval``, a lone ``Assistant``) is not packed unless this is called.
        Returns whether the weights are packed."""
        if self.packed or self.dtype != torch.bfloat16 or self.word.device.type != "cpu" or not _can_pack():
            return self.packed
        try:
            for layer in self.layers:
                layer.pack()
            self.packed = _same_bits_on_one_thread(self.layers[0], self.dtype)
            why = "they give other bits than F.linear on this CPU"
        except RuntimeError as e:  # oneDNN cannot reorder or multiply with these weights here
            self.packed, why = False, f"oneDNN failed on them ({e})"
        if not self.packed:
            log.info("packed weights are not used: %s", why)
            for layer in self.layers:
                layer.packed_w = {}
        return self.packed

    @property
    def dtype(self) -> torch.dtype:
        return self.word.dtype

    @classmethod
    def from_folder(cls, folder: str | Path, *, device="cpu", dtype: torch.dtype = torch.float32,
                    tensors: dict | None = None) -> "LeanBert":
        """The encoder of a model folder: a ModelUnsupported for a configuration this pass does not implement;
        weights that do not fit its config.json are a ModelCorrupt."""
        config = check_folder(folder)
        tensors = load_tensors(folder) if tensors is None else tensors
        with model_file(f"the weights in {Path(folder) / WEIGHTS} do not fit {Path(folder) / 'config.json'}",
                        (KeyError, ValueError, TypeError, IndexError, RuntimeError)):
            return cls(tensors, config, device=device, dtype=dtype)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (batch, tokens, hidden). ``attention_mask``: 1 for real tokens, 0 for padding (None:
        no padding, which the caller knows without a look at the device); ``token_type_ids``: None for all 0."""
        n = input_ids.shape[1]
        types = self.types[0] if token_type_ids is None else self.types[token_type_ids]
        x = F.layer_norm(self.word[input_ids] + types + self.position[:n], self.word.shape[-1:], self.norm_w,
                         self.norm_b, self.eps)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # keys to attend to
        packed = self.packed and torch.get_num_threads() == 1  # the only setting where packing keeps the bits (pack)
        for layer in self.layers:
            x = layer(x, mask, packed)
        return x


def _same_bits_on_one_thread(layer: _Layer, dtype: torch.dtype) -> bool:
    """Whether every packed projection of ``layer`` gives F.linear's bits on one intra-op thread, at a few row counts
    (``tests/test_reader.py`` checks every count from 1 to 384). The caller's thread count is put back afterwards:
    torch keeps one per thread, and the last one set is also what threads started later begin with."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    try:
        with torch.inference_mode():
            for p in _PROJECTIONS:
                weight, b = getattr(layer, p + "_w"), getattr(layer, p + "_b")
                for rows in (1, 16, 32, 64, 128, 384):
                    x = torch.randn(1, rows, weight.shape[1], generator=gen).to(dtype)
                    if not torch.equal(F.linear(x, weight, b), _packed_linear(x, layer.packed_w[p], b)):
                        return False
    finally:  # also the default of threads started later; the constructor calls this on one thread, so it stays 1
        torch.set_num_threads(before)
    return True


def _can_pack() -> bool:
    try:
        return (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))
    except (AttributeError, RuntimeError):  # a torch build without these private operators
        return False


def check_weights(folder: str | Path) -> None:
    """Read a model folder's weights as the encoder would (on the CPU, briefly): a damaged file is a ModelCorrupt
    now, before work is handed to processes or machines that would each fail on it."""
    LeanBert.from_folder(folder)
