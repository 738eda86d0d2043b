"""Overload and abuse guards for a server: a bound on the questions in progress, and a per-client rate limit.

Both refuse at once with ``Busy`` (the message says to try again and when) rather than letting work pile up: a queue
that grows without bound turns a burst into minutes of waiting for everyone and into memory that is never returned.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from qa.errors import Busy

BUSY_MESSAGE = "The assistant is busy, try again in a moment."


class Admission:
    """At most ``limit`` questions in progress (waiting for or being answered) at once; past it, ``Busy``."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the limit on questions in progress must be >= 1")
        self.limit = limit
        self._in = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._in >= self.limit:
                raise Busy(BUSY_MESSAGE)
            self._in += 1
        try:
            yield
        finally:
            with self._lock:
                self._in -= 1

    @property
    def in_progress(self) -> int:
        return self._in


class RateLimiter:
    """At most ``per_minute`` questions from one client in any 60 s (0: no limit). Memory is bounded by the clients
    seen in the last minute: a client's record goes once its last question is a minute old."""

    window_s = 60.0

    def __init__(self, per_minute: int) -> None:
        if per_minute < 0:
            raise ValueError("the rate limit must be >= 0 questions a minute (0: none)")
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def check(self, client: str, now: float | None = None) -> None:
        """Count a question from ``client``; ``Busy`` (asking it to wait) when it is over the limit."""
        if not self.per_minute:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            if now >= self._next_sweep:  # forget clients idle for a minute
                self._seen = {c: d for c, d in self._seen.items() if d and d[-1] > now - self.window_s}
                self._next_sweep = now + self.window_s
            times = self._seen.setdefault(client, deque())
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.per_minute:
                wait = times[0] + self.window_s - now
                raise Busy(f"Too many questions from this client (the limit is {self.per_minute} a minute); "
                           f"try again in {max(1, round(wait))} s.", retry_after_s=wait)
            times.append(now)

    def __len__(self) -> int:
        return len(self._seen)
