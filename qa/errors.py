"""Exceptions a caller can catch. Every message says what went wrong and what to do."""


class QAError(Exception):
    """Base class for report-qa errors."""


class BadQuestion(QAError, ValueError):
    """The question is empty, too long or has no words."""


class BadFilter(QAError, ValueError):
    """A search filter that cannot be read (a report date that is not YYYY, YYYY-MM or YYYY-MM-DD)."""


class BadSetting(QAError, ValueError):
    """A setting out of its range: passages read (k), the not-found threshold."""


class IndexNotFound(QAError):
    """There is no index where one was expected."""


class IndexIncompatible(QAError):
    """The index was built with another model, format or settings."""


class IndexCorrupt(QAError):
    """A file of the index is missing, truncated or damaged."""


class IndexLocked(QAError):
    """Another process is writing the index."""


class ModelNotFound(QAError):
    """A model package is not installed."""


class ModelCorrupt(QAError):
    """A model's files are there but cannot be read (truncated or damaged weights, a broken config)."""


class IngestError(QAError):
    """A file could not be read as a report."""


class BadFeedback(QAError, ValueError):
    """A verdict on an answer that cannot be recorded: unknown answer, verdict or report, offsets off the report."""


class Busy(QAError):
    """The server has as many questions waiting as it holds, or this client asked too often: try again shortly."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnsupported(QAError):
    """A model folder whose architecture or settings the lean forward pass (qa/models/lean_bert.py) does not implement."""
