"""Throughput under concurrency, before and after a change, in one run: two chat servers over copies of one index,
loaded in turn (interleaved rounds, so both see the same machine state), SOAK-style ``/chat`` clients.

    PYTHONPATH=. .venv/bin/python benchmarks/concurrency.py --before /tmp/before --index /tmp/seed \
        [--clients 20] [--per-client 10] [--rounds 3] [--out benchmarks/results/concurrency-....json]

``--before`` is a checkout of the code before (e.g. ``git archive COMMIT | tar -x -C /tmp/before``), or ``.`` for
this tree; the "after" server is this tree. ``--before-args``/``--after-args`` add options to each server's command
line (e.g. ``--before . --after-args "--batch-wait-ms 5"``: micro-batching off against on, same code). Prints
questions/s, p50 and p95 per round and server, their ratios (medians over rounds), and whether every concurrent
answer equals that server's single-user answer. Also the arithmetic: the matrix-product rate of this CPU, measured,
against the reader's FLOPs per question. On a shared machine compare ratios, not rates.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

QUESTIONS = ["when did Iraq pass its anti-trafficking law", "How many foreign nationals were in the two networks?",
             "In which city were the networks dismantled?", "What law did Iraq pass in 2012?",
             "Who dismantled the two networks?", "What crimes were the networks involved in?",
             "Which ministry helped the intelligence service?", "Who announced the operation?",
             "What was seized from the members of the networks?", "Who were most of the victims?",
             "What has made human trafficking in Iraq worse?", "What do enforcement agencies often lack?",
             "Where are victims exploited for forced labor?", "What is the capital of France?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(url: str):
    import huggingface_hub.constants as hf

    hf.HF_HUB_OFFLINE = hf.HF_HUB_DISABLE_TELEMETRY = True
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


class RestClient:
    """``/chat`` through Gradio's two-request REST API (POST ``/gradio_api/call/chat``, then read the result's event
    stream), on one kept-alive connection: what a program in another language would do, at a few milliseconds of CPU
    a question where gradio_client spends about 55 (it follows the queue's every status message). On a 2-core machine
    the clients share the server's cores, so a lighter client leaves more of them to the server."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self._conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)

    def predict(self, question: str, api_name: str = "/chat") -> dict:
        try:
            return self._predict(question, api_name)
        except Exception:
            self._conn.close()  # a response left half read would fail every later request; reopened on the next
            raise

    def _predict(self, question: str, api_name: str) -> dict:
        body = json.dumps({"data": [question, None, None, None, None, None, None]})  # every input of /chat
        self._conn.request("POST", f"/gradio_api/call{api_name}", body, {"Content-Type": "application/json"})
        r = self._conn.getresponse()
        said = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {said[:200]!r}")
        event_id = json.loads(said)["event_id"]
        self._conn.request("GET", f"/gradio_api/call{api_name}/{event_id}")
        r = self._conn.getresponse()
        event = None
        for line in r.read().decode().splitlines():  # the stream ends after its last event
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line[5:])
                if event == "error":
                    raise RuntimeError(f"the server said: {data}")
                return data[0]
        raise RuntimeError(f"no result in the stream of {event_id}")


def start(tree: Path, index: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--index", str(index), *extra], cwd=tree,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None or time.monotonic() - t0 > 600:
                raise SystemExit(f"the server in {tree} did not start")
            time.sleep(0.5)


def cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


# What differs between two asks of one question whatever the load: the time taken and the ids /chat gives each answer
# (added after this benchmark was written: with them every answer "differed")
_PER_ASK = ("timings_ms", "answer_id", "conversation_id")


def comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in _PER_ASK}


def load(url: str, pid: int, clients: int, per_client: int, seed: int, kind: str = "gradio") -> dict:
    rng = random.Random(seed)
    plans = [[rng.choice(QUESTIONS) for _ in range(per_client)] for _ in range(clients)]
    lat: list[float] = []
    answers: list[tuple[str, dict]] = []
    errors: list[str] = []
    cs = [client(url) if kind == "gradio" else RestClient(url) for _ in range(clients)]
    barrier = threading.Barrier(clients)
    lock = threading.Lock()

    def user(n: int) -> None:
        barrier.wait()
        for q in plans[n]:
            t0 = time.perf_counter()
            try:
                d = cs[n].predict(q, api_name="/chat")
            except Exception as e:  # noqa: BLE001
                errors.append(f"{type(e).__name__}: {e}")
                continue
            with lock:
                lat.append(time.perf_counter() - t0)
                answers.append((q, comparable(d)))

    threads = [threading.Thread(target=user, args=(n,)) for n in range(clients)]
    t0, c0, l0 = time.perf_counter(), cpu_s(pid), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu, load_cpu = time.perf_counter() - t0, cpu_s(pid) - c0, time.process_time() - l0
    s = sorted(lat)
    return {"questions_per_s": round(len(lat) / wall, 2), "p50_s": round(s[len(s) // 2], 3),
            "p95_s": round(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))], 3), "errors": len(errors),
            "server_cpu_s_per_question": round(cpu / max(1, len(lat)), 3),
            # the clients share the machine's cores with the server: what they use is not the server's to have
            "client_cpu_s_per_question": round(load_cpu / max(1, len(lat)), 3),
            "answers": answers}


def arithmetic(index: Path) -> dict:
    """The CPU's matrix-product rate per CPU-second (a reader-sized product, in the precision the models run in here:
    bf16 where the CPU has it natively, else fp32), against the reader's FLOPs for these questions (their windows at
    their padded widths, as the server reads them with the default k)."""
    import torch

    from qa.assistant import Assistant
    from qa.models.files import resolve_precision

    dtype = resolve_precision("auto", "cpu")
    a, b = torch.randn(16 * 256, 384).to(dtype), torch.randn(384, 1536).to(dtype)
    for _ in range(3):
        a @ b
    n, t0 = 30, time.process_time()
    for _ in range(n):
        a @ b
    rate = 2 * a.shape[0] * 384 * 1536 * n / (time.process_time() - t0)
    assistant = Assistant.open(index)
    reader = assistant.reader
    reader.warm_up()
    layers, hidden, ff = 6, 384, 1536
    total = 0.0
    for q in QUESTIONS:
        chunks = [h.chunk for h in assistant.retrieve(q, assistant.settings.k)]
        enc = reader._tokenizer([q] * len(chunks), [c.text for c in chunks], truncation="only_second",
                                max_length=reader.max_length, stride=reader.stride, return_overflowing_tokens=True,
                                padding=False, verbose=False)
        for ids in enc["input_ids"]:
            w = reader.padded_width(len(ids))
            total += layers * (w * 2 * (4 * hidden * hidden + 2 * hidden * ff) + 2 * 2 * w * w * hidden)
    flops = total / len(QUESTIONS)
    return {"dtype": str(dtype), "matmul_gflop_per_cpu_s": round(rate / 1e9, 1),
            "reader_gflop_per_question": round(flops / 1e9, 2),
            "reader_arithmetic_cpu_s_per_question": round(flops / rate, 3), "torch_threads": torch.get_num_threads()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-client", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--before-args", default="", help="options added to the before server's command line")
    ap.add_argument("--after-args", default="", help="options added to the after server's command line")
    ap.add_argument("--client", choices=("gradio", "rest"), default="gradio",
                    help="the load's clients: gradio_client (as make stress), or plain HTTP to Gradio's REST API, "
                         "which leaves more of a shared machine's CPU to the servers (RestClient)")
    ap.add_argument("--arithmetic-only", action="store_true", help="only the FLOPs against the measured rate")
    args = ap.parse_args()
    if args.arithmetic_only:
        print(json.dumps(arithmetic(args.index), indent=1))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="concurrency-"))
    servers = {}
    try:
        plan = (("before", args.before.resolve(), args.before_args), ("after", ROOT, args.after_args))
        for name, tree, extra in plan:
            shutil.copytree(args.index, tmp / name)
            servers[name] = start(tree, tmp / name, shlex.split(extra))
        single = {}
        for name, (_, url) in servers.items():
            c = client(url)
            single[name] = {q: comparable(c.predict(q, api_name="/chat"))
                            for q in QUESTIONS}
        rounds: dict[str, list[dict]] = {"before": [], "after": []}
        for r in range(args.rounds):
            for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                res = load(servers[name][1], servers[name][0].pid, args.clients, args.per_client, seed=r,
                           kind=args.client)
                res["differing_from_single_user"] = sum(d != single[name][q] for q, d in res.pop("answers"))
                rounds[name].append(res)
                print(json.dumps({"round": r, "server": name, **res}), flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {n: {k: statistics.median(x[k] for x in rs)
               for k in ("questions_per_s", "p50_s", "p95_s", "server_cpu_s_per_question",
                         "client_cpu_s_per_question")}
           for n, rs in rounds.items()}
    summary = {"command": " ".join(sys.argv), "clients": args.clients, "client": args.client,
               "per_client": args.per_client,
               "rounds": rounds, "median": med,
               "throughput_ratio": round(med["after"]["questions_per_s"] / med["before"]["questions_per_s"], 2),
               "p95_ratio": round(med["after"]["p95_s"] / med["before"]["p95_s"], 2),
               # on a shared machine a server with more runnable threads gets more of the CPU: CPU time a question
               # is the comparison that does not depend on the share each got
               "cpu_per_question_ratio": round(med["after"]["server_cpu_s_per_question"]
                                               / med["before"]["server_cpu_s_per_question"], 2),
               "same_answers_before_and_after": sum(single["before"][q] == single["after"][q] for q in QUESTIONS),
               "questions": len(QUESTIONS), "arithmetic": arithmetic(args.index)}
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
