"""``qa serve --ray``: the Assistant as a Ray Serve deployment, in replicas across a cluster, behind one HTTP endpoint.

Each replica opens the same index folder read-only (a shared or replicated folder on every node), batches the
questions it is sent (``qa/serving/batching.py``), and switches to a newer generation of the index as soon as one is written
(it looks before every question, as the chat does). ``app.py --backend URL`` runs the chat page as a front end that
sends its questions here, so pages and replicas scale apart.

HTTP: ``POST /ask`` with JSON ``{"question": ..., "history": [answer dicts], "k", "threshold", "doc_ids",
"date_from", "date_to"}`` -> ``Answer.to_dict()`` (plus ``replica``, the replica that answered); a bad question or
setting -> 400 ``{"error": ...}``; more questions queued than ``max_queued`` -> 503 (Ray Serve's back-pressure).
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.settings import Settings
from qa.types import Answer

log = logging.getLogger(__name__)

SERVE_MISSING = "qa serve --ray needs Ray Serve: pip install 'ray[serve]' (and report-qa's ray extra)"
ROUTE = "/ask"


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
        self.assistant.warm_up()
        try:
            import ray

            self.name = ray.get_runtime_context().get_actor_name() or str(os.getpid())
        except Exception:  # noqa: BLE001 - only a label
            self.name = str(os.getpid())

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict) or "question" not in body:
            raise ValueError('send JSON {"question": "..."}')
        history = [Answer.from_dict(d) for d in body.get("history") or []]
        self.assistant.reload_if_changed()
        answer = self.assistant.ask(body["question"], history, body.get("k"), doc_ids=body.get("doc_ids"),
                                    date_from=body.get("date_from"), date_to=body.get("date_to"),
                                    threshold=body.get("threshold"))
        return {**answer.to_dict(), "replica": self.name}

    def generation(self) -> str:
        self.assistant.reload_if_changed()
        return Path(self.assistant.store.generation).name

    async def __call__(self, request) -> Any:
        from starlette.responses import JSONResponse

        if request.method == "GET":  # which generation of the index this replica answers from
            return JSONResponse({"generation": await asyncio.to_thread(self.generation), "replica": self.name})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        try:
            return JSONResponse(await asyncio.to_thread(self.ask, body))
        except (QAError, ValueError, TypeError, KeyError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)


def deployment(index_dir: str, settings: Settings, *, replicas: int = 2, wait_ms: float = 5.0,
               max_ongoing: int = 16, max_queued: int = 64, cpus_per_replica: float = 1.0):
    """The Ray Serve application: ``replicas`` AssistantReplicas, each taking up to ``max_ongoing`` questions at once
    (they share forward passes) and queueing ``max_queued`` more; past that, HTTP 503."""
    serve = _serve()
    cls = serve.deployment(AssistantReplica, name="assistant", num_replicas=replicas,
                           max_ongoing_requests=max_ongoing, max_queued_requests=max_queued,
                           ray_actor_options={"num_cpus": cpus_per_replica}, health_check_period_s=5)
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
