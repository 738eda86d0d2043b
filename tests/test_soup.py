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
