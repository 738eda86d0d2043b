"""train_reader.py --passage-ranking: a question's passages batched together, and the margin ranking loss."""
import random
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
from train_reader import make_grouped_batches, passage_group, passage_ranking_loss  # noqa: E402


def test_a_question_groups_with_its_distractor_passages_only():
    assert passage_group("wiki/q1") == "wiki/q1"
    assert passage_group("wiki/q1/neg") == passage_group("wiki/q1/cut") == "wiki/q1"
    # negatives that change the question are not that question's passages
    assert passage_group("wiki/q1/swap") is passage_group("wiki/q1/ant") is passage_group("wiki/q1/not") is None


def _tok(groups: list) -> dict:
    rng = random.Random(0)
    return {"input_ids": [[0] * rng.randint(5, 40) for _ in groups], "passages_of": groups}


def test_grouped_batches_keep_a_question_and_its_passages_together():
    groups = []
    for q in range(40):
        groups += [f"q{q}"] * (1 + q % 3) + [f"q{q}"] * (q % 2)  # own windows, then a distractor window or none
        groups += [None]  # a swapped-question window: a group of its own
    tok = _tok(groups)
    weights = [1.0] * len(groups)
    batches = make_grouped_batches(tok, weights, 8, random.Random(1))
    drawn = sorted(i for b in batches for i in b)
    assert drawn == list(range(len(groups)))  # every window once at weight 1
    assert all(len(b) <= 8 for b in batches)
    where = {i: k for k, b in enumerate(batches) for i in b}
    for g in {g for g in groups if g is not None}:
        assert len({where[i] for i, h in enumerate(groups) if h == g}) == 1, g


def test_grouped_batches_repeat_a_group_by_its_weight_and_split_what_exceeds_a_batch():
    groups = ["big"] * 11 + ["small"] * 2
    tok = _tok(groups)
    weights = [1.0] * 11 + [2.0] * 2
    batches = make_grouped_batches(tok, weights, 4, random.Random(0))
    drawn = sorted(i for b in batches for i in b)
    assert drawn == list(range(11)) + [11, 11, 12, 12]
    assert all(len(b) <= 4 for b in batches)


def _logits(gold_margin: float, other_margin: float):
    """Two windows of one question: window 0 holds the answer at tokens (2, 3), window 1 is a distractor passage
    whose only context span is (2, 2). Margins are span score minus [CLS] score."""
    start = torch.zeros(2, 5)
    end = torch.zeros(2, 5)
    start[0, 2], end[0, 3] = gold_margin, 0.0
    start[1, 2], end[1, 2] = other_margin, 0.0
    context = torch.zeros(2, 5, dtype=torch.bool)
    context[0, 2:4] = True
    context[1, 2] = True
    return start, end, torch.tensor([2, 0]), torch.tensor([3, 0]), context


def test_the_loss_is_log_one_plus_exp_of_the_margin_gap():
    start, end, s, e, ctx = _logits(3.0, 1.0)
    loss = passage_ranking_loss(start, end, s, e, ctx, ["q", "q"], [False, True])
    # the distractor's only span (2, 2) has margin 1.0 (end logit 0 there); the gold margin is 3.0
    assert torch.isclose(loss, torch.log1p(torch.exp(torch.tensor(1.0 - 3.0))))
    worse = passage_ranking_loss(*_logits(1.0, 3.0), ["q", "q"], [False, True])
    assert worse > loss


def test_the_gradient_raises_the_gold_margin_and_lowers_the_distractor():
    start, end, s, e, ctx = _logits(0.0, 0.0)
    start.requires_grad_(True)
    end.requires_grad_(True)
    passage_ranking_loss(start, end, s, e, ctx, ["q", "q"], [False, True]).backward()
    assert start.grad[0, 2] < 0 and start.grad[0, 0] > 0  # gold span up, its [CLS] down
    assert start.grad[1, 2] > 0 and start.grad[1, 0] < 0  # distractor span down, its [CLS] up
    assert start.grad[1, 3] == 0 and start.grad[1, 4] == 0  # nothing outside the distractor's context moves


def _two_windows():
    start, end = torch.zeros(2, 6), torch.zeros(2, 6)
    start[0, 1] = 2.0  # gold span (1, 1) of window 0: margin 2
    context = torch.zeros(2, 6, dtype=torch.bool)
    context[:, 1:5] = True
    return start, end, torch.tensor([1, 0]), torch.tensor([1, 0]), context


def _expected(gap: float) -> torch.Tensor:
    return torch.log1p(torch.exp(torch.tensor(gap)))


def test_an_end_before_its_start_is_not_a_distractor_span():
    start, end, s, e, ctx = _two_windows()
    start[1, 4], end[1, 1] = 9.0, 9.0  # (4, 1) would score 18; the valid best is (1, 1) or (4, 4), 9
    assert torch.isclose(passage_ranking_loss(start, end, s, e, ctx, ["q", "q"], [False, True], 30), _expected(7.0))


def test_a_distractor_span_is_at_most_max_answer_tokens_long():
    start, end, s, e, ctx = _two_windows()
    start[1, 1], end[1, 4] = 5.0, 5.0  # (1, 4), 4 tokens: 10; single tokens (1, 1) or (4, 4): 5
    loss = lambda n: passage_ranking_loss(start, end, s, e, ctx, ["q", "q"], [False, True], n)  # noqa: E731
    assert torch.isclose(loss(4), _expected(8.0))
    assert torch.isclose(loss(3), _expected(3.0)) and torch.isclose(loss(1), _expected(3.0))


def test_no_loss_without_a_pair_of_the_same_question():
    start, end, s, e, ctx = _logits(1.0, 2.0)
    assert passage_ranking_loss(start, end, s, e, ctx, ["q", "r"], [False, True]) is None  # other questions
    assert passage_ranking_loss(start, end, s, e, ctx, ["q", "q"], [False, False]) is None  # no distractor
    assert passage_ranking_loss(start, end, s, e, ctx, [None, None], [False, True]) is None
    s0 = torch.tensor([0, 0])  # the own window does not hold the answer
    assert passage_ranking_loss(start, end, s0, e, ctx, ["q", "q"], [False, True]) is None


def test_a_cache_made_with_other_data_options_is_refused(tmp_path):
    from types import SimpleNamespace

    from train_reader import _DATA_SHAPE, prepare
    opts = dict(seed=31, neg_fraction=0.4, removed_negatives=0.5, swapped_negatives=1.0, antonym_negatives=1.0,
                negated_negatives=1.0, max_val_examples=2000, max_len=384, stride=128)
    # a cache made before --paragraph-swapped-negatives existed does not record it: it was made with its default
    assert set(opts) | {"paragraph_swapped_negatives"} == set(_DATA_SHAPE)
    cache = tmp_path / "data.pt"
    torch.save(({"input_ids": []}, {"input_ids": []}, [], {"data_shape": opts}), cache)
    same = SimpleNamespace(cache=str(cache), max_train_examples=1, paragraph_swapped_negatives=0.0,
                           **opts)  # the sample size is not checked
    assert prepare(same, tokenizer=None)[3]["data_shape"] == opts
    with pytest.raises(SystemExit, match="antonym_negatives"):
        prepare(SimpleNamespace(**{**vars(same), "antonym_negatives": 0.0}), tokenizer=None)
    with pytest.raises(SystemExit, match="paragraph_swapped_negatives"):
        prepare(SimpleNamespace(**{**vars(same), "paragraph_swapped_negatives": 1.0}), tokenizer=None)
