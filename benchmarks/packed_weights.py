"""Packed projection weights (``LeanBert.pack``) against plain ``F.linear``, on one intra-op thread, as a server reads:

    PYTHONPATH=. .venv/bin/python benchmarks/packed_weights.py [--index /tmp/inproc/index] [--rounds 4] [--out F.json]

Prints, for the shipped span reader in bf16: the time of one window at each padded width, packed and plain (median
of 20 calls each), whether the hidden states are bit-identical; and, with ``--index``, the CPU-seconds a question of
``Assistant.ask`` over the 14 questions of ``benchmarks/concurrency.py`` with the reader's packed copies in use and
removed (medians of interleaved rounds), and whether every answer is the same. Compare ratios, not times.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qa.models.files import serve_with_threads  # noqa: E402
from qa.models.lean_bert import LeanBert, load_tensors, read_config  # noqa: E402
from qa.reading.reader import SpanReader  # noqa: E402


def window_times(reader: SpanReader, calls: int = 20) -> list[dict]:
    tensors, config = load_tensors(reader.model_path), read_config(reader.model_path)
    packed = LeanBert(tensors, config, dtype=torch.bfloat16)  # packed: main() chose one thread, as a server does
    plain = LeanBert(tensors, config, dtype=torch.bfloat16, pack=False)
    if not packed.packed:
        raise SystemExit("the weights were not packed on this CPU (no oneDNN bf16, or other bits): nothing to compare")
    g = torch.Generator().manual_seed(0)
    rows = []
    for width in sorted({reader.padded_width(n) for n in range(1, reader.max_length + 1)}):
        ids = torch.randint(1000, 29000, (1, width), generator=g)
        mask = torch.ones_like(ids)
        times = {}
        with torch.inference_mode():
            same = torch.equal(packed(ids, mask), plain(ids, mask))
            for name, model in (("packed", packed), ("plain", plain)):
                samples = []
                for _ in range(calls):
                    t = time.perf_counter()
                    model(ids, mask)
                    samples.append(time.perf_counter() - t)
                times[name] = statistics.median(samples) * 1000
        rows.append({"width": width, "packed_ms": round(times["packed"], 2), "plain_ms": round(times["plain"], 2),
                     "ratio": round(times["packed"] / times["plain"], 3), "same_bits": same})
    return rows


def ask_cpu(index: str, rounds: int) -> dict:
    from concurrency import QUESTIONS

    from qa.assistant import Assistant

    assistant = Assistant.open(index)
    assistant.warm_up(every_shape=True)
    model = assistant.reader._encoder
    if not model.packed:
        raise SystemExit("the reader's weights were not packed (not on one thread, or not bf16 on a CPU)")

    def run(use_packed: bool) -> tuple[float, list]:
        model.packed = use_packed  # the reader's; the question encoder stays packed in both
        t = time.process_time()
        answers = [(a.text, round(a.score, 6)) for a in (assistant.ask(q) for q in QUESTIONS)]
        return (time.process_time() - t) / len(QUESTIONS), answers

    cpu = {"packed": [], "plain": []}
    answers = {}
    for _ in range(rounds):
        for name in ("packed", "plain"):
            seconds, answers[name] = run(name == "packed")
            cpu[name].append(seconds)
    run(True)
    median = {name: round(statistics.median(v), 4) for name, v in cpu.items()}
    return {"cpu_s_per_question": median, "ratio": round(median["packed"] / median["plain"], 3),
            "same_answers": answers["packed"] == answers["plain"], "questions": len(QUESTIONS), "rounds": rounds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", help="an index to ask the benchmark questions over (skipped without)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    serve_with_threads(1)
    reader = SpanReader(precision="bf16")
    reader.warm_up()
    result = {"command": " ".join(["benchmarks/packed_weights.py", *(argv or sys.argv[1:])]),
              "torch_threads": torch.get_num_threads(), "windows": window_times(reader)}
    for row in result["windows"]:
        print(json.dumps(row), flush=True)
    widths = result["windows"]
    result["window_ratio_median"] = statistics.median(r["ratio"] for r in widths)
    result["all_same_bits"] = all(r["same_bits"] for r in widths)
    if args.index:
        result["ask"] = ask_cpu(args.index, args.rounds)
    print(json.dumps({k: v for k, v in result.items() if k != "windows"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
