"""qa serve --ray (qa/serving/ray_serve.py) on a local Ray cluster with 2 replicas: the single-process answers, an index update seen
by every replica, and a replica killed under load replaced without a failed question."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request

import pytest
import torch

ray = pytest.importorskip("ray", reason="needs the ray extra (pip install -e '.[ray]')")
try:
    from ray import serve
except ImportError as e:  # ray without its serve extra
    pytest.skip(f"needs Ray Serve (pip install 'ray[serve]'): {e}", allow_module_level=True)

from qa.assistant import Assistant
from qa.store.indexer import Indexer
from qa.serving.allocator import jemalloc_env
from qa.serving.ray_serve import ROUTE, deployment
from qa.settings import Settings
from qa.store.index import IndexStore
from qa.types import Document

from qa.serving.client import ask_backend

from conftest import SEED_QUESTION, free_port

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

QUESTIONS = [SEED_QUESTION, "Who dismantled the two networks?", "Which ministry helped the intelligence service?",
             "How many foreign nationals were in the two networks?", "What is the capital of France?"]


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("timings_ms", "replica")}


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=300) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def replicas(seed_index, tmp_path_factory):
    """(url, index folder): 2 replicas over a private copy of the seed index."""
    index = tmp_path_factory.mktemp("serve") / "index"
    shutil.copytree(seed_index, index)
    # a loaded test machine answers Serve's proxy health checks late: give it a minute, not 5-10 s
    for name in ("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"):
        os.environ.setdefault(name, "60")
    ray.init(num_cpus=2, include_dashboard=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(deployment(str(index), Settings(index_dir=str(index)), replicas=2, cpus_per_replica=0.5),
              name="report-qa", route_prefix=ROUTE)
    yield f"http://127.0.0.1:{port}{ROUTE}", index
    serve.shutdown()
    ray.shutdown()


def _every_replica(url: str, want: int = 2, tries: int = 200) -> dict[str, dict]:
    """GET the endpoint until ``want`` distinct replicas have answered: {replica: its reply}."""
    seen: dict[str, dict] = {}
    for _ in range(tries):
        d = _get(url)
        seen[d["replica"]] = d
        if len(seen) >= want:
            break
    return seen


def test_replicas_answer_as_the_single_process_does(replicas, seed_index, encoder, span_reader):
    url, index = replicas
    alone = Assistant(IndexStore.open(seed_index), encoder, span_reader, Settings(index_dir=str(seed_index)))
    # the same arithmetic as a replica: Ray runs an actor of half a CPU on 1 thread (OMP_NUM_THREADS=1), and in bf16
    # the order in which 1 or 2 threads add up a product moves a score in its second digit (measured: 0.4366 / 0.4264)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want = {q: _plain(alone.ask(q).to_dict()) for q in QUESTIONS}
    finally:
        torch.set_num_threads(threads)
    got: list[tuple[str, dict]] = []

    def ask(q):
        got.append((q, _post(url, {"question": q})))

    threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(QUESTIONS) * 4
    assert all(_plain(d) == want[q] for q, d in got)
    assert len({d["replica"] for _, d in got}) == 2  # both replicas answered
    with pytest.raises(urllib.error.HTTPError) as bad:
        _post(url, {"question": "   "})
    assert bad.value.code == 400 and "empty" in json.loads(bad.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as bad:
        _post(url, {"question": SEED_QUESTION, "k": "five"})
    assert bad.value.code == 400 and "k must be int" in json.loads(bad.value.read())["error"]


def test_replicas_run_on_jemalloc_when_the_node_has_it(replicas):
    url, _ = replicas
    want = "jemalloc" if jemalloc_env() else "glibc"
    seen = _every_replica(url)
    assert len(seen) == 2 and {d["allocator"] for d in seen.values()} == {want}, seen


def test_an_index_update_is_seen_by_every_replica(replicas, encoder, span_reader):
    url, index = replicas
    before = {d["generation"] for d in _every_replica(url).values()}
    assert len(before) == 1
    text = "Tide bulletin\nThe tide gauge at Kelso read 4321 millimetres on Tuesday morning."
    Indexer(Settings(index_dir=str(index))).upsert([Document("tide", text, "Tide bulletin", None, "upload: tide.txt")])
    after = _every_replica(url)
    assert len(after) == 2 and all(d["generation"] not in before for d in after.values())
    q = "What did the tide gauge at Kelso read?"
    want = Assistant(IndexStore.open(index), encoder, span_reader, Settings(index_dir=str(index))).ask(q).text
    assert want and "4321" in want
    answers = {}
    for _ in range(40):
        d = _post(url, {"question": q})
        answers[d["replica"]] = d["text"]
        if len(answers) == 2:
            break
    assert len(answers) == 2 and set(answers.values()) == {want}, answers


def test_a_replica_killed_under_load_is_replaced_without_a_failed_question(replicas):
    url, _ = replicas
    names = list(_every_replica(url))
    results: list[str | None] = []
    errors: list[str] = []
    stop = threading.Event()

    def user():
        while not stop.is_set():
            try:
                results.append(ask_backend(url, SEED_QUESTION, [], None, None, None, None, None).text)
            except Exception as e:  # noqa: BLE001 - counted: none may fail
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=user) for _ in range(6)]
    for t in threads:
        t.start()
    while len(results) < 10 and not errors:
        time.sleep(0.2)
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    killed_at = len(results)
    deadline = time.monotonic() + 300
    replaced = False
    while time.monotonic() < deadline and not replaced:
        time.sleep(2)
        replaced = len(set(_every_replica(url)) - {names[0]}) >= 2
    while len(results) < killed_at + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert replaced, "no new replica took the killed one's place"
    assert len(results) >= killed_at + 20 and set(results) == {"2012"}
