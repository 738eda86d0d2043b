"""No network at run time: index the seeds, answer the seed question and serve the chat API with every socket
connection, DNS lookup and datagram to a non-loopback address refused and recorded.

Each check runs in a fresh interpreter (nothing imported or cached by other tests), the guard installed before any
project or model code is imported, and the offline switches (HF_HUB_OFFLINE, ...) removed from its environment,
so the project has to keep itself offline.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SEED_QUESTION, SEEDS

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
from qa.indexer import Indexer
from qa.settings import Settings

index, seeds, question = sys.argv[1:4]
Indexer(Settings(index_dir=index)).sync([seeds])
answer = Assistant.open(index, settings=Settings(index_dir=index)).ask(question)
report(answer=answer.text)
'''

APP = GUARD + r'''
import shutil
from gradio_client import Client
import app
from qa.settings import Settings

index, seeds, question = sys.argv[1:4]
service = app.ChatService(index, seeds=seeds, settings=Settings())
service.ensure_index()
demo = app.build_demo(service)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
try:
    d = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(question, api_name="/chat")
finally:
    demo.close()
report(answer=d["text"])
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


def test_the_chat_app_needs_no_network(tmp_path):
    result = _run_guarded(APP, tmp_path)
    assert result["blocked"] == []
    assert result["answer"] == "2012"
