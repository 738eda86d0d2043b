"""Where the chat server's memory goes under the soak's load: ``app.py`` run in this process, with the soak's first
questions sent through ``/chat`` by 20 clients in a child process, while the soak's writer adds and removes a report
every 250 questions. At each mark it reads every account of memory there is and prints it:

- RssAnon (all anonymous resident memory), and the number of threads;
- Python's objects: ``tracemalloc`` (``--frames N``; 0 turns it off: it slows the server several times) and the live
  objects counted by type; Python's object arenas (``sys._debugmallocstats``);
- jemalloc's own account (``mallctl``: allocated, active, resident, mapped, retained, dirty and muzzy pages), when the
  process runs on jemalloc (set LD_PRELOAD/MALLOC_CONF as ``make soak`` does);
- each anonymous mapping's resident pages (``/proc/self/smaps``): at the end, the mappings that grew most.

At the end the growth from the first to the last mark goes to stdout and ``--out`` as JSON: by mapping, by Python
type and, with tracemalloc, by allocation site. A mapping that grew outside both heaps is then named with
``strace -f -k -e trace=mmap`` (its address is printed). Findings: docs/reliability.md (Memory over days of questions).

    .venv/bin/python benchmarks/web_memory.py [--questions 2000] [--marks 100,1000,2000] [--frames 0] [--out F.json]
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import traceback
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "stress"), str(ROOT / "tests"), str(ROOT)]
import test_soak as soak  # noqa: E402  (the soak's question plan and writer)
from chat_memory import CLIENTS, anon_mb, soak_index  # noqa: E402
from conftest import free_port  # noqa: E402
from _stress import offline_client, wait_for_port  # noqa: E402

MAP = tuple[int, str, int]  # an anonymous mapping: size, permissions, resident kB


def client_main(url: str, index: str, questions: int) -> int:
    """The load: ``questions`` of the soak's plan from CLIENTS threads, "done N" printed after each."""
    plan = soak.Plan(soak._questions(random.Random(14))[:questions])
    writer = soak.SoakWriter(Path(index))
    lock, state = threading.Lock(), {"done": 0, "errors": 0}

    def user() -> None:
        client = offline_client(url, timeout_s=600)
        while (item := plan.take()) is not None:
            _, question, k = item
            failed = 0
            try:
                client.predict(question, None, k, api_name="/chat")
            except Exception:  # noqa: BLE001 - counted and printed at the end
                failed = 1
            with lock:
                state["done"] += 1
                state["errors"] += failed
                done = state["done"]
                print(f"done {done}", flush=True)
            writer.after(done)

    soak.run_clients(user, CLIENTS)
    writer.close()
    print(f"errors {state['errors']}", flush=True)
    return 0


def _mallctl_size(mallctl, name: str) -> int | None:
    value, size = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
    return value.value if mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size), None, 0) == 0 else None


def jemalloc_stats_mb() -> dict[str, float]:
    """jemalloc's account in MB: held by the program (allocated), in pages in use (active), metadata, resident (an
    upper bound), mapped, retained, and free pages not yet returned (pdirty) or returned lazily (pmuzzy, MADV_FREE);
    {} under another allocator."""
    try:
        mallctl = ctypes.CDLL(None).mallctl
    except AttributeError:
        return {}
    epoch = ctypes.c_uint64(1)
    mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(8))  # refresh the statistics
    names = {n: f"stats.{n}" for n in ("allocated", "active", "metadata", "resident", "mapped", "retained")}
    pages = {n: f"stats.arenas.4096.{n}" for n in ("pdirty", "pmuzzy")}  # 4096: every arena merged
    out = {n: v / 2**20 for n, key in names.items() if (v := _mallctl_size(mallctl, key)) is not None}
    out |= {n: v * os.sysconf("SC_PAGE_SIZE") / 2**20 for n, key in pages.items()
            if (v := _mallctl_size(mallctl, key)) is not None}
    return {n: round(v, 1) for n, v in out.items()}


def anonymous_maps() -> dict[int, MAP]:
    """Each anonymous mapping of this process (no file behind it: unnamed, [heap] or [anon:...]), by start address.
    Neighbouring mappings of one kind may be one mapping to the kernel, so a "mapping" can hold several reservations."""
    maps, head = {}, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and "-" in f[0] and not f[0].endswith(":"):  # a mapping's header line
            start, end = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else ""
            head = (start, end - start, f[1]) if not name or name.startswith(("[heap", "[anon")) else None
        elif f[0] == "Rss:" and head is not None:
            maps[head[0]] = (head[1], head[2], int(f[1]))
    return maps


def maps_by_kind_mb(maps: dict[int, MAP]) -> dict[str, float]:
    """Resident anonymous memory by kind: executable (JIT code), 1 MiB (Python's arenas, when not merged with a
    neighbour), and the rest by size class (jemalloc's extents, thread stacks, other libraries' arenas)."""
    kinds: collections.Counter = collections.Counter()
    for size, perms, rss in maps.values():
        if "x" in perms:
            kinds["exec"] += rss
        elif size == 2**20:
            kinds["1 MiB"] += rss
        else:
            kinds[f"<={1 << max(12, (size - 1).bit_length()) >> 10} KiB" if size < 2**21 else ">=2 MiB"] += rss
    return {k: round(v / 1024, 1) for k, v in sorted(kinds.items())}


def grown_maps(before: dict[int, MAP], after: dict[int, MAP], top: int) -> list[dict]:
    """The anonymous mappings whose resident memory grew most (by start address: a mapping split or merged between
    the two reads shows as a new one)."""
    rows = [{"start": hex(start), "mib": round(size / 2**20, 2), "perms": perms, "rss_mb": round(rss / 1024, 1),
             "grew_mb": round((rss - before.get(start, (0, "", 0))[2]) / 1024, 1)}
            for start, (size, perms, rss) in after.items()]
    return sorted(rows, key=lambda r: -r["grew_mb"])[:top]


def pymalloc_arenas() -> str:
    """The arena lines of ``sys._debugmallocstats()`` (written to the C stderr, so caught through a file)."""
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


_NOT_THE_SERVER = [tracemalloc.Filter(False, tracemalloc.__file__),
                   tracemalloc.Filter(False, "<frozen importlib._bootstrap>"), tracemalloc.Filter(False, "<unknown>")]


def measure(n: int) -> dict:
    """Every account of memory after ``n`` questions (printed; the heavy parts kept for the final comparison)."""
    m = {"rss_anon_mb": anon_mb(), "jemalloc_mb": jemalloc_stats_mb(),
         "threads_python_all": (threading.active_count(), len(os.listdir("/proc/self/task"))),
         "pymalloc": pymalloc_arenas(), "_maps": anonymous_maps(), "_types": type_counts()}
    m["anonymous_mb_by_kind"] = maps_by_kind_mb(m["_maps"])
    if tracemalloc.is_tracing():
        m["_snapshot"] = tracemalloc.take_snapshot().filter_traces(_NOT_THE_SERVER)
        m["traced_mb"] = round(sum(s.size for s in m["_snapshot"].statistics("filename")) / 2**20, 1)
    print(f"[web_memory] {n} questions: " + json.dumps({k: v for k, v in m.items() if not k.startswith("_")}),
          flush=True)
    return m


def growth(first: dict, last: dict, top: int) -> dict:
    out = {"grown_maps": grown_maps(first["_maps"], last["_maps"], top),
           "growth_by_type": dict((last["_types"] - first["_types"]).most_common(top))}
    if "_snapshot" in last:
        sites = last["_snapshot"].compare_to(first["_snapshot"], "traceback")[:top]
        out["growth_by_site"] = [{"kib": round(s.size_diff / 1024, 1), "count": s.count_diff,
                                  "where": [f"{f.filename}:{f.lineno}" for f in s.traceback][-8:]} for s in sites]
    return out


def probe(port: int, index: str, questions: int, marks: list[int], out: str | None, top: int) -> None:
    """Waits for the server, runs the load, measures at each mark, writes the report and ends the process."""
    wait_for_port(None, port, timeout_s=900)  # the server is this process, starting in the main thread
    load = subprocess.Popen([sys.executable, __file__, "--client", f"http://127.0.0.1:{port}/", "--index", index,
                             "--questions", str(questions)], text=True, stdout=subprocess.PIPE)
    seen, errors = {}, None
    try:
        for line in load.stdout:
            word, n = line.split()
            if word == "errors":
                errors = int(n)
            elif int(n) in marks:
                seen[int(n)] = measure(int(n))
    finally:
        if load.poll() is None and (errors is None):  # the probe failed midway: the load must not run on
            load.kill()
    if load.wait() != 0 or len(seen) < 2:
        raise RuntimeError(f"the load exited with {load.returncode} after the marks {sorted(seen)}")
    first, last = seen[min(seen)], seen[max(seen)]
    report = {"questions": max(seen), "errors": errors, "command": " ".join(sys.argv),
              "marks": {n: {k: v for k, v in m.items() if not k.startswith("_")} for n, m in seen.items()},
              **growth(first, last, top)}
    text = json.dumps(report, indent=1)
    print(text, flush=True)
    if out:
        Path(out).write_text(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--client", help=argparse.SUPPRESS)  # the load's child process
    p.add_argument("--index", help="default: the soak's corpus, indexed under /tmp/inproc on first use")
    p.add_argument("--questions", type=int, default=2000)
    p.add_argument("--marks", default="100,1000,2000")
    p.add_argument("--frames", type=int, default=12, help="traceback depth for tracemalloc; 0: no tracemalloc")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out")
    p.add_argument("--app-args", default="", help="more app.py arguments, e.g. '--batch-wait-ms 5'")
    args = p.parse_args()
    if args.client:
        return client_main(args.client, args.index, args.questions)
    index = Path(args.index) if args.index else soak_index()
    port, marks = free_port(), [int(m) for m in args.marks.split(",")]
    if args.frames:
        tracemalloc.start(args.frames)

    def run_probe() -> None:
        code = 0
        try:
            probe(port, str(index), args.questions, marks, args.out, args.top)
        except BaseException:  # noqa: BLE001 - said, then the whole run ends rather than leave the server up
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=run_probe, daemon=True).start()
    import app

    app.main(["--port", str(port), "--index", str(index), *args.app_args.split()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
