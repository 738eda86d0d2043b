"""Extractive readers: find answer spans inside retrieved chunks.

Every reader has one method, ``read(question, chunks) -> list[Span]``: at most one candidate per chunk, with
report offsets and a confidence in [0, 1] (0.5 = the reader's calibrated answer / no-answer boundary).

- ``SpanReader``: the transformer span reader the project trains (``training/train_reader.py``) and ships in
  ``qa/weights/reader/``. Long chunks are read in overlapping windows; the best span over all windows is kept
  and the no-answer score is the window's [CLS] score, calibrated on held-out data.
- ``RulesReader`` (in ``qa/rules_reader.py``): best sentence, narrowed by question type. The fallback.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .models import check_precision, load_tokenizer, place, read_json, reader_model_path
from .types import Chunk, Span

log = logging.getLogger(__name__)


class Reader(Protocol):
    name: str

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]: ...


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def best_span(start: np.ndarray, end: np.ndarray, ctx_mask: np.ndarray, max_tokens: int) -> tuple[float, int, int]:
    """Best (score, start token, end token) with start <= end < start + max_tokens, inside the context."""
    s = np.where(ctx_mask, start, -np.inf)
    e = np.where(ctx_mask, end, -np.inf)
    L = len(s)
    scores = s[:, None] + e[None, :]
    band = np.triu(np.ones((L, L), dtype=bool)) & ~np.triu(np.ones((L, L), dtype=bool), k=max_tokens)
    scores = np.where(band, scores, -np.inf)
    flat = int(np.argmax(scores))
    i, j = divmod(flat, L)
    return float(scores[i, j]), i, j


class SpanReader:
    """The project's trained transformer span reader."""

    name = "span"
    default_threshold = 0.5  # the calibrated answer / no-answer boundary (see reader_config.json)

    def __init__(self, model_path: str | Path | None = None, *, device: str = "auto", precision: str = "auto",
                 max_answer_tokens: int | None = None, batch_size: int = 16) -> None:
        self.model_path = Path(model_path) if model_path else reader_model_path()
        cfg_path = self.model_path / "reader_config.json"
        cfg = read_json(cfg_path) if cfg_path.exists() else {}
        self.max_length = int(cfg.get("max_length", 384))
        self.stride = int(cfg.get("stride", 128))
        self.null_threshold = float(cfg.get("null_threshold", 0.0))
        self.max_answer_tokens = max_answer_tokens or int(cfg.get("max_answer_tokens", 30))
        self.device_setting = device
        check_precision(precision, device)
        self.precision_setting = precision
        self.batch_size = batch_size
        self._encoder = None  # the transformer, in the chosen precision; None until warm_up
        self._head = None  # the start/end layer, fp32
        self._tokenizer = None
        self._device = "cpu"
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._encoder is not None:
                return
            device, dtype = place(self.device_setting, self.precision_setting)
            self._tokenizer = load_tokenizer(self.model_path)
            self._encoder, self._head = load_span_model(self.model_path, device, dtype)
            self._device = device
            log.info("loaded span reader %s on %s (%s)", self.model_path, device, dtype)

    max_question_tokens = 64  # a longer question is cut so that every window keeps room for the passage

    def _fit_question(self, question: str) -> str:
        enc = self._tokenizer(question, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        if len(enc["input_ids"]) <= self.max_question_tokens:
            return question
        return question[: enc["offset_mapping"][self.max_question_tokens - 1][1]]

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]:
        import torch

        if not chunks:
            return []
        self.warm_up()
        tok = self._tokenizer
        question = self._fit_question(question)
        enc = tok([question] * len(chunks), [c.text for c in chunks], truncation="only_second",
                  max_length=self.max_length, stride=self.stride, return_overflowing_tokens=True,
                  return_offsets_mapping=True, padding=False, verbose=False)
        n_win = len(enc["input_ids"])
        best: dict[int, tuple[float, int, int]] = {}
        null: dict[int, float] = {}
        order = sorted(range(n_win), key=lambda w: len(enc["input_ids"][w]))
        with torch.inference_mode():
            for b0 in range(0, n_win, self.batch_size):
                wins = order[b0 : b0 + self.batch_size]
                width = max(len(enc["input_ids"][w]) for w in wins)
                ids = torch.zeros((len(wins), width), dtype=torch.long)
                tt = torch.zeros_like(ids)
                mask = torch.zeros_like(ids)
                for r, w in enumerate(wins):
                    x = enc["input_ids"][w]
                    ids[r, : len(x)] = torch.tensor(x)
                    tt[r, : len(x)] = torch.tensor(enc["token_type_ids"][w])
                    mask[r, : len(x)] = 1
                hidden = self._encoder(ids.to(self._device), mask.to(self._device), tt.to(self._device))
                logits = self._head(hidden.float()).cpu().numpy()
                s_all, e_all = logits[..., 0], logits[..., 1]
                for r, w in enumerate(wins):
                    L = len(enc["input_ids"][w])
                    seq = enc.sequence_ids(w)
                    ctx = np.array([sid == 1 for sid in seq], dtype=bool)
                    ci = enc["overflow_to_sample_mapping"][w]
                    s_log, e_log = s_all[r, :L], e_all[r, :L]
                    null[ci] = min(null.get(ci, math.inf), float(s_log[0] + e_log[0]))
                    score, i, j = best_span(s_log, e_log, ctx, self.max_answer_tokens)
                    if math.isfinite(score) and (ci not in best or score > best[ci][0]):
                        offs = enc["offset_mapping"][w]
                        best[ci] = (score, offs[i][0], offs[j][1])
        spans = []
        for ci, (score, c0, c1) in best.items():
            chunk = chunks[ci]
            text = chunk.text[c0:c1]
            lead = len(text) - len(text.lstrip())
            text = text.strip()
            if not text:
                continue
            start = chunk.start + c0 + lead
            margin = score - null[ci] + self.null_threshold
            spans.append(Span(chunk, start, start + len(text), text, _sigmoid(margin), margin))
        return spans


def load_span_model(folder: Path, device: str, dtype):
    """(encoder, head) of a span reader on ``device``: ``encoder(input_ids, attention_mask, token_type_ids)`` gives the
    last hidden states in ``dtype`` (``qa/lean_bert.py``, read straight from the weights); ``head(hidden)`` the
    start/end logits, in fp32 so that the scores keep their resolution."""
    import torch

    from .errors import ModelUnsupported
    from .lean_bert import WEIGHTS, LeanBert, check_folder, load_tensors

    check_folder(folder)
    tensors = load_tensors(folder)
    if "qa_outputs.weight" not in tensors or "qa_outputs.bias" not in tensors:
        raise ModelUnsupported(f"{Path(folder) / WEIGHTS} has no span head (qa_outputs): not a question-answering "
                               "model; train one with training/train_reader.py")
    head = torch.nn.Linear(tensors["qa_outputs.weight"].shape[1], tensors["qa_outputs.weight"].shape[0])
    with torch.no_grad():
        head.weight.copy_(tensors["qa_outputs.weight"].float())
        head.bias.copy_(tensors["qa_outputs.bias"].float())
    head = head.to(device).eval().requires_grad_(False)
    return LeanBert.from_folder(folder, device=device, dtype=dtype, tensors=tensors), head
