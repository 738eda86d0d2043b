"""training/soup.py: weight averaging of readers that share a starting point."""
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
from soup import average  # noqa: E402


def _states(seed: int) -> dict:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    s = {k: v.clone() for k, v in m.state_dict().items()}
    s["position_ids"] = torch.arange(5)  # an integer buffer, as BERT has
    return s


def test_the_endpoints_are_the_readers_themselves():
    a, b = _states(0), _states(1)
    for w, ref in (([1.0, 0.0], a), ([0.0, 1.0], b)):
        out = average([a, b], w)
        assert set(out) == set(ref)
        for k in ref:
            assert torch.equal(out[k], ref[k].float() if ref[k].is_floating_point() else ref[k])


def test_a_weighted_average_of_every_float_tensor():
    a, b = _states(0), _states(1)
    out = average([a, b], [0.75, 0.25])
    w = out["0.weight"]
    assert torch.allclose(w, 0.75 * a["0.weight"] + 0.25 * b["0.weight"])
    assert not torch.allclose(w, a["0.weight"]) and not torch.allclose(w, b["0.weight"])
    assert out["position_ids"].dtype == torch.int64 and torch.equal(out["position_ids"], a["position_ids"])


def test_fp16_weights_are_averaged_in_fp32():
    a = {"w": torch.tensor([1.0, 2049.0], dtype=torch.float16)}  # 2049 is not an fp16 value: stored as 2048
    b = {"w": torch.tensor([2.0, 2050.0], dtype=torch.float16)}
    out = average([a, b], [0.5, 0.5])
    assert out["w"].dtype == torch.float32 and out["w"].tolist() == [1.5, 2049.0]


def test_readers_that_do_not_match_are_refused():
    a, b = _states(0), _states(1)
    with pytest.raises(ValueError, match="keys"):
        average([a, {k: v for k, v in b.items() if k != "1.bias"}], [0.5, 0.5])
    with pytest.raises(ValueError, match="shapes"):
        average([a, {**b, "0.bias": torch.zeros(4)}], [0.5, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        average([a, b], [0.5, 0.6])


def test_each_candidate_is_the_average_it_is_named_after():
    """The readers' weights are snapshots: scoring one candidate must not change the next one's ingredients (a
    state_dict shares its tensors with the model it came from)."""
    from soup import candidates, snapshot

    torch.manual_seed(0)
    first, second = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    w0, w1 = first.weight.detach().clone(), second.weight.detach().clone()
    states = [snapshot(first), snapshot(second)]
    seen = dict(candidates(first, states, [0.0, 0.25, 0.5, 0.75, 1.0], lambda m: m.weight.detach().clone()))
    for a, w in seen.items():
        assert torch.allclose(w, (1 - a) * w0 + a * w1, atol=1e-6), a
    assert torch.equal(states[0]["weight"], w0)


def _run(folder, score, **extra):
    import json

    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(folder.name.encode())
    (folder / "training_summary.json").write_text(json.dumps({
        "selection_score": score, "selected": 1, "train_seconds": 1.0, "validation": {}, "recipe": {},
        "history": [], **extra}))


@pytest.mark.parametrize("soup, baseline, picked", [
    (70.30, 70.10, "run_soup"),     # beats the student scored in the same pass (70.10): it wins
    (70.20, 70.00, "run_soup"),     # ... even below the student's training-time 70.25: same-pass gain +0.20
    (70.10, 70.10, "run_student"),  # the student itself (a = 1) or no better: left out
    (70.20, 70.30, "run_student"),  # re-scoring put the student higher than the soup: left out
])
def test_pick_best_holds_a_soup_against_its_own_a1_candidate(tmp_path, soup, baseline, picked):
    import json

    from pick_best import main as pick

    work, out = tmp_path / "s", tmp_path / "out"
    out.mkdir()
    _run(work / "run_student", 70.25)
    _run(work / "run_soup", soup, baseline_score=baseline, soup_of=["qa/weights/reader", str(work / "run_student")])
    assert pick(str(work), str(out)) == 0
    summary = json.loads((out / "summary_all.json").read_text())
    assert summary["best"] == picked
    assert (out / "model.safetensors.part0").read_bytes() == picked.encode()
    if picked == "run_soup":
        assert summary["runs"]["run_soup"]["selection_score"] == pytest.approx(70.25 + soup - baseline)
