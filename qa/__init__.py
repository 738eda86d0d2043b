"""report-qa: cited extractive answers over a collection of reports.

    from qa import Assistant
    answer = Assistant.open("index/").ask("when did Iraq pass its anti-trafficking law")
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa.types import Answer, Chunk, Citation, Document, Hit, Span

__version__ = "0.1.0"
__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Hit", "Span", "ask", "__version__"]

if TYPE_CHECKING:
    from qa.assistant import Assistant


def __getattr__(name: str) -> Any:
    # Heavy imports (torch, faiss) wait until an Assistant is asked for.
    if name == "Assistant":
        from qa.assistant import Assistant

        return Assistant
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


def ask(question: str, *, index_dir: str = "index", k: int | None = None) -> Answer:
    """Answer one question from the default index (``index/``)."""
    from qa.assistant import Assistant

    return Assistant.open(index_dir).ask(question, k=k)
