"""Weight averaging ("model soup") of trained readers that share a starting point, chosen on validation.

Readers fine-tuned from the same weights (for example the shipped reader and a run continued from it with
``train_reader.py --init``) lie in one basin, so a weighted average of their parameters is itself a reader; it
often keeps most of each one's strengths, at no cost at inference time. This scores the averages
``(1 - a) * first + a * second`` for each ``a`` in ``--alphas`` on the held-out validation split, with the same
data options, decoder and selection score as ``train_reader.py``, keeps the best, calibrates its no-answer
threshold on validation and writes it like ``train_reader.py`` does.

    python training/soup.py --readers qa/weights/reader,build/reader-cpu-cut --alphas 0,0.25,0.5,0.75,1 \
        --removed-negatives 0.2 --bf16 --out build/reader-soup

SQuAD dev sets take no part: measure the result afterwards with ``qa eval`` (``QA_READER_MODEL=DIR``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_reader import (add_data_args, average, device_and_amp, evaluate, prepare, save,  # noqa: E402
                          selection_score)

log = logging.getLogger("soup")


def snapshot(model) -> dict:
    """A copy of the model's weights. ``state_dict()`` itself shares its tensors with the model, so after the first
    ``load_state_dict`` it would hold the candidate just scored, not the reader it was taken from."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def candidates(model, states: list[dict], alphas: list[float], score):
    """(alpha, score(model)) with ``model`` holding ``(1 - alpha) * states[0] + alpha * states[1]``, for each alpha."""
    for a in alphas:
        model.load_state_dict(average(states, [1.0 - a, a]))
        yield a, score(model)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readers", required=True, help="FIRST,SECOND: two reader folders with the same architecture")
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="weights of SECOND to try")
    p.add_argument("--out", default="build/reader-soup")
    p.add_argument("--batch", type=int, default=64)
    add_data_args(p)  # as train_reader.py: the same validation split; with --cache, a training run's own
    return p.parse_args(argv)


def main(argv=None) -> int:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    args = parse_args(argv)
    folders, alphas = _readers_and_alphas(args)
    # windows and answer length as the SECOND reader (usually the newer run) was trained and calibrated with
    cfg = json.loads((Path(folders[1]) / "reader_config.json").read_text())
    device, amp = device_and_amp(args)
    tokenizer = AutoTokenizer.from_pretrained(folders[0])
    if tokenizer(["Who?"], ["It was Smith, in 1998."])["input_ids"] != \
            AutoTokenizer.from_pretrained(folders[1])(["Who?"], ["It was Smith, in 1998."])["input_ids"]:
        raise SystemExit("the readers' tokenizers differ")
    # the validation split as train_reader.py builds it; the training split is not needed (one example kept)
    data_args = SimpleNamespace(data=args.data, seed=args.seed, neg_fraction=args.neg_fraction,
                                removed_negatives=args.removed_negatives,
                                swapped_negatives=args.swapped_negatives,
                                antonym_negatives=args.antonym_negatives,
                                negated_negatives=args.negated_negatives,
                                paragraph_swapped_negatives=args.paragraph_swapped_negatives, max_train_examples=1,
                                max_val_examples=args.max_val_examples, max_len=cfg["max_length"],
                                stride=cfg["stride"], workers=0, cache=args.cache)
    _, tok_val, val_examples, stats = prepare(data_args, tokenizer)
    models = [AutoModelForQuestionAnswering.from_pretrained(f, dtype=torch.float32) for f in folders]
    states = [snapshot(m) for m in models]
    model = models[0].to(device)
    results, best = _score_candidates(model, states, alphas, lambda mod: evaluate(
        mod, tok_val, val_examples, device, args.batch, cfg["max_answer_tokens"], amp))
    model.load_state_dict(average(states, [1.0 - best["alpha"], best["alpha"]]))
    summary = _summary(args, folders, results, best, stats, device, amp)
    save(model, tokenizer, Path(args.out), best["null_threshold"],
         SimpleNamespace(max_len=cfg["max_length"], stride=cfg["stride"],
                         max_answer_tokens=cfg["max_answer_tokens"]), summary)
    print(json.dumps({k: summary[k] for k in ("selected_alpha", "selection_score")}
                     | {"candidates": [{k: r[k] for k in ("alpha", "selection_score", "best_f1", "has_ans_f1",
                                                          "null_threshold")}
                                       | {"new_wiki": r["has_ans_f1_by_source"].get("new_wiki_v1.0")}
                                       for r in results]}, indent=1))
    return 0


def _readers_and_alphas(args) -> tuple[list[str], list[float]]:
    folders = [d.strip() for d in args.readers.split(",") if d.strip()]
    if len(folders) != 2:
        raise SystemExit("--readers takes exactly two folders")
    alphas = [float(a) for a in args.alphas.split(",")]
    if any(not 0.0 <= a <= 1.0 for a in alphas):
        raise SystemExit("--alphas must lie in [0, 1]")
    return folders, alphas


def _score_candidates(model, states, alphas, score_fn) -> tuple[list[dict], dict]:
    """Every candidate soup's validation figures (logged), and the best."""
    results, best = [], None
    t0 = time.time()
    for a, m in candidates(model, states, alphas, score_fn):
        score = selection_score(m)
        results.append({"alpha": a, "selection_score": score, "eval_s": round(time.time() - t0, 1), **m})
        log.info("alpha %.2f: score %.2f best_f1 %.2f new_wiki %.2f has_ans_f1 %.2f threshold %.3f (%.0f s)",
                 a, score, m["best_f1"], m["has_ans_f1_by_source"].get("new_wiki_v1.0", float("nan")),
                 m["has_ans_f1"], m["null_threshold"], time.time() - t0)
        t0 = time.time()
        if best is None or score > best["selection_score"]:
            best = results[-1]
    return results, best


def _summary(args, folders: list[str], results: list[dict], best: dict, stats: dict, device, amp: bool) -> dict:
    return {
        "train_seconds": 0.0, "recipe": {"soup": vars(args)}, "history": results,  # the keys pick_best.py reads
        "soup_of": folders, "selected_alpha": best["alpha"], "selected": f"soup alpha={best['alpha']}",
        "selection_score": best["selection_score"],
        # SECOND alone (a = 1), scored here the same way: what pick_best.py holds the soup against
        "baseline_score": next((r["selection_score"] for r in results if r["alpha"] == 1.0), None),
        "validation": {k: v for k, v in best.items() if k not in ("alpha", "selection_score", "eval_s")},
        "data": stats, "device": str(device), "bf16": amp,
        "parents": {f: json.loads((Path(f) / "training_summary.json").read_text()).get("recipe")
                    for f in folders if (Path(f) / "training_summary.json").exists()},
    }


if __name__ == "__main__":
    sys.exit(main())
