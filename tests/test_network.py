"""No network at run time: index the seeds, answer the seed question and serve the chat API with every socket
connection, DNS lookup and datagram to a non-loopback address refused and recorded.

Each check runs in a fresh interpreter (nothing imported or cached by other tests), the guard installed before any
project or model code is imported, and the offline switches (HF_HUB_OFFLINE, ...) removed from its environment,
so the project has to keep itself offline.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, SEED_QUESTION, SEEDS, free_port

GUARD = r'''
import ipaddress, json, socket, sys, traceback

BLOCKED = []


def _local(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).split("%")[0]
    if host in ("", "localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(family, address, what):
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _local(host):
        BLOCKED.append({"call": what, "address": repr(address), "stack": traceback.format_stack(limit=40)[:-1]})
        raise OSError(f"network access blocked by the test: {what} {address!r}")


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_create_connection, _getaddrinfo = socket.create_connection, socket.getaddrinfo


def connect(self, address):
    _check(self.family, address, "connect")
    return _connect(self, address)


def connect_ex(self, address):
    _check(self.family, address, "connect_ex")
    return _connect_ex(self, address)


def sendto(self, data, *args):
    _check(self.family, args[-1], "sendto")
    return _sendto(self, data, *args)


def create_connection(address, *args, **kwargs):
    _check(None, address, "create_connection")
    return _create_connection(address, *args, **kwargs)


def getaddrinfo(host, *args, **kwargs):
    _check(None, (host,), "getaddrinfo")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo


def report(**result):
    print("RESULT " + json.dumps({**result, "blocked": BLOCKED}), flush=True)
'''

LIBRARY = GUARD + r'''
from qa.assistant import Assistant
from qa.store.indexer import Indexer
from qa.settings import Settings

index, seeds, question = sys.argv[1:4]
Indexer(Settings(index_dir=index)).sync([seeds])
answer = Assistant.open(index, settings=Settings(index_dir=index)).ask(question)
report(answer=answer.text)
'''

SERVER = GUARD + r'''
import os, runpy

LOG = os.environ["QA_TEST_BLOCKED_LOG"]
_record = _check


def _check(family, address, what):  # noqa: F811 - also append each refusal to a file, since a server never returns
    try:
        _record(family, address, what)
    except OSError:
        with open(LOG, "a") as f:
            f.write(json.dumps(BLOCKED[-1]) + "\n")
        raise


sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path(os.path.join(os.environ["PYTHONPATH"], "app.py"), run_name="__main__")
'''

OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
                    "GRADIO_ANALYTICS_ENABLED", "DO_NOT_TRACK")


def _run_guarded(script: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "index"), str(SEEDS), SEED_QUESTION],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert r.returncode == 0 and lines, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def test_guard_blocks_and_records_a_connection(tmp_path):
    """The guard itself: a connection to a public address is refused and recorded, loopback is not."""
    script = GUARD + r'''
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
socket.create_connection(srv.getsockname(), timeout=5).close()
for target in (("198.51.100.7", 443), ("example.org", 80)):
    try:
        socket.create_connection(target, timeout=5)
    except OSError:
        pass
report()
'''
    result = _run_guarded(script, tmp_path)
    assert [b["address"] for b in result["blocked"]] == ["('198.51.100.7', 443)", "('example.org', 80)"]


def test_indexing_and_answering_need_no_network(tmp_path):
    result = _run_guarded(LIBRARY, tmp_path)
    assert result["blocked"] == []
    assert result["answer"] == "2012"


def offline_client(url: str):
    """A gradio_client that stays offline itself (it asks huggingface.co for an agent registry and sends telemetry
    unless told not to, whatever ``analytics_enabled`` says)."""
    import huggingface_hub.constants as hf

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    hf.HF_HUB_OFFLINE = hf.HF_HUB_DISABLE_TELEMETRY = True
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


def test_the_chat_app_needs_no_network(tmp_path):
    """`python app.py` (first run: builds the index from seeds/, loads the models, serves) under the guard; the
    client, outside it, asks the seed question over loopback."""
    log = tmp_path / "blocked.jsonl"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    env.update(PYTHONPATH=str(ROOT), QA_TEST_BLOCKED_LOG=str(log))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, "--port", str(port), "--index", str(tmp_path / "index")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start listening within 300 s"
                time.sleep(0.5)
        answer = offline_client(f"http://127.0.0.1:{port}/").predict(SEED_QUESTION, api_name="/chat")
        time.sleep(2)  # let any background thread of the server (analytics, version checks) try its luck
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    blocked = [json.loads(x) for x in log.read_text().splitlines()]
    assert blocked == [], "".join(b["call"] + " " + b["address"] + "\n" + "".join(b["stack"]) for b in blocked)
    assert answer["text"] == "2012"
    assert "Traceback" not in out
