"""A client for ``qa serve --ray``'s endpoint: the chat page (``app.py --backend URL``) sends its questions there."""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from qa.errors import BadQuestion, Busy, QAError
from qa.serving.limits import BUSY_MESSAGE
from qa.types import Answer

log = logging.getLogger(__name__)


def _error_of(e: urllib.error.HTTPError) -> str | None:
    """The ``error`` of a JSON error body, if it is one."""
    try:
        return json.loads(e.read() or b"{}").get("error")
    except (ValueError, AttributeError, OSError):
        return None


def _retry_after(e: urllib.error.HTTPError) -> float:
    """Seconds from a Retry-After header (1 when there is none or it is a date)."""
    try:
        return max(1.0, float(e.headers.get("Retry-After", 1)))
    except (TypeError, ValueError):
        return 1.0


def ask_backend(url: str, question: str, history: Sequence[Answer], k, threshold, doc_ids, date_from, date_to,
                attempts: int = 3) -> Answer:
    """Ask `qa serve --ray`'s endpoint. A replica that dies with the question is retried on another (questions have
    no side effects), and so is a 500 (that replica cannot answer); 503 or 429 (busy) is Busy, with the server's
    Retry-After; 400 is the replica's message about the question."""
    body = json.dumps({"question": question, "history": [h.to_dict() for h in history], "k": int(k) if k else None,
                       "threshold": threshold, "doc_ids": list(doc_ids) if doc_ids else None,
                       "date_from": date_from, "date_to": date_to}).encode()
    for attempt in range(attempts):
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return Answer.from_dict(json.loads(r.read()))
        except urllib.error.HTTPError as e:
            said = _error_of(e)
            if e.code in (429, 503):
                raise Busy(said or BUSY_MESSAGE, retry_after_s=_retry_after(e)) from e
            if e.code == 400:
                raise BadQuestion(said or "the backend refused the question") from e
            failure: Exception = QAError(f"HTTP {e.code}: {said}") if said else e
        except (urllib.error.URLError, OSError) as e:
            failure = e
        log.warning("backend %s failed (%s); attempt %d of %d", url, failure, attempt + 1, attempts)
        time.sleep(0.5 * (attempt + 1))
    raise QAError(f"the backend at {url} does not answer ({failure}); check that `qa serve --ray` runs there")
