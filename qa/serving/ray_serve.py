"""``qa serve --ray``: the Assistant as a Ray Serve deployment, in replicas across a cluster, behind one HTTP endpoint.

Each replica opens the same index folder read-only (a shared or replicated folder on every node), batches the
questions it is sent (``qa/serving/batching.py``), and switches to a newer generation of the index as soon as one is written
(it looks before every question, as the chat does). ``app.py --backend URL`` runs the chat page as a front end that
sends its questions here, so pages and replicas scale apart.

HTTP: ``POST /ask`` with JSON ``{"question": ..., "history": [answer dicts], "k", "threshold", "doc_ids",
"date_from", "date_to"}`` -> ``Answer.to_dict()`` (plus ``replica``, the replica that answered). A replica's errors
are JSON ``{"error": ...}``: a bad question, field or setting -> 400; the replica's own failure (its index or model
unreadable, a bug) -> 500, which the client sends again. Ray Serve itself answers 503 with ``Retry-After`` (plain
text) when more questions are queued than ``max_queued``, 500 when a replica died with the question, and 503
without Retry-After when the deployment failed or was deleted (``qa.serving.client.ask_backend`` treats each
accordingly; while dead replicas are replaced, Ray keeps questions waiting).

Replicas start on jemalloc when the node has it, like the launcher (``qa/serving/allocator.py``); on glibc's malloc
they give free pages back every so many questions.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from qa.errors import BadFilter, BadQuestion, BadSetting, QAError
from qa.serving.allocator import Trimmer, jemalloc_env
from qa.settings import Settings
from qa.types import answers_from_dicts

log = logging.getLogger(__name__)

SERVE_MISSING = "qa serve --ray needs Ray Serve: pip install 'ray[serve]' (and report-qa's ray extra)"
ROUTE = "/ask"
RETRY_AFTER_S = 1  # what a refused client is told to wait (Retry-After) when every replica's queue is full
FIELDS = {"question": str, "history": list, "k": int, "threshold": (int, float), "doc_ids": list, "date_from": str,
          "date_to": str}  # the body's fields and their JSON types (all but the question may be null or absent)


def parse_body(body: Any) -> dict[str, Any]:
    """The request's fields, checked: ``BadQuestion`` (-> 400) for anything a client sent wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("question"), str):
        raise BadQuestion('send JSON {"question": "..."}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadQuestion(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    for name, kind in FIELDS.items():
        v = body.get(name)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            raise BadQuestion(f"{name} must be {getattr(kind, '__name__', 'a number')}, not {type(v).__name__}")
    if not all(isinstance(d, str) for d in body.get("doc_ids") or []):
        raise BadQuestion("doc_ids must be a list of report ids (strings)")
    return {**body, "history": answers_from_dicts(body.get("history"), "/ask")}


def error_response(e: Exception) -> tuple[int, dict[str, str]]:
    """(HTTP status, JSON body) for an exception raised while answering."""
    if isinstance(e, (BadQuestion, BadFilter, BadSetting)):  # the client's to fix
        return 400, {"error": str(e)}
    log.exception("replica failed on a question")
    if isinstance(e, QAError):  # the replica cannot answer: its index or model
        return 500, {"error": f"this replica cannot answer: {e}"}
    return 500, {"error": f"internal error ({type(e).__name__}); the replica's log has the details"}


def _serve():
    try:
        from ray import serve
    except ImportError as e:
        raise QAError(f"{SERVE_MISSING} ({e})") from e
    return serve


class AssistantReplica:
    """One replica: an Assistant over ``index_dir``, its forward passes shared by concurrent questions."""

    def __init__(self, index_dir: str, settings: Settings, wait_ms: float) -> None:
        from qa.assistant import Assistant

        self.assistant = Assistant.open(index_dir, settings=settings)
        self.assistant.batch_concurrent(wait_ms)
        self.assistant.warm_up(every_shape=True)
        self.trimmer = Trimmer()
        try:
            import ray

            self.name = ray.get_runtime_context().get_actor_name() or str(os.getpid())
        except Exception:  # noqa: BLE001 - only a label
            self.name = str(os.getpid())

    def ask(self, body: Any) -> dict[str, Any]:
        b = parse_body(body)
        self.assistant.reload_if_changed()
        answer = self.assistant.ask(b["question"], b["history"], b.get("k"), doc_ids=b.get("doc_ids"),
                                    date_from=b.get("date_from"), date_to=b.get("date_to"),
                                    threshold=b.get("threshold"))
        self.trimmer.asked()
        return {**answer.to_dict(), "replica": self.name}

    def generation(self) -> str:
        self.assistant.reload_if_changed()
        return Path(self.assistant.store.generation).name

    async def __call__(self, request) -> Any:
        from starlette.responses import JSONResponse

        if request.method == "GET":  # which generation of the index this replica answers from, on which allocator
            return JSONResponse({"generation": await asyncio.to_thread(self.generation), "replica": self.name,
                                 "allocator": self.trimmer.allocator})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        try:
            return JSONResponse(await asyncio.to_thread(self.ask, body))
        except Exception as e:  # noqa: BLE001 - every failure is an HTTP answer that says whose it is
            status, said = error_response(e)
            return JSONResponse(said, status_code=status)


def actor_options(cpus_per_replica: float) -> dict[str, Any]:
    """Ray actor options for a replica: its CPUs, and jemalloc preloaded when this node has it."""
    env = jemalloc_env()
    return {"num_cpus": cpus_per_replica, **({"runtime_env": {"env_vars": env}} if env else {})}


def deployment(index_dir: str, settings: Settings, *, replicas: int = 2, wait_ms: float = 5.0,
               max_ongoing: int = 16, max_queued: int = 64, cpus_per_replica: float = 1.0):
    """The Ray Serve application: ``replicas`` AssistantReplicas, each taking up to ``max_ongoing`` questions at once
    (through one model thread: qa/serving/batching.py) and queueing ``max_queued`` more; past that, HTTP 503."""
    serve = _serve()
    from ray.serve.config import BackpressureConfig

    cls = serve.deployment(AssistantReplica, name="assistant", num_replicas=replicas,
                           max_ongoing_requests=max_ongoing, max_queued_requests=max_queued,
                           backpressure_config=BackpressureConfig(status_code=503, retry_after_s=RETRY_AFTER_S),
                           ray_actor_options=actor_options(cpus_per_replica), health_check_period_s=5)
    return cls.bind(os.path.abspath(index_dir), settings, wait_ms)


def run(index_dir: str, settings: Settings, *, replicas: int = 2, host: str = "127.0.0.1", port: int = 8000,
        address: str | None = None, wait_ms: float = 5.0, blocking: bool = True, cpus_per_replica: float = 1.0):
    """Start (or join) a Ray cluster and Serve, deploy the replicas at http://HOST:PORT/ask; block when asked."""
    import ray

    serve = _serve()
    if not ray.is_initialized():
        ray.init(address=address, **({"include_dashboard": False} if address is None else {}))
    serve.start(http_options={"host": host, "port": port})
    handle = serve.run(deployment(index_dir, settings, replicas=replicas, wait_ms=wait_ms,
                                  cpus_per_replica=cpus_per_replica), name="report-qa", route_prefix=ROUTE)
    log.info("report-qa: %d replicas at http://%s:%d%s", replicas, host, port, ROUTE)
    if blocking:
        import time

        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            serve.shutdown()
    return handle
