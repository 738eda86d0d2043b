"""Extractive readers: find answer spans inside retrieved chunks.

Every reader has one method, ``read(question, chunks) -> list[Span]``: at most one candidate per chunk, with
report offsets and a confidence in [0, 1] (0.5 = the reader's calibrated answer / no-answer boundary).

- ``SpanReader``: the transformer span reader the project trains (``training/train_reader.py``) and ships in
  ``qa/weights/reader/``. Long chunks are read in overlapping windows; the best span over all windows is kept
  and the no-answer score is the window's [CLS] score, calibrated on held-out data.
- ``RulesReader`` (in ``qa/reading/rules_reader.py``): best sentence, narrowed by question type. The fallback.
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.reading.answer_types import choose
from qa.chunking import split_sentences
from qa.reading.decoding import Candidate, decode_window, merge_windows
from qa.models.files import check_precision, load_tokenizer, place, read_json, reader_model_path
from qa.models.shapes import invariant_batch_cap, power_of_two_batches, power_of_two_sizes
from qa.types import Chunk, Span

log = logging.getLogger(__name__)


class Reader(Protocol):
    name: str

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]: ...


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


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
        # the confidence below which an answer to a question asked of a whole collection is "not found"
        # (training/calibrate_open.py); None: default_threshold, as for one given paragraph
        self.ask_threshold = None if cfg.get("ask_threshold") is None else float(cfg["ask_threshold"])
        self.max_answer_tokens = max_answer_tokens or int(cfg.get("max_answer_tokens", 30))
        self.device_setting = device
        check_precision(precision, device)
        self.precision_setting = precision
        self.batch_size = batch_size
        self._encoder = None  # the transformer, in the chosen precision; None until warm_up
        self._head = None  # the start/end layer, fp32
        self._tokenizer = None
        self._device = "cpu"
        self._batch_cap = 1  # windows per forward pass: 1 on a CPU, batch_size on a GPU (qa/models/shapes.py)
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._encoder is not None:
                return
            device, dtype = place(self.device_setting, self.precision_setting)
            self._tokenizer = load_tokenizer(self.model_path)
            self._encoder, self._head = load_span_model(self.model_path, device, dtype)
            self._device = device
            self._batch_cap = invariant_batch_cap(self.batch_size, str(device))
            log.info("loaded span reader %s on %s (%s)", self.model_path, device, dtype)

    def warm_up_shapes(self) -> None:
        """Run the model once on every input shape ``forward`` can use (each padded width x each batch size), so that
        a server's shape-keyed kernel caches and buffers are filled at start-up rather than over its first thousands
        of questions (qa/models/shapes.py)."""
        import torch

        self.warm_up()
        widths = sorted({self.padded_width(n) for n in range(1, self.max_length + 1)})
        with torch.inference_mode():
            for width in widths:
                for size in power_of_two_sizes(self._batch_cap):
                    ids = torch.full((size, width), 100, dtype=torch.long, device=self._device)
                    self._head(self._encoder(ids, torch.ones_like(ids), torch.zeros_like(ids)).float())

    max_question_tokens = 64  # a longer question is cut so that every window keeps room for the passage

    def _fit_question(self, question: str) -> str:
        enc = self._tokenizer(question, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        if len(enc["input_ids"]) <= self.max_question_tokens:
            return question
        return question[: enc["offset_mapping"][self.max_question_tokens - 1][1]]

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]:
        if not chunks:
            return []
        return self.spans(question, chunks, *self.forward([(question, chunks)])[0])

    def candidates(self, question: str, chunks: Sequence[Chunk]) -> dict[int, tuple[list[Candidate], float]]:
        """chunk position -> (its cleaned candidates over all its windows, best first, with offsets in the chunk's
        text; its no-answer score, the lowest of its windows')."""
        if not chunks:
            return {}
        return self._decode(chunks, *self.forward([(question, chunks)])[0])

    pad_multiple = 32  # windows are padded to a multiple of this many word pieces (see padded_width)

    def padded_width(self, n_tokens: int) -> int:
        """The width a window of ``n_tokens`` is padded to: a function of its own length only, so that its logits do
        not depend on the other windows read with it, and the model sees a fixed set of input shapes (the memory of
        shape-keyed kernel caches stays bounded; qa/models/shapes.py)."""
        m = self.pad_multiple
        return min(max(n_tokens, 1) + (-max(n_tokens, 1)) % m, self.max_length)

    def forward(self, requests: Sequence[tuple[str, Sequence[Chunk]]]) -> list[tuple[object, list[np.ndarray]]]:
        """Tokenise every request's (question, chunks) into windows and run all of them through the model together,
        in batches of windows of the same padded width. Per request: (its tokenizer encoding, the [L, 2] start/end
        logits of each window)."""
        import torch

        self.warm_up()
        tok = self._tokenizer
        encs = []
        for question, chunks in requests:
            question = self._fit_question(question)
            encs.append(tok([question] * len(chunks), [c.text for c in chunks], truncation="only_second",
                            max_length=self.max_length, stride=self.stride, return_overflowing_tokens=True,
                            return_offsets_mapping=True, padding=False, verbose=False) if chunks else None)
        out: list[list[np.ndarray]] = [[None] * (len(e["input_ids"]) if e else 0) for e in encs]  # type: ignore[list-item]
        by_width: dict[int, list[tuple[int, int]]] = {}
        for n, enc in enumerate(encs):
            for w in range(len(out[n])):
                by_width.setdefault(self.padded_width(len(enc["input_ids"][w])), []).append((n, w))
        with torch.inference_mode():
            for width, items in sorted(by_width.items()):
                for wins in power_of_two_batches(items, self._batch_cap):  # a fixed set of shapes: qa/models/shapes.py
                    ids = torch.zeros((len(wins), width), dtype=torch.long)
                    tt = torch.zeros_like(ids)
                    mask = torch.zeros_like(ids)
                    for r, (n, w) in enumerate(wins):
                        x = encs[n]["input_ids"][w]
                        ids[r, : len(x)] = torch.tensor(x)
                        tt[r, : len(x)] = torch.tensor(encs[n]["token_type_ids"][w])
                        mask[r, : len(x)] = 1
                    hidden = self._encoder(ids.to(self._device), mask.to(self._device), tt.to(self._device))
                    logits = self._head(hidden.float()).cpu().numpy()
                    for r, (n, w) in enumerate(wins):
                        out[n][w] = logits[r, : len(encs[n]["input_ids"][w])]
        return list(zip(encs, out))

    def _decode(self, chunks: Sequence[Chunk], enc, logits: Sequence[np.ndarray]
                ) -> dict[int, tuple[list[Candidate], float]]:
        per_chunk: dict[int, list[tuple[list[Candidate], float]]] = {}  # chunk -> its windows' decodings
        for w, window_logits in enumerate(logits):
            ctx = np.array([sid == 1 for sid in enc.sequence_ids(w)], dtype=bool)
            ci = enc["overflow_to_sample_mapping"][w]
            per_chunk.setdefault(ci, []).append(decode_window(
                window_logits[:, 0], window_logits[:, 1], ctx, enc["offset_mapping"][w], chunks[ci].text,
                self.max_answer_tokens))
        return {ci: merge_windows(wins) for ci, wins in per_chunk.items()}

    def spans(self, question: str, chunks: Sequence[Chunk], enc, logits: Sequence[np.ndarray]) -> list[Span]:
        """Decode ``forward``'s output for one request: at most one span per chunk, chosen and shaped for
        ``question`` (``qa.reading.answer_types.choose``)."""
        spans = []
        for ci, (ranked, null) in self._decode(chunks, enc, logits).items():
            chunk = chunks[ci]
            picked = choose(question, chunk.text, ranked, split_sentences(chunk.text))
            if picked is None:
                continue
            score, c0, c1 = picked
            margin = score - null + self.null_threshold
            spans.append(Span(chunk, chunk.start + c0, chunk.start + c1, chunk.text[c0:c1], _sigmoid(margin), margin))
        return spans


def load_span_model(folder: Path, device: str, dtype):
    """(encoder, head) of a span reader on ``device``: ``encoder(input_ids, attention_mask, token_type_ids)`` gives the
    last hidden states in ``dtype`` (``qa/models/lean_bert.py``, read straight from the weights); ``head(hidden)`` the
    start/end logits, in fp32 so that the scores keep their resolution."""
    import torch

    from qa.errors import ModelUnsupported
    from qa.models.lean_bert import WEIGHTS, LeanBert, check_folder, load_tensors

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
