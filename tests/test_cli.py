"""The qa command, called in-process."""
import json

import pytest

from qa.cli import main

from conftest import SEEDS, SEED_ID, SEED_QUESTION, damaged_model


def test_index_ask_docs_remove(tmp_path, capsys):
    idx = str(tmp_path / "index")
    assert main(["index", str(SEEDS), "--index", idx, "-q"]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["index", str(SEEDS), "--index", idx, "-q"]) == 0
    assert "0 chunks embedded" in capsys.readouterr().out
    assert main(["ask", SEED_QUESTION, "--index", idx, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["text"] == "2012" and d["citations"][0]["doc_id"] == SEED_ID
    assert main(["ask", SEED_QUESTION, "--index", idx]) == 0
    assert capsys.readouterr().out.startswith("2012")
    assert main(["docs", "--index", idx, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["id"] == SEED_ID and rows[0]["chunks"] >= 2
    assert main(["remove", "nope", "--index", idx]) == 2
    assert "no report with id" in capsys.readouterr().err
    assert main(["remove", SEED_ID, "--index", idx]) == 0
    assert "1 removed" in capsys.readouterr().out


def test_bad_input_exits_nonzero_with_one_line(tmp_path, capsys):
    assert main(["ask", "when?", "--index", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no index") and "qa index" in err and "Traceback" not in err
    assert main(["index", str(tmp_path / "missing-folder"), "--index", str(tmp_path / "i")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_empty_question(seed_index, capsys):
    assert main(["ask", "   ", "--index", str(seed_index)]) == 2
    assert "question is empty" in capsys.readouterr().err


def test_unreadable_file_is_skipped_by_name(tmp_path, capsys):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "good.txt").write_text("The dam on the Mekong was finished in 2019.")
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    assert main(["index", str(folder), "--index", str(tmp_path / "i"), "-q"]) == 0
    out = capsys.readouterr()
    assert "1 added" in out.out and "2 skipped" in out.out
    assert "empty.txt" in out.err and "binary.txt" in out.err


def test_module_entry_point():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "qa", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "index" in r.stdout


@pytest.mark.parametrize("kind, file, change, says", [
    ("embedding", "config.json", lambda b: b"{bad", "cannot read .*config.json"),
    ("embedding", "config.json", lambda b: b"{}", "config.json has no valid 'hidden_size'"),
    ("reader", "reader_config.json", lambda b: b"{bad", "cannot read .*reader_config.json"),
    ("reader", "config.json", lambda b: b.replace(b'"num_hidden_layers": 6', b'"num_hidden_layers": 7'),
     "model.safetensors do not fit .*config.json"),
])
def test_a_damaged_model_is_one_line_naming_the_file(seed_index, tmp_path, monkeypatch, capsys, kind, file, change,
                                                     says):
    import re

    damaged_model(tmp_path, monkeypatch, kind, file, change)
    assert main(["ask", SEED_QUESTION, "--index", str(seed_index)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "unexpected" not in err
    assert re.search(says, err) and "reinstall the model" in err


def test_score_takes_json_like_every_command(tmp_path, capsys):
    import json

    from conftest import DATA

    gold = DATA / "eval" / "squad_tiny.json"
    (tmp_path / "p.json").write_text(json.dumps({"s1": "Jane Porter", "s2": "", "s3": "1976", "s4": "Ada Voss"}))
    assert main(["score", str(gold), str(tmp_path / "p.json"), "--json"]) == 0
    with_flag = json.loads(capsys.readouterr().out)
    assert main(["score", str(gold), str(tmp_path / "p.json")]) == 0
    assert json.loads(capsys.readouterr().out) == with_flag and with_flag["exact"] == 75.0


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import PackageNotFoundError, version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    try:
        want = version("report-qa")
    except PackageNotFoundError:
        want = "unknown"
    assert capsys.readouterr().out.strip().startswith(f"qa {want}")
