"""Rendering answers for the chat app (``app.py``): safe HTML for the page, plain text for copying.

Everything that comes from a report or a user goes through :func:`esc`: HTML-escaped, and with the characters
Markdown and GFM act on turned into numeric character references, so ``<script>``, ``<img onerror=...>``,
``![x](http://...)`` and ``[a](javascript:...)`` in a report show as the text they are. Each message is one
line of HTML (newlines become ``<br>``), so the chat's Markdown renderer sees a single raw HTML block and
never parses report text as Markdown.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from .types import Answer, Citation, Document

REPORT_WINDOW = 20_000  # characters of the report shown on each side of a cited passage
QUOTE_WINDOW = 280  # characters of the passage quoted on each side of the answer (the whole report is one click away)
CLOSEST_SHOWN = 3  # closest passages listed under a "not found" answer

# HTML's five, then what Markdown/GFM/LaTeX act on; one pass, so no entity is escaped twice
_ENTITIES = {ord(c): f"&#{ord(c)};" for c in "&<>\"'" + "\\`*_{}[]()!#|~$:@+-=^"}
_WWW_RE = re.compile(r"(?i)(www)\.")


def esc(text: str | None) -> str:
    """``text`` as inert HTML: escaped, Markdown-neutral, newlines as ``<br>``."""
    if not text:
        return ""
    out = text.translate(_ENTITIES)
    out = _WWW_RE.sub(r"\1&#46;", out)  # "www.example.org" is not auto-linked
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def highlight(text: str, offset: int, start: int | None, end: int | None, tag: str = "mark") -> str:
    """``text`` (which starts at ``offset`` in its report) escaped, with report span [start, end) wrapped in ``tag``.

    A span that lies outside ``text`` is clipped to it; ``None`` offsets or an empty span mark nothing.
    """
    if start is None or end is None:
        return esc(text)
    s = min(max(start - offset, 0), len(text))
    e = min(max(end - offset, s), len(text))
    if s == e:
        return esc(text)
    return f"{esc(text[:s])}<{tag}>{esc(text[s:e])}</{tag}>{esc(text[e:])}"


def excerpt(cit: Citation, window: int = QUOTE_WINDOW) -> tuple[str, int, bool, bool]:
    """The part of the cited passage around the answer (the start of it when there is none), cut at spaces.

    Returns (text, its offset in the report, cut on the left, cut on the right).
    """
    p, base = cit.passage, cit.passage_start
    if cit.answer_start is not None and cit.answer_end is not None:
        lo, hi = cit.answer_start - base - window, cit.answer_end - base + window
    else:
        lo, hi = 0, 2 * window
    lo, hi = max(0, lo), min(len(p), hi)
    if lo > 0:
        sp = p.find(" ", lo)
        lo = sp + 1 if 0 <= sp < (cit.answer_start - base if cit.answer_start is not None else hi) else lo
    if hi < len(p):
        sp = p.rfind(" ", 0, hi)
        hi = sp if sp > (cit.answer_end - base if cit.answer_end is not None else lo) else hi
    return p[lo:hi], base + lo, lo > 0, hi < len(p)


def percent(score: float) -> str:
    return f"{round(100 * max(0.0, min(1.0, score)))}%"


def display_source(source: str, root: str | os.PathLike | None = None) -> str:
    """A report's source for display: paths under ``root`` relative to it."""
    if root and source and os.path.isabs(source):
        base = os.path.abspath(root)
        if source.startswith(base.rstrip(os.sep) + os.sep):
            return os.path.relpath(source, base)
    return source


def report_view(doc: Document, cit: Citation, window: int = REPORT_WINDOW) -> str:
    """The report around the cited passage (the passage in ``<span class="qa-passage">``, the answer marked)."""
    text = doc.text
    ps, pe = max(0, cit.passage_start), min(len(text), cit.passage_end)
    lo, hi = max(0, ps - window), min(len(text), pe + window)
    before = ("… " if lo > 0 else "") + text[lo:ps]
    after = text[pe:hi] + (" …" if hi < len(text) else "")
    passage = highlight(text[ps:pe], ps, cit.answer_start, cit.answer_end)
    return (f'<div class="qa-report">{esc(before)}<span class="qa-passage">{passage}</span>{esc(after)}</div>')


def doc_class(doc_id: str) -> str:
    """A CSS class naming the cited report (the page's sanitizer drops data- attributes)."""
    return "qa-doc-" + re.sub(r"[^A-Za-z0-9_-]", "-", doc_id)


def citation_html(n: int, cit: Citation, documents: Mapping[str, Document], root: str | None = None) -> str:
    meta = [f"<strong>[{n}]</strong> <strong>{esc(cit.title or cit.doc_id)}</strong>"]
    meta.append(esc(cit.date) if cit.date else "no date")
    if cit.source:
        meta.append(f"<code>{esc(display_source(cit.source, root))}</code>")
    text, offset, cut_left, cut_right = excerpt(cit)
    passage = ("… " if cut_left else "") + highlight(text, offset, cit.answer_start, cit.answer_end) + (
        " …" if cut_right else "")
    doc = documents.get(cit.doc_id)
    whole = (f'<details class="qa-whole"><summary>Show the whole report</summary>{report_view(doc, cit)}</details>'
             if doc is not None else '<div class="qa-gone">(this report is no longer in the index)</div>')
    return (f'<div class="qa-cite {doc_class(cit.doc_id)}">'
            f'<div class="qa-meta">{" · ".join(meta)}</div>'
            f'<blockquote class="qa-quote">{passage}</blockquote>{whole}</div>')


def answer_html(answer: Answer, documents: Mapping[str, Document], threshold: float | None = None,
                root: str | None = None) -> str:
    """One chat message for ``answer``: the short answer in bold with its confidence, then numbered citations."""
    parts: list[str] = []
    if answer.found:
        parts.append(f'<p class="qa-short"><strong>{esc(answer.text)}</strong> '
                     f'<span class="qa-conf">(confidence {percent(answer.score)})</span></p>')
        cits = answer.citations
    else:
        why = f"best confidence {percent(answer.score)}"
        if threshold is not None:
            why += f", below the {percent(threshold)} threshold"
        parts.append(f'<p class="qa-short qa-notfound"><strong>Not found.</strong> The reports do not contain the '
                     f"answer to this question ({why}).</p>")
        cits = answer.citations[:CLOSEST_SHOWN]
        if cits:
            parts.append('<p class="qa-closest">The closest passages:</p>')
    if answer.resolved_question:
        parts.append(f'<p class="qa-resolved">Read as: <em>{esc(answer.resolved_question)}</em></p>')
    parts += [citation_html(n, c, documents, root) for n, c in enumerate(cits, 1)]
    return f'<div class="qa-answer">{"".join(parts)}</div>'


def question_html(question: str) -> str:
    return f'<div class="qa-question">{esc(question)}</div>'


def error_html(message: str) -> str:
    return f'<div class="qa-error"><strong>Cannot answer:</strong> {esc(message)}</div>'


def answer_text(answer: Answer, threshold: float | None = None, root: str | None = None) -> str:
    """``answer`` and its citations as plain text (for copying into an e-mail or a note)."""
    lines = [f"Q: {answer.question}"]
    if answer.found:
        lines.append(f"A: {answer.text} (confidence {percent(answer.score)})")
        cits = answer.citations
    else:
        lines.append(f"A: Not found: the reports do not contain the answer (best confidence {percent(answer.score)}"
                     + (f", threshold {percent(threshold)})" if threshold is not None else ")"))
        cits = answer.citations[:CLOSEST_SHOWN]
        if cits:
            lines.append("Closest passages:")
    for n, c in enumerate(cits, 1):
        meta = " | ".join(x for x in (c.title or c.doc_id, c.date or "no date", display_source(c.source, root)) if x)
        p, offset, cut_left, cut_right = excerpt(c)
        if c.answer_start is not None and c.answer_end is not None:
            s = min(max(c.answer_start - offset, 0), len(p))
            e = min(max(c.answer_end - offset, s), len(p))
            p = p[:s] + "«" + p[s:e] + "»" + p[e:] if e > s else p
        quote = ("… " if cut_left else "") + " ".join(p.split()) + (" …" if cut_right else "")
        lines += ["", f"[{n}] {meta}", f'    "{quote}"']
    return "\n".join(lines)


def report_rows(documents: Sequence[Document], chunk_counts: Sequence[int],
                root: str | None = None) -> list[list[object]]:
    """Rows for the reports table: id, title, date, source, chunks (the Dataframe escapes its cells)."""
    return [[d.id, d.title, d.date or "", display_source(d.source, root), int(n)]
            for d, n in zip(documents, chunk_counts)]


REPORT_COLUMNS = ["id", "title", "date", "source", "chunks"]

CSS = """
.qa-answer p { margin: 0 0 .4em 0; }
.qa-conf, .qa-meta code { color: var(--body-text-color-subdued); }
.qa-cite { margin: .6em 0 .2em 0; padding-top: .4em; border-top: 1px solid var(--border-color-primary); }
.qa-quote { margin: .3em 0; padding-left: .7em; border-left: 3px solid var(--color-accent); }
.qa-answer mark { background: #ffe066; color: #111; padding: 0 .1em; border-radius: 2px; }
.qa-whole summary { cursor: pointer; color: var(--link-text-color); }
.qa-report { position: relative; max-height: 22em; overflow-y: auto; padding: .5em; margin-top: .3em;
             white-space: normal; border: 1px solid var(--border-color-primary); border-radius: 4px; }
.qa-passage { background: rgba(255, 224, 102, .25); outline: 1px dashed #c9a800; }
.qa-notfound strong, .qa-error strong { color: #b42318; }
"""

# Opening a citation's "whole report" scrolls the report box to the cited passage (no network, no eval).
HEAD_JS = """<script>
document.addEventListener("toggle", function (ev) {
  var d = ev.target;
  if (!d || !d.classList || !d.classList.contains("qa-whole") || !d.open) return;
  var box = d.querySelector(".qa-report"), p = d.querySelector(".qa-passage");
  if (box && p) { box.scrollTop = Math.max(0, p.offsetTop - 40); }
}, true);
</script>"""
