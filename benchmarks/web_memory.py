"""Where the chat server's memory goes under the soak's load: ``app.py`` run in this process under ``tracemalloc``,
with the soak's first questions sent through ``/chat`` by 20 clients in a child process (and the soak's writer
adding and removing a report every 250 questions). At each mark the Python heap is snapshotted and the live objects
counted by type; at the end the growth between the first and the last mark is printed by allocation site and by
type, next to the growth of anonymous resident memory (RssAnon). What tracemalloc does not see is native memory
(the allocator, the math libraries).

    .venv/bin/python benchmarks/web_memory.py [--questions 2000] [--marks 100,1000,2000] [--out FILE.json]

Runs under the same allocator as the server would (set LD_PRELOAD/MALLOC_CONF as ``make soak`` does to compare).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "stress"), str(ROOT / "tests"), str(ROOT)]
import test_soak as soak  # noqa: E402  (the soak's question plan and writer)
from conftest import free_port  # noqa: E402
from _stress import offline_client, rss_parts_kb, write_corpus  # noqa: E402

WORK = Path("/tmp/inproc")
CLIENTS, WRITE_EVERY = 20, 250


def client_main(url: str, index: str, questions: int) -> int:
    """The load: ``questions`` of the soak's plan from CLIENTS threads, "done N" printed after each."""
    plan = soak._questions(random.Random(14))[:questions]
    writer = subprocess.Popen([sys.executable, "-c", soak._WRITER, index], text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lock, write_lock, state = threading.Lock(), threading.Lock(), {"next": 0, "done": 0, "errors": 0}

    def write(done: int) -> None:
        i = done // WRITE_EVERY
        with write_lock:
            for op, j in [("add", i)] + ([("remove", i - 1)] if i % 2 == 0 and i > 0 else []):
                writer.stdin.write(f"{op} {j}\n")
                writer.stdin.flush()
                writer.stdout.readline()

    def user() -> None:
        client = offline_client(url, timeout_s=600)
        while True:
            with lock:
                n = state["next"]
                if n >= len(plan):
                    return
                state["next"] += 1
            question, k = plan[n]
            try:
                client.predict(question, None, k, api_name="/chat")
            except Exception:  # noqa: BLE001 - counted and printed at the end
                state["errors"] += 1
            with lock:
                state["done"] += 1
                done = state["done"]
                print(f"done {done}", flush=True)
            if done % WRITE_EVERY == 0:
                write(done)

    threads = [threading.Thread(target=user) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stdin.close()
    writer.wait(timeout=120)
    print(f"errors {state['errors']}", flush=True)
    return 0


def jemalloc_stats_mb() -> dict[str, float]:
    """jemalloc's own account (``mallctl``): bytes the program holds (allocated), in pages in use (active), resident,
    mapped and retained; {} under another allocator."""
    import ctypes

    try:
        mallctl = ctypes.CDLL(None).mallctl
    except AttributeError:
        return {}
    epoch, size = ctypes.c_uint64(1), ctypes.c_size_t(8)
    mallctl(b"epoch", None, None, ctypes.byref(epoch), size)
    out = {}
    for name in ("allocated", "active", "metadata", "resident", "mapped", "retained"):
        value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if mallctl(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(size), None, 0) == 0:
            out[name] = round(value.value / 2**20, 1)
    for name in ("pdirty", "pmuzzy"):  # pages, all arenas merged (MALLCTL_ARENAS_ALL = 4096)
        value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if mallctl(f"stats.arenas.4096.{name}".encode(), ctypes.byref(value), ctypes.byref(size), None, 0) == 0:
            out[name] = round(value.value * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    return out


def anonymous_maps() -> dict[int, tuple[int, str, bool, int]]:
    """Each anonymous mapping of this process: start -> (size, perms, after a guard page, resident kB)."""
    maps, head, guard_end = {}, None, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and not f[0].endswith(":"):
            start, end = (int(x, 16) for x in f[0].split("-"))
            named = len(f) > 5 and not f[5].startswith("[heap")
            head = None if named else (start, end - start, f[1], guard_end == start)
            guard_end = end if f[1] == "---p" else None
        elif f[0] == "Rss:" and head is not None:
            maps[head[0]] = (*head[1:], int(f[1]))
    return maps


def grown_maps(before: dict, after: dict, top: int) -> list[dict]:
    """The anonymous mappings whose resident memory grew most between two ``anonymous_maps()``."""
    rows = [{"start": hex(start), "mib": round(size / 2**20, 2), "perms": perms, "after_guard": guard,
             "grew_mb": round((rss - before.get(start, (0, "", False, 0))[3]) / 1024, 1), "rss_mb": round(rss / 1024, 1)}
            for start, (size, perms, guard, rss) in after.items()]
    return sorted(rows, key=lambda r: -r["grew_mb"])[:top]


def anonymous_maps_mb() -> dict[str, float]:
    """Resident anonymous memory by kind of mapping (/proc/self/smaps): executable (JIT code), Python's object arenas
    (1 MiB, read-write), thread stacks (8 MiB + guard) and the rest by size class; jemalloc's extents are in the rest."""
    kinds: collections.Counter = collections.Counter()
    head = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        f = line.split()
        if "-" in f[0] and len(f) >= 5 and not f[0].endswith(":"):
            start, end = (int(x, 16) for x in f[0].split("-"))
            head = (f[1], end - start, f[5] if len(f) > 5 else "")
        elif f[0] == "Rss:" and head is not None:
            perms, size, name = head
            if name and not name.startswith("[heap"):
                continue
            if "x" in perms:
                kind = "exec"
            elif size == 2**20:
                kind = "1MiB (Python arenas)"
            elif name.startswith("[heap"):
                kind = "brk heap"
            else:
                kind = f"<={1 << max(12, (size - 1).bit_length()) >> 10} KiB" if size < 2**21 else ">=2 MiB"
            kinds[kind] += int(f[1])
    return {k: round(v / 1024, 1) for k, v in sorted(kinds.items())}


def pymalloc_arenas() -> str:
    """The arena lines of ``sys._debugmallocstats()`` (written to the C stderr, so caught through a file)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return "; ".join(" ".join(line.split()) for line in tmp if "arenas" in line)


def type_counts() -> collections.Counter:
    gc.collect()
    return collections.Counter(f"{getattr(type(o), '__module__', '?')}.{type(o).__qualname__}" for o in gc.get_objects())


def probe(port: int, index: str, questions: int, marks: list[int], out: str | None, top: int) -> None:
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    url = f"http://127.0.0.1:{port}/"
    load = subprocess.Popen([sys.executable, __file__, "--client", url, "--index", index, "--questions",
                             str(questions)], text=True, stdout=subprocess.PIPE)
    snaps, counts, anon, jemalloc, threads, maps, arenas, errors = {}, {}, {}, {}, {}, {}, {}, None
    every_map: dict[int, dict] = {}
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
               tracemalloc.Filter(False, "<unknown>")]
    for line in load.stdout:
        word, n = line.split()
        if word == "errors":
            errors = int(n)
        elif int(n) in marks:
            n = int(n)
            anon[n] = rss_parts_kb(os.getpid())["RssAnon"] // 1024
            jemalloc[n] = jemalloc_stats_mb()
            threads[n] = threading.active_count(), len(os.listdir("/proc/self/task"))
            maps[n], arenas[n], every_map[n] = anonymous_maps_mb(), pymalloc_arenas(), anonymous_maps()
            counts[n] = type_counts()
            traced = ""
            if tracemalloc.is_tracing():
                snaps[n] = tracemalloc.take_snapshot().filter_traces(filters)
                traced = f", Python heap traced {sum(s.size for s in snaps[n].statistics('filename')) // 2**20} MB"
            print(f"[web_memory] {n} questions: RssAnon {anon[n]} MB{traced}, jemalloc {jemalloc[n]}, threads "
                  f"(Python, all) {threads[n]}\n  anonymous maps {maps[n]}\n  pymalloc {arenas[n]}", flush=True)
    load.wait()
    first, last = marks[0], max(anon)
    report = {"questions": last, "errors": errors, "rss_anon_mb": anon, "jemalloc_mb": jemalloc, "threads": threads,
              "anonymous_maps_mb": maps, "pymalloc": arenas,
              "grown_maps": grown_maps(every_map[first], every_map[last], top),
              "traced_mb": {n: sum(s.size for s in snaps[n].statistics("filename")) / 2**20 for n in snaps}}
    if not snaps:
        report["growth_by_type"] = dict((counts[last] - counts[first]).most_common(top))
        text = json.dumps(report, indent=1)
        print(text, flush=True)
        if out:
            Path(out).write_text(text)
        os._exit(0)
    sites = snaps[last].compare_to(snaps[first], "traceback")[:top]
    report["growth_by_site"] = [{"kib": round(s.size_diff / 1024, 1), "count": s.count_diff,
                                 "where": [f"{f.filename}:{f.lineno}" for f in s.traceback][-8:]} for s in sites]
    growth = counts[last] - counts[first]
    report["growth_by_type"] = dict(growth.most_common(top))
    text = json.dumps(report, indent=1)
    print(text, flush=True)
    if out:
        Path(out).write_text(text)
    os._exit(0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--client")
    p.add_argument("--index", default=str(WORK / "index"))
    p.add_argument("--questions", type=int, default=2000)
    p.add_argument("--marks", default="100,1000,2000")
    p.add_argument("--frames", type=int, default=12, help="traceback depth for tracemalloc; 0: no tracemalloc")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out")
    p.add_argument("--app-args", default="", help="more app.py arguments, e.g. '--batch-wait-ms 5'")
    args = p.parse_args()
    if args.client:
        return client_main(args.client, args.index, args.questions)
    index = Path(args.index)
    if not index.exists():
        corpus = write_corpus(WORK / "reports", n_reports=60)
        subprocess.run([sys.executable, "-m", "qa", "index", str(corpus), "--index", str(index)], check=True,
                       capture_output=True)
    port = free_port()
    marks = [int(m) for m in args.marks.split(",")]
    import faiss  # noqa: F401  (its OpenBLAS maps its buffers on import: named here to tell them from the rest)

    print("[web_memory] anonymous maps of 64 MiB or more after importing faiss:",
          {hex(a): round(m[0] / 2**20) for a, m in anonymous_maps().items() if m[0] >= 2**26}, flush=True)
    if args.frames:
        tracemalloc.start(args.frames)
    def run_probe(*a) -> None:
        try:
            probe(*a)
        finally:
            os._exit(1)  # a failed probe ends the run instead of leaving the server up

    threading.Thread(target=run_probe, args=(port, str(index), args.questions, marks, args.out, args.top),
                     daemon=True).start()
    import app

    app.main(["--port", str(port), "--index", str(index), *args.app_args.split()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
