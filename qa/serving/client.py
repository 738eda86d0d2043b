"""A client for ``qa serve --ray``'s endpoint: the chat page (``app.py --backend URL``) sends its questions there."""
from __future__ import annotations

import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from qa.errors import BadQuestion, Busy, QAError
from qa.serving.limits import BUSY_MESSAGE
from qa.types import Answer

log = logging.getLogger(__name__)
UNAVAILABLE_WAIT_S = 2.0  # the wait before the one more try after a 503 without Retry-After (deployment down)


def _error_of(e: urllib.error.HTTPError) -> str | None:
    """The ``error`` of a JSON error body, if it is one."""
    try:
        said = json.loads(e.read() or b"{}").get("error")
    except (ValueError, AttributeError, OSError, http.client.HTTPException):
        return None
    return said if isinstance(said, str) else None


def _retry_after(e: urllib.error.HTTPError) -> float:
    """Seconds from a Retry-After header, 1 to 60 (1 when there is none or it is a date)."""
    try:
        wait = float(e.headers.get("Retry-After", 1))
    except (TypeError, ValueError):
        return 1.0
    return min(60.0, max(1.0, wait)) if math.isfinite(wait) else 1.0


def ask_backend(url: str, question: str, history: Sequence[Answer], k, threshold, doc_ids, date_from, date_to,
                attempts: int = 3) -> Answer:
    """Ask `qa serve --ray`'s endpoint. A question whose replica dies with it is sent again (questions have
    no side effects), and so is a 500 (a replica that cannot answer: the question is sent again, and Ray may route it
    elsewhere); 429 or a 503 with Retry-After (every replica's queue full) is Busy, with the server's Retry-After; a
    503 without Retry-After is Ray Serve's "deployment unavailable" (the deployment failed or was deleted: while
    dead replicas are replaced Ray keeps questions waiting instead), sent once more after UNAVAILABLE_WAIT_S and
    then a QAError that says the servers are down, not busy; 400 is the replica's message about the question."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    body = json.dumps({"question": question, "history": [h.to_dict() for h in history], "k": int(k) if k else None,
                       "threshold": threshold, "doc_ids": list(doc_ids) if doc_ids else None,
                       "date_from": date_from, "date_to": date_to}).encode()
    unavailable = False  # a 503 without Retry-After came: at most one more try
    for attempt in range(attempts):
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return Answer.from_dict(json.loads(r.read()))
        except urllib.error.HTTPError as e:
            said = _error_of(e)
            if e.code == 429 or (e.code == 503 and e.headers.get("Retry-After") is not None):
                raise Busy(BUSY_MESSAGE, retry_after_s=_retry_after(e)) from e
            if e.code == 503:
                if unavailable or attempt == attempts - 1:
                    raise QAError("the assistant's servers are not running just now; try again later, and if it "
                                  "persists tell whoever runs them") from e
                unavailable = True
                log.warning("backend %s: deployment unavailable (HTTP 503); trying once more in %.0f s", url,
                            UNAVAILABLE_WAIT_S)
                time.sleep(UNAVAILABLE_WAIT_S)
                continue
            if e.code == 400:
                raise BadQuestion(said or "the backend refused the question") from e
            failure: Exception = e
            answered = f"HTTP {e.code}" + (f": {said}" if said else "")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            failure, answered = e, None
        log.warning("backend %s failed (%s); attempt %d of %d", url, answered or failure, attempt + 1, attempts)
        if attempt < attempts - 1:
            time.sleep(0.5 * (attempt + 1))
    if answered:  # the replicas answered, with an error of their own: its details are in their log and ours
        raise QAError("the assistant's servers cannot answer just now; try again later, and if it persists tell "
                      "whoever runs them (their log says why)")
    raise QAError(f"the backend at {url} does not answer ({failure}); check that `qa serve --ray` runs there")
