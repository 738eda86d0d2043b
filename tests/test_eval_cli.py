"""qa eval / qa score end to end through the CLI, with the real assistant."""
import json

from qa.cli import main

from conftest import DATA, need_shared

KEYS = {"n", "exact_match", "f1", "has_answer", "no_answer", "retrieval", "citation_support", "latency_ms"}


def test_eval_seed_questions_json_and_out(seed_index, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["eval", str(DATA / "seed_questions.jsonl"), "--index", str(seed_index), "--json",
                 "--no-progress", "--out", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert KEYS <= set(s)
    assert set(s["has_answer"]) >= {"n", "exact_match", "f1"} and set(s["no_answer"]) >= {"n", "accuracy"}
    assert set(s["retrieval"]) >= {"recall@1", "recall@5", "recall@10", "mrr"}
    assert set(s["latency_ms"]) >= {"p50", "p95"}
    assert s["n"] == 15 and s["has_answer"]["n"] == 12 and s["no_answer"]["n"] == 3
    # measured when the reader shipped: EM 73.3 / F1 76.5, every unanswerable abstained, gold report always first
    assert s["f1"] >= 65 and s["no_answer"]["accuracy"] >= 66
    assert s["retrieval"]["recall@1"] == 100.0
    preds = json.loads((out / "predictions.json").read_text())
    assert preds["seed-1"] == "2012" and preds["seed-na-1"] == ""
    assert (out / "records.csv").read_text().startswith("id,question,gold,prediction,EM,F1,confidence,gold_rank")
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3
    # comparing a run with itself: no question better or worse
    assert main(["eval", "--compare", str(out), str(out)]) == 0
    assert "0 better, 0 worse" in capsys.readouterr().out


def test_eval_conversations_use_history(seed_index, capsys):
    assert main(["eval", str(DATA / "seed_conversations.jsonl"), "--index", str(seed_index), "--json",
                 "--no-progress"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n"] == 4 and s["exact_match"] == 100.0  # follow-ups answered only through history


def test_eval_gold_context_on_squad_sample(capsys):
    assert main(["eval", str(DATA / "squad_sample.json"), "--gold-context", "--limit", "30", "--seed", "1",
                 "--json", "--no-progress", "--threshold", "0"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n"] == 30 and s["f1"] > 50
    assert s["retrieval"]["recall@5"] is None  # not measured when reading the gold paragraph


def test_eval_open_corpus_from_squad_contexts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the corpus index is cached under .cache/ of the working folder
    assert main(["eval", str(DATA / "squad_sample.json"), "--limit", "20", "--json", "--no-progress"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n"] == 20 and s["retrieval"]["recall@10"] >= 80
    assert list((tmp_path / ".cache" / "eval-index").iterdir())


def test_score_reproduces_published_figures(capsys):
    squad = need_shared("data", "squad")
    assert main(["score", str(squad / "dev-v2.0.json"),
                 str(squad / "reference_predictions" / "v2.0_BERT_single_GoogleAI.json")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert round(s["exact"], 2) == 78.74 and round(s["f1"], 2) == 81.78
    assert main(["score", str(squad / "dev-v1.1.json"),
                 str(squad / "reference_predictions" / "v1.1_BERT_ensemble_GoogleAI.json")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert round(s["exact"], 2) == 86.21 and round(s["f1"], 2) == 92.20


def test_malformed_question_file_names_the_line(tmp_path, capsys):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?", "answers": ["x"]}\n{"question": \n')
    assert main(["eval", str(bad), "--index", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "q.jsonl:2: bad JSON" in err and "Traceback" not in err
