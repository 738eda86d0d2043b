"""training/train_reader.py from start to finish on a tiny data set, with --passage-ranking: straight through, paused
after every step and resumed with the same command (as the CPU runs are), and resumed from a checkpoint written
before the loss sums were checkpointed."""
import json
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
pytest.importorskip("transformers")
READER = ROOT / "qa" / "weights" / "reader"
if not (READER / "model.safetensors").exists():
    pytest.skip(f"no shipped reader at {READER}", allow_module_level=True)

from reader_data import _is_val  # noqa: E402
from train_reader import main  # noqa: E402

PAUSE_AFTER_EACH_STEP = ("--time-budget", "1e-9", "--pause-at-budget")  # a budget of ~0 s: one step a call
_SYL = ["ar", "bel", "cor", "dun", "es", "fal", "gor", "hal", "is", "jor", "kel", "lun"]


def _name(i: int) -> str:
    return (_SYL[i % 12] + _SYL[(i // 12) % 12] + "by").capitalize()


def _data(folder):
    """40 two-paragraph articles on made-up towns, one question a paragraph; some articles fall in validation."""
    arts = []
    for i in range(40):
        town, mayor = _name(i), _name(i + 50)
        p1 = f"The town of {town} was founded in {1700 + i}. It lies on a river and trades in wool."
        p2 = f"{town} has a population of {1000 + 37 * i} people. Its mayor is {mayor}, elected last spring."
        arts.append({"title": town, "paragraphs": [
            {"context": p1, "qas": [{"id": f"{i}a", "question": f"When was {town} founded?",
                                     "answers": [{"text": str(1700 + i), "answer_start": p1.index(str(1700 + i))}]}]},
            {"context": p2, "qas": [{"id": f"{i}b", "question": f"Who is the mayor of {town}?",
                                     "answers": [{"text": mayor, "answer_start": p2.index(mayor)}]}]}]})
    assert 0 < sum(_is_val("tiny", a["title"]) for a in arts) < 40
    folder.mkdir()
    (folder / "tiny.json").write_text(json.dumps({"data": arts}))


def _argv(tmp_path, out: str, *extra: str) -> list[str]:
    return ["--base", str(READER), "--init", str(READER), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / out), "--cache", str(tmp_path / "data.pt"), "--device", "cpu",
            "--max-len", "96", "--stride", "32", "--batch", "4", "--epochs", "1", "--lr", "1e-5",
            "--neg-fraction", "1.0", "--passage-ranking", "0.5", "--max-steps", "3", "--checkpoint-minutes", "0",
            "--seed", "7", "--workers", "1", *extra]


def test_a_run_paused_after_every_step_logs_the_loss_of_the_whole_epoch(tmp_path, caplog):
    _data(tmp_path / "data")
    assert main(_argv(tmp_path, "straight")) == 0
    straight = json.loads((tmp_path / "straight" / "training_summary.json").read_text())
    assert (tmp_path / "straight" / "model.safetensors").exists()
    assert not (tmp_path / "straight" / "checkpoint.pt").exists()
    assert straight["recipe"]["passage_ranking"] == 0.5

    calls = 0
    while not (tmp_path / "paused" / "model.safetensors").exists():
        calls += 1
        assert calls <= 5, "the paused run never finished"
        assert main(_argv(tmp_path, "paused", *PAUSE_AFTER_EACH_STEP)) == 0
    assert calls == 4  # steps 0, 1, 2 paused after each, then the epoch's end
    paused = json.loads((tmp_path / "paused" / "training_summary.json").read_text())
    ep_straight, ep_paused = straight["history"][0], paused["history"][0]
    # the loss is a mean over every 20th step: here step 0 alone, which ran in the first of the four calls
    assert ep_straight["loss"] > 0
    assert ep_paused["loss"] == pytest.approx(ep_straight["loss"], rel=1e-6)
    assert "passage_ranking" in ep_straight  # step 0's batch held a question with a distractor passage (the trained
    # reader already ranks its own passage first by the margin, so the term itself may be 0)
    assert ep_paused["passage_ranking"] == pytest.approx(ep_straight["passage_ranking"], rel=1e-6)
    assert ep_paused["epoch_s"] > 0

    # a checkpoint from before the sums were checkpointed still resumes: the sums start afresh there, with a warning
    assert main(_argv(tmp_path, "old", *PAUSE_AFTER_EACH_STEP)) == 0  # step 0, paused at step 1
    ckpt = tmp_path / "old" / "checkpoint.pt"
    st = torch.load(ckpt, weights_only=False)
    del st["losses"], st["epoch_s"]
    torch.save(st, ckpt)
    assert main(_argv(tmp_path, "old")) == 0
    assert "predates checkpointed loss sums" in caplog.text
    old = json.loads((tmp_path / "old" / "training_summary.json").read_text())["history"][0]
    assert old["loss"] == 0.0 and "passage_ranking" not in old  # steps 1-2 only: none of them is an every-20th step
