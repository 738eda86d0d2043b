"""Dynamic micro-batching: concurrent questions share the model's forward passes.

A server answering several questions at once otherwise runs one small forward pass per question, each trying to use
every core, one after another. Here one worker thread per model takes every request waiting (after a short wait,
``wait_ms``, for more to arrive once it is idle) and runs them as one call: the reader reads the passages of all the
waiting questions together (``SpanReader.forward``), the encoder embeds all the waiting questions together
(``Encoder.encode_queries``). Each caller then decodes its own part in its own thread.

Answers are the single-user answers exactly: each window (and each question) is padded to a width set by its own
length, and on a CPU it runs alone in the forward pass (``qa/models/shapes.py``: the math libraries pick kernels by
batch size, so batch mates changed the last bits), so that on a CPU the worker thread shares no arithmetic between
questions, it only runs them one after another on one thread; on a GPU windows of a width share passes.
``tests/test_serving.py`` checks batched answers against single reads.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np

from qa.types import Chunk, Span

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")


class MicroBatcher(Generic[Req, Res]):
    """``submit(request)`` from any thread; one worker runs ``run(requests) -> results`` over the requests waiting.

    After the first request of a batch the worker waits up to ``wait_ms`` for others, and takes at most ``max_items``
    requests (``size(request)`` each, e.g. a question's passages) into one call. When a batched call raises, each of
    its requests is run again alone, so that one bad request fails only its own caller.
    """

    def __init__(self, run: Callable[[list[Req]], list[Res]], *, wait_ms: float = 5.0, max_items: int = 64,
                 size: Callable[[Req], int] = lambda r: 1, name: str = "batcher") -> None:
        if wait_ms < 0:
            raise ValueError("wait_ms must be >= 0")
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self._run, self._size = run, size
        self.wait_s, self.max_items = wait_ms / 1e3, max_items
        self._queue: queue.SimpleQueue[tuple[Req, Future]] = queue.SimpleQueue()
        self._held: tuple[Req, Future] | None = None  # taken from the queue but over the last batch's budget
        self.batches = 0  # calls of ``run`` (for benchmarks)
        self.requests = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Req) -> Res:
        """The result of ``request`` once a batch holding it has run (its exception if it raised)."""
        fut: Future = Future()
        self._queue.put((request, fut))
        return fut.result()

    def _take(self) -> list[tuple[Req, Future]]:
        first = self._held or self._queue.get()
        self._held = None
        batch, used = [first], self._size(first[0])
        deadline = time.monotonic() + self.wait_s
        while used < self.max_items:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            n = self._size(item[0])
            if used + n > self.max_items:
                self._held = item
                break
            batch.append(item)
            used += n
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            self.batches += 1
            self.requests += len(batch)
            if len(batch) > 1:
                try:
                    results = self._run([r for r, _ in batch])
                except BaseException:  # noqa: BLE001 - run again one by one: each caller gets its own outcome
                    log.warning("a batch of %d requests failed; running them one by one", len(batch))
                else:
                    for (_, fut), res in zip(batch, results):
                        fut.set_result(res)
                    continue
            for req, fut in batch:
                try:
                    fut.set_result(self._run([req])[0])
                except BaseException as e:  # noqa: BLE001 - a tokenizer panic is a BaseException: to its caller
                    fut.set_exception(e if isinstance(e, Exception) else RuntimeError(f"{type(e).__name__}: {e}"))


class _Delegate:
    """Attributes not defined here are the wrapped model's (name, warm_up, tokenizer, dim, ...)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


class BatchedReader(_Delegate):
    """A SpanReader whose ``read`` calls, from many threads, go through one worker (sharing forward passes on a GPU)."""

    def __init__(self, reader, *, wait_ms: float = 5.0, max_windows: int = 64) -> None:
        super().__init__(reader)
        self.batcher: MicroBatcher = MicroBatcher(reader.forward, wait_ms=wait_ms, max_items=max_windows,
                                                  size=lambda r: len(r[1]), name="reader-batcher")

    def read(self, question: str, chunks: Sequence[Chunk]) -> list[Span]:
        if not chunks:
            return []
        enc, logits = self.batcher.submit((question, list(chunks)))
        return self.inner.spans(question, chunks, enc, logits)


class BatchedEncoder(_Delegate):
    """An Encoder whose ``encode_queries`` calls, from many threads, go through one worker (indexing is unchanged)."""

    def __init__(self, encoder, *, wait_ms: float = 5.0, max_queries: int = 64) -> None:
        super().__init__(encoder)
        self.batcher: MicroBatcher = MicroBatcher(lambda texts: list(encoder.encode_queries(texts)), wait_ms=wait_ms,
                                                  max_items=max_queries, name="encoder-batcher")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.batcher.submit(t) for t in texts]) if texts else self.inner.encode_queries(texts)


def can_batch(reader) -> bool:
    """Whether ``reader`` splits its reading into ``forward`` and ``spans`` (the span reader does; rules do not)."""
    return callable(getattr(reader, "forward", None)) and callable(getattr(reader, "spans", None))
