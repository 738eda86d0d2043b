"""The server's memory allocator: jemalloc when the system has it (Debian: ``apt-get install libjemalloc2``).

Under glibc's malloc a long-running server's resident memory creeps up: memory freed by the forward passes of many
threads stays in glibc's per-thread arenas, fragmented, instead of going back to the system (measured with
``benchmarks/serve_memory.py``: docs/reliability.md). jemalloc returns it. A library cannot change its
process's allocator, so the launcher (``app.py``, ``qa serve``) does it, once, before anything heavy is imported:
it runs itself again with jemalloc preloaded. ``QA_ALLOCATOR=glibc`` keeps glibc's malloc.
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)

JEMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                  "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")
# jemalloc returns freed pages to the system after a second of disuse (its default is 10 s) and runs that on a
# background thread, so an idle server shrinks too
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"


def jemalloc_path() -> str | None:
    return next((p for p in JEMALLOC_PATHS if os.path.exists(p)), None)


def current_allocator() -> str:
    """'jemalloc' when it is loaded in this process, else 'glibc'."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return "jemalloc" if "libjemalloc" in f.read() else "glibc"
    except OSError:
        return "glibc"


TRIM_EVERY = 100  # questions between malloc_trim calls in a server running on glibc's malloc


def jemalloc_env() -> dict[str, str]:
    """The environment variables that start a new process on jemalloc (``LD_PRELOAD``, ``MALLOC_CONF``), or {} when
    jemalloc is not installed or ``QA_ALLOCATOR=glibc``. For the launcher's own restart and for the processes it
    has others start (Ray Serve's replicas)."""
    path = jemalloc_path()
    if os.environ.get("QA_ALLOCATOR", "jemalloc") == "glibc" or path is None:
        return {}
    preload = os.environ.get("LD_PRELOAD", "")
    if path not in preload.replace(" ", ":").split(":"):
        preload = ":".join(p for p in (path, preload) if p)
    return {"LD_PRELOAD": preload, "MALLOC_CONF": os.environ.get("MALLOC_CONF", JEMALLOC_CONF)}


def relaunch_with_jemalloc(argv: Sequence[str] | None = None) -> None:
    """Replace this process by itself with jemalloc preloaded, when jemalloc is installed, not yet loaded, and
    ``QA_ALLOCATOR`` is not ``glibc``; otherwise return. Call it first thing in a launcher's ``main``."""
    extra = jemalloc_env()
    if not extra or os.environ.get("_QA_RELAUNCHED") or current_allocator() == "jemalloc":
        return
    env = dict(os.environ, _QA_RELAUNCHED="1", **extra)
    args = [sys.executable, *(sys.argv if argv is None else argv)]
    try:
        os.execve(sys.executable, args, env)
    except OSError as e:  # keep running under glibc rather than not at all
        log.warning("could not restart with jemalloc (%s); running with glibc's malloc", e)


class Trimmer:
    """Counts a server's questions and, on glibc's malloc, gives its free pages back every ``every`` of them."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        self.every = every
        self._count = itertools.count(1)
        self.allocator = current_allocator()  # read once: a process does not change its allocator

    def asked(self) -> None:
        if self.allocator == "glibc" and next(self._count) % self.every == 0:
            release_free_memory()


def release_free_memory() -> bool:
    """Under glibc, hand the free pages inside its arenas back to the system (``malloc_trim(0)``); True if it ran.
    The fallback where jemalloc is not installed: servers call it every so many questions."""
    if current_allocator() != "glibc":
        return False
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True
