"""Shared fixtures: real models, real FAISS, real files."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

# Test clients stay offline too: gradio_client / huggingface_hub look these up at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "seeds"
SEED_ID = "iraq-trafficking-networks"
SEED_QUESTION = "when did Iraq pass its anti-trafficking law"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    """Terminate, and kill what does not exit within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_app(tmp: Path, index: Path, *extra: str, wait_s: float = 240):
    """``app.py`` started as a user starts it (QA_/GRADIO_ settings cleared) over ``index``, with ``extra`` flags;
    yields its URL once it serves, and stops it afterwards. Its output goes to ``tmp/app.log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "GRADIO_"))}
    log_path = tmp / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(index),
                                 *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not serve {url} in {wait_s:.0f} s:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(proc, timeout_s=20)


def write_tally(path: Path, tally: Counter) -> None:
    """A test module's tally of cases, for ``make stress``'s summary (benchmarks/stress_report.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"written": time.strftime("%Y-%m-%dT%H:%M:%S"), "tally": dict(sorted(tally.items()))},
                               indent=1))


def shared_dir() -> Path | None:
    """../shared beside the repo (or $QA_SHARED_DIR), when this checkout has one."""
    for cand in (os.environ.get("QA_SHARED_DIR"), ROOT.parent / "shared"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def need_shared(*parts: str) -> Path:
    base = shared_dir()
    path = base.joinpath(*parts) if base else None
    if path is None or not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (not in this checkout)")
    return path


def damaged_model(tmp_path: Path, monkeypatch, kind: str, file: str, change) -> Path:
    """A copy of the embedding or reader model (``kind``) under ``tmp_path`` with ``file`` rewritten as
    ``change(its bytes)``, selected through QA_EMBEDDING_MODEL / QA_READER_MODEL; returns the damaged file."""
    from qa.models.files import embedding_model_path, reader_model_path

    src, var = {"embedding": (embedding_model_path, "QA_EMBEDDING_MODEL"),
                "reader": (reader_model_path, "QA_READER_MODEL")}[kind]
    folder = tmp_path / f"{kind}-model"
    shutil.copytree(src(), folder)
    path = folder / file
    path.write_bytes(change(path.read_bytes()))
    monkeypatch.setenv(var, str(folder))
    return path


@pytest.fixture(autouse=True)
def _model_threads_restored():
    """A test that runs app.main() or the chat's service in this process chooses the models' intra-op threads for the
    whole process (qa.models.files.serve_with_threads): put them back, so that no later test reads on another number
    of threads than it would alone (in bf16 that moves scores)."""
    from qa.models import files

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    files._serving_threads = None
    torch = sys.modules.get("torch")
    if torch is not None:  # every time: a test's own threads may have set a number, which later threads start with
        torch.set_num_threads(before or files.usable_cores())


@pytest.fixture(scope="session")
def encoder():
    from qa.models.encoder import Encoder

    return Encoder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, encoder) -> Path:
    """An index of seeds/, built once per test session (read-only: copy it before changing it)."""
    from qa.store.indexer import Indexer
    from qa.settings import Settings

    root = tmp_path_factory.mktemp("seed-index") / "index"
    Indexer(Settings(index_dir=str(root)), encoder).sync([SEEDS])
    return root


@pytest.fixture
def seed_index_copy(seed_index, tmp_path) -> Path:
    dst = tmp_path / "index"
    shutil.copytree(seed_index, dst)
    return dst


@pytest.fixture(scope="session")
def span_reader():
    from qa.reading.reader import SpanReader

    r = SpanReader()
    r.warm_up()
    return r


@pytest.fixture(scope="session")
def seed_assistant(seed_index, encoder, span_reader):
    from qa.assistant import Assistant
    from qa.settings import Settings

    a = Assistant.open(seed_index, settings=Settings(index_dir=str(seed_index)), reader=span_reader)
    return a
