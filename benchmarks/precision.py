"""Encoder precision on this CPU: encoding time and how close the vectors stay to fp32.

    .venv/bin/python benchmarks/precision.py [--squad ../shared/data/squad/dev-v1.1.json] [--n 512]

Encodes the first N SQuAD v1.1 dev paragraphs (pre-tokenised, as indexing does) in fp32 and bf16 with qa's encoder,
and prints the seconds of each, the cosine of every bf16 vector to its fp32 one (min, mean), and the cosine of 16
paragraphs encoded one at a time to the same paragraphs encoded in batches (batch independence). One JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.models.encoder import Encoder  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--squad", default="../shared/data/squad/dev-v1.1.json")
    p.add_argument("--n", type=int, default=512)
    a = p.parse_args(argv)
    data = json.loads(Path(a.squad).read_text(encoding="utf-8"))
    paras = [p["context"] for art in data["data"] for p in art["paragraphs"]][: a.n]
    out: dict = {"paragraphs": len(paras)}
    vecs = {}
    for precision in ("fp32", "bf16"):
        enc = Encoder(precision=precision)
        ids = enc._ids(paras)
        enc.encode_ids(ids[:64])  # warm up
        t0 = time.perf_counter()
        vecs[precision] = enc.encode_ids(ids)
        out[f"{precision}_seconds"] = round(time.perf_counter() - t0, 2)
        if precision == "bf16":
            alone = enc.encode_ids(ids[:16], batch_size=1)
            out["bf16_alone_vs_batched_cos_min"] = round(float((alone * vecs["bf16"][:16]).sum(1).min()), 6)
    cos = (vecs["fp32"] * vecs["bf16"]).sum(1)
    out["bf16_vs_fp32_cos_min"] = round(float(cos.min()), 6)
    out["bf16_vs_fp32_cos_mean"] = round(float(cos.mean()), 6)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
