"""Exploration: features from the shipped reader for answerability."""
import sys, json, math, random, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'training'))
import numpy as np, torch
from qa.reading.decoding import top_token_spans
from qa.reading.reader import SpanReader

def extract(reader, examples, bs=32):
    """examples: list of (question, context). Returns dict of arrays."""
    reader.warm_up()
    tok = reader._tokenizer
    qs = [reader._fit_question(q) for q, _ in examples]
    enc = tok(qs, [c for _, c in examples], truncation="only_second", max_length=reader.max_length,
              stride=reader.stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    n = len(enc["input_ids"])
    order = sorted(range(n), key=lambda w: len(enc["input_ids"][w]))
    best = {}; null = {}
    with torch.inference_mode():
        for b0 in range(0, n, bs):
            wins = order[b0:b0+bs]
            width = max(len(enc["input_ids"][w]) for w in wins)
            ids = torch.zeros((len(wins), width), dtype=torch.long); tt = torch.zeros_like(ids); mask = torch.zeros_like(ids)
            for r, w in enumerate(wins):
                x = enc["input_ids"][w]; ids[r,:len(x)] = torch.tensor(x); tt[r,:len(x)] = torch.tensor(enc["token_type_ids"][w]); mask[r,:len(x)] = 1
            hidden = reader._encoder(input_ids=ids, token_type_ids=tt, attention_mask=mask).last_hidden_state.float()
            logits = reader._head(hidden).numpy()
            hid = hidden.numpy()
            for r, w in enumerate(wins):
                L = len(enc["input_ids"][w]); seq = enc.sequence_ids(w)
                ctx = np.array([s == 1 for s in seq]); ci = enc["overflow_to_sample_mapping"][w]
                s, e = logits[r,:L,0], logits[r,:L,1]
                nl = float(s[0] + e[0])
                [(score, i, j)] = top_token_spans(s, e, ctx, reader.max_answer_tokens, 1)
                null[ci] = min(null.get(ci, math.inf), nl)
                if ci not in best or score > best[ci][0]:
                    # softmax stats over context
                    sc = np.where(ctx, s, -np.inf); ec = np.where(ctx, e, -np.inf)
                    ps = np.exp(sc - sc.max()); ps /= ps.sum(); pe = np.exp(ec - ec.max()); pe /= pe.sum()
                    span_mean = hid[r, i:j+1].mean(0)
                    offs = enc["offset_mapping"][w]
                    best[ci] = (score, hid[r,0].copy(), span_mean, float(ps.max()), float(pe.max()), j - i + 1, nl,
                                float(s[ctx].max()), float(e[ctx].max()), offs[i][0], offs[j][1])
    out = {k: [] for k in ("score","null","cls","span","pmax_s","pmax_e","len","win_null","smax","emax","text")}
    for ci in range(len(examples)):
        b = best[ci]
        out["score"].append(b[0]); out["null"].append(null[ci]); out["cls"].append(b[1]); out["span"].append(b[2])
        out["pmax_s"].append(b[3]); out["pmax_e"].append(b[4]); out["len"].append(b[5]); out["win_null"].append(b[6])
        out["smax"].append(b[7]); out["emax"].append(b[8]); out["text"].append(examples[ci][1][b[9]:b[10]])
    return {k: (np.array(v) if k != "text" else v) for k, v in out.items()}
