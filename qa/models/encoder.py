"""The sentence encoder: all-MiniLM-L6-v2 run directly (the pooling its sentence-transformers config names, then an
L2 norm), made cheap.

Why not ``SentenceTransformer.encode``: indexing is almost all encoding, so the encoder is where speed is won.
- Chunks arrive already tokenised (the chunker tokenises each report once and keeps the ids), so nothing is
  tokenised twice.
- Batches are sorted by length, so padding is small.
- The arithmetic runs in bf16 on a CPU that has it natively (AVX512-BF16/AMX: half the time of fp32, vectors
  within cosine 0.9999 measured) and in fp16 on a GPU, with large batches, the next batch padded on the host while the GPU
  computes (``precision``; ``qa bench`` and ``benchmarks/retrieval.py`` measure speed and recall).
- No pooler: only the token states are used, so the model is loaded without its pooling layer; the forward pass
  is ``qa/models/lean_bert.py`` (fused QKV, no per-call bookkeeping), which matters for one-question latency.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import ModelCorrupt, ModelUnsupported
from qa.models.shapes import invariant_batch_cap, power_of_two_batches
from qa.models.files import (EMBEDDING_MODEL_NAME, REINSTALL, check_precision, embedding_model_path, load_tokenizer,
                     model_file, place, precision_name, read_json)

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length, special tokens included


class Encoder:
    """Texts or pre-tokenised ids -> unit-length float32 vectors (``dim`` wide)."""

    name = EMBEDDING_MODEL_NAME
    pipeline_step = 8192  # texts tokenised ahead of the model in one slice

    def __init__(self, model_path: str | Path | None = None, *, device: str = "auto", precision: str = "auto",
                 batch_size: int = 64, max_tokens: int = MAX_TOKENS) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 8 <= max_tokens <= MAX_TOKENS:
            raise ValueError(f"max_tokens must be in [8, {MAX_TOKENS}]")
        self.model_path = Path(model_path) if model_path else embedding_model_path()
        self.device_setting = device
        check_precision(precision, device)
        self.precision_setting = precision
        self._dtype = None
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._dim: int | None = None
        self._tokenizer = None
        self._forward = None  # (input_ids, attention_mask) -> hidden states; None until warm_up
        self.pooling = pooling_mode(self.model_path)
        self._device: str | None = None
        self._lock = threading.Lock()

    # --- loading ---
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_path)
        return self._tokenizer

    @property
    def dim(self) -> int:
        if self._dim is None:  # read once: queries ask for it on every question
            from qa.models.lean_bert import config_int

            self._dim = config_int(self.model_path, "hidden_size")
        return self._dim

    def check(self) -> None:
        """Read the model's tokenizer, config and weights without keeping the weights (briefly, on the CPU): a damaged
        model is a ModelCorrupt now, before work goes to processes or machines that would each fail on it."""
        from qa.models.lean_bert import check_weights

        self.tokenizer, self.dim  # noqa: B018 - reading them is the check (the tokenizer stays cached)
        check_weights(self.model_path)

    variant = "fp32"  # the manifest's embedding_variant: fp32/bf16/fp16 arithmetic all give this model's vectors
    #                  (cosine >= 0.9999 to fp32), so one index serves every precision

    @property
    def dtype(self):
        """The torch dtype the model runs in (loads the model)."""
        self.warm_up()
        return self._dtype

    @property
    def resolved_precision(self) -> str:
        """The arithmetic the model runs in, 'fp32', 'bf16' or 'fp16' (loads the model)."""
        return precision_name(self.dtype)

    def warm_up(self) -> None:
        with self._lock:
            if self._forward is not None:
                return
            device, dtype = place(self.device_setting, self.precision_setting)
            self._forward = load_encoder(self.model_path, device, dtype)
            self._device, self._dtype = device, dtype
            log.info("loaded %s on %s (%s)", self.name, device, dtype)

    # --- tokenising ---
    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Word-piece ids and character offsets of ``text``, without special tokens or truncation."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                             verbose=False)
        return enc["input_ids"], enc["offset_mapping"]

    def tokenize_many(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """``tokenize`` of each text, in one call."""
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                             verbose=False)
        return list(zip(enc["input_ids"], enc["offset_mapping"]))

    # --- encoding ---
    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Encode raw texts (queries). Texts longer than the model's window are truncated, as the model would."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        step = self.pipeline_step
        if len(texts) <= step:
            return self.encode_ids(self._ids(texts), batch_size=batch_size)
        # Tokenise the next slice (the Rust tokenizer releases the GIL) while the model encodes this one.
        from concurrent.futures import ThreadPoolExecutor

        parts = []
        with ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(self._ids, texts[:step])
            for i in range(0, len(texts), step):
                ids = nxt.result()
                if i + step < len(texts):
                    nxt = pool.submit(self._ids, texts[i + step : i + 2 * step])
                parts.append(self.encode_ids(ids, batch_size=batch_size))
        return np.concatenate(parts)

    query_pad_multiple = 16  # queries are padded to a multiple of this many word pieces (see encode_queries)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode questions as ``encode`` does, each padded to a width set by its own length (a multiple of
        ``query_pad_multiple``) and batched only with questions of that width: a question's vector does not depend on
        which others are encoded with it (``qa/serving/batching.py`` batches concurrent questions), and the model sees a
        fixed set of input shapes, so shape-keyed kernel caches stay bounded."""
        self.warm_up()  # the device decides the batch sizes
        ids = self._ids(list(texts))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(ids):
            groups.setdefault(-(-(len(x) + 2) // self.query_pad_multiple), []).append(i)
        for group in groups.values():
            for idx in power_of_two_batches(group, invariant_batch_cap(self.batch_size, str(self._device))):
                out[idx] = self.encode_ids([ids[i] for i in idx], pad_multiple=self.query_pad_multiple)
        return out

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_tokens - 2,
                              verbose=False)["input_ids"]

    def encode_ids(self, ids: Sequence[Sequence[int]], *, batch_size: int | None = None,
                   progress=None, pad_multiple: int = 1) -> np.ndarray:
        """Encode word-piece id lists (without [CLS]/[SEP]); each must fit ``max_tokens - 2``.

        ``progress`` is called with the number of items finished after each batch; each batch is padded to a multiple
        of ``pad_multiple`` (at most ``max_tokens``).
        """
        import torch

        self.warm_up()
        n = len(ids)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        limit = self.max_tokens - 2
        too_long = [i for i, x in enumerate(ids) if len(x) > limit]
        if too_long:
            raise ValueError(f"{len(too_long)} inputs exceed {limit} word pieces (first: #{too_long[0]})")
        bs = batch_size or (self.batch_size if self._device == "cpu" else max(self.batch_size, 512))
        order = np.argsort([len(x) for x in ids], kind="stable")[::-1]
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        batches = [order[i : i + bs] for i in range(0, n, bs)]

        def pad(idx: np.ndarray):
            width = min(-(-(len(ids[idx[0]]) + 2) // pad_multiple) * pad_multiple, self.max_tokens)
            if self._device != "cpu":
                width = (width + 7) // 8 * 8
            arr = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                x = ids[i]
                arr[r, 0] = cls_id
                arr[r, 1 : len(x) + 1] = x
                arr[r, len(x) + 1] = sep_id
                mask[r, : len(x) + 2] = 1
            padded = not mask.all()  # known here on the host, so the model need not ask the device
            t_ids, t_mask = torch.from_numpy(arr), torch.from_numpy(mask)
            if self._device != "cpu":
                t_ids, t_mask = t_ids.pin_memory(), t_mask.pin_memory()
            return t_ids, t_mask, padded

        results = []
        with torch.inference_mode():
            nxt = pad(batches[0])
            for b, idx in enumerate(batches):
                t_ids, t_mask, padded = nxt
                t_ids = t_ids.to(self._device, non_blocking=True)
                t_mask = t_mask.to(self._device, non_blocking=True)
                hidden = self._forward(t_ids, t_mask if padded else None)
                pooled = torch.nn.functional.normalize(pool(hidden.float(), t_mask, self.pooling), dim=-1)
                results.append((idx, pooled))
                if b + 1 < len(batches):
                    nxt = pad(batches[b + 1])  # host work overlaps the GPU's
                if progress is not None:
                    progress(len(idx))
        for idx, vec in results:
            out[idx] = vec.cpu().numpy()
        return out


def load_encoder(folder: Path, device: str, dtype):
    """(input_ids, attention_mask) -> last hidden states, on ``device`` in ``dtype``: the lean pass read straight from
    the weights (``qa/models/lean_bert.py``); a model it does not implement is a ModelUnsupported."""
    from qa.models.lean_bert import LeanBert

    return LeanBert.from_folder(folder, device=device, dtype=dtype)


POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def pooling_mode(folder: Path) -> str:
    """How the model turns token states into one vector, as its sentence-transformers config says (modules.json ->
    the Pooling module's config.json): one of POOLING_MODES. A folder without modules.json gets mean pooling, as
    sentence-transformers gives a plain transformers folder. Modules after pooling other than Normalize (a Dense
    layer, say), or another pooling mode, are a ModelUnsupported. The vectors are always L2-normalised: the index
    compares them by inner product."""
    folder = Path(folder)
    modules_path = folder / "modules.json"
    if not modules_path.exists():
        log.warning("%s has no modules.json: mean pooling, as sentence-transformers does for such a folder", folder)
        return "mean"
    with model_file(f"cannot read {modules_path}", (OSError, UnicodeDecodeError, json.JSONDecodeError)):
        modules = json.loads(modules_path.read_text())
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelCorrupt(f"{modules_path} is not a list of modules; {REINSTALL}")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if extra or kinds.count("Pooling") != 1:
        raise ModelUnsupported(f"{modules_path}: modules {kinds}; the encoder implements a Transformer, one Pooling "
                               "and an optional Normalize")
    sub = modules[kinds.index("Pooling")].get("path", "")
    cfg = read_json(folder / sub / "config.json")
    if "pooling_mode" in cfg and isinstance(cfg["pooling_mode"], str):  # the one-key form
        on = [cfg["pooling_mode"].replace("_tokens", "").replace("_token", "")]
    else:
        on = [k[len("pooling_mode_"):].replace("_tokens", "").replace("_token", "")
              for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    if len(on) != 1 or on[0] not in POOLING_MODES:
        raise ModelUnsupported(f"{folder / sub / 'config.json'}: pooling {on or 'none'}; the encoder implements one of "
                               f"{', '.join(POOLING_MODES)}")
    if cfg.get("include_prompt", True) is not True:
        raise ModelUnsupported(f"{folder / sub / 'config.json'}: include_prompt false is not implemented")
    return on[0]


def pool(hidden, mask, mode: str):
    """Token states (batch, tokens, dim) -> one vector each, over the real tokens (``mask`` 1), as
    sentence-transformers' Pooling module computes them."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(m == 0, -1e9).max(1).values
    total = (hidden * m).sum(1)
    count = m.sum(1).clamp(min=1e-9)
    return total / (count.sqrt() if mode == "mean_sqrt_len" else count)
