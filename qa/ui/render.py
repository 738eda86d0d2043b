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

from qa.types import Answer, Citation, Document

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


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_html(text: str, offset: int, start: int | None = None, end: int | None = None) -> str:
    """``text`` (at ``offset`` in its report) as :func:`highlight` renders it, each line in a
    ``<span class="qa-t qa-at-N">`` naming the report offset N of its first character, so that the page can turn a
    selection into report offsets (``HEAD_JS``; the page's sanitizer drops data- attributes, not classes)."""
    parts, pos = [], 0
    for m in [*_LINE_BREAK.finditer(text), None]:
        stop = m.start() if m else len(text)
        if stop > pos:
            line = highlight(text[pos:stop], offset + pos, start, end)
            parts.append(f'<span class="qa-t qa-at-{offset + pos}">{line}</span>')
        if m:
            parts.append("<br>")
            pos = m.end()
    return "".join(parts)


def report_view(doc: Document, cit: Citation, window: int = REPORT_WINDOW) -> str:
    """The report around the cited passage (the passage in ``<span class="qa-passage">``, the answer marked)."""
    text = doc.text
    ps, pe = max(0, cit.passage_start), min(len(text), cit.passage_end)
    lo, hi = max(0, ps - window), min(len(text), pe + window)
    before = ("… " if lo > 0 else "") + source_html(text[lo:ps], lo)
    after = source_html(text[pe:hi], pe) + (" …" if hi < len(text) else "")
    passage = source_html(text[ps:pe], ps, cit.answer_start, cit.answer_end)
    return f'<div class="qa-report">{before}<span class="qa-passage">{passage}</span>{after}</div>'


def doc_class(doc_id: str) -> str:
    """CSS classes naming the cited report: readable (lossy), and exact (its UTF-8 in hex) for the page's script."""
    return "qa-doc-" + re.sub(r"[^A-Za-z0-9_-]", "-", doc_id) + " qa-dx-" + doc_id.encode("utf-8", "replace").hex()


def citation_html(n: int, cit: Citation, documents: Mapping[str, Document], root: str | None = None) -> str:
    meta = [f"<strong>[{n}]</strong> <strong>{esc(cit.title or cit.doc_id)}</strong>"]
    meta.append(esc(cit.date) if cit.date else "no date")
    if cit.source:
        meta.append(f"<code>{esc(display_source(cit.source, root))}</code>")
    text, offset, cut_left, cut_right = excerpt(cit)
    passage = ("… " if cut_left else "") + source_html(text, offset, cit.answer_start, cit.answer_end) + (
        " …" if cut_right else "")
    doc = documents.get(cit.doc_id)
    whole = (f'<details class="qa-whole"><summary>Show the whole report</summary>{report_view(doc, cit)}</details>'
             if doc is not None else '<div class="qa-gone">(this report is no longer in the index)</div>')
    return (f'<div class="qa-cite {doc_class(cit.doc_id)}">'
            f'<div class="qa-meta">{" · ".join(meta)}</div>'
            f'<blockquote class="qa-quote">{passage}</blockquote>{whole}</div>')


def answer_html(answer: Answer, documents: Mapping[str, Document], threshold: float | None = None,
                root: str | None = None, answer_id: str | None = None) -> str:
    """One chat message for ``answer``: the short answer in bold with its confidence, then numbered citations; with
    ``answer_id`` (as recorded by the feedback store), the verdict buttons under it."""
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
    if answer_id is None:
        return f'<div class="qa-answer">{"".join(parts)}</div>'
    parts.append(feedback_html(answer_id, answer.found))
    return f'<div class="qa-answer qa-aid-{answer_id}">{"".join(parts)}</div>'


VERDICT_BUTTONS = {"right": ("Right", "The answer is right"),
                   "wrong": ("Wrong", "The answer is wrong: mark the right one"),
                   "not_in_reports": ("Not in the reports", "The reports do not hold an answer to this question"),
                   "is_there": ("It is there", "The reports do hold the answer: mark it")}
VERDICT_DONE = {"right": "Marked right", "wrong": "Marked wrong", "not_in_reports": "Marked: not in the reports",
                "is_there": "Marked: it is there"}


def feedback_html(answer_id: str, found: bool, verdict: str | None = None, right_answer: str | None = None,
                  comment: str | None = None) -> str:
    """The verdict buttons under an answer (Right, Wrong, Not in the reports; Right, It is there for a "not found"),
    the chosen one marked, and what was said (escaped). Real buttons: reachable with Tab, pressed with Enter."""
    if not re.fullmatch(r"[0-9a-f]{32}", answer_id):
        raise ValueError(f"not an answer id: {answer_id!r}")
    buttons = []
    for v in ("right", "wrong", "not_in_reports") if found else ("right", "is_there"):
        label, title = VERDICT_BUTTONS[v]
        on = " qa-on" if v == verdict else ""
        buttons.append(f'<button type="button" class="qa-fb-b qa-v-{v}{on}" title="{title}">{label}</button>')
    note = ""
    if verdict is not None:
        note = VERDICT_DONE[verdict] + (f" · right answer: «{esc(right_answer)}»" if right_answer else "") + (
            f" · comment: {esc(comment)}" if comment else "") + " · thank you (click another to change it)"
    return (f'<div class="qa-fb qa-fid-{answer_id}" role="group"><span class="qa-fb-q">Is this answer right?</span> '
            f'{"".join(buttons)} <span class="qa-fb-note" role="status">{note}</span></div>')


_FEEDBACK_BLOCK = r'<div class="qa-fb qa-fid-{}" role="group">.*?<span class="qa-fb-note" role="status">.*?</span></div>'


def replace_feedback(messages: Sequence[dict], answer_id: str, block: str) -> list[dict]:
    """The chat's messages with answer ``answer_id``'s verdict buttons replaced by ``block`` (``feedback_html``).

    A message's content is HTML text, or (as the chat hands it back) a list of ``{"type": "text", "text": ...}``."""
    pattern = re.compile(_FEEDBACK_BLOCK.format(re.escape(answer_id)))

    def swap(text: str) -> str:
        return pattern.sub(lambda _: block, text, count=1)

    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            m = {**m, "content": swap(content)}
        elif isinstance(content, list):
            m = {**m, "content": [{**c, "text": swap(c["text"])} if isinstance(c, dict) and
                                  isinstance(c.get("text"), str) else c for c in content]}
        out.append(m)
    return out


def question_html(question: str) -> str:
    return f'<div class="qa-question">{esc(question)}</div>'


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


def feedback_counts(counts: Mapping[str, int] | None) -> str:
    """{verdict: n} as '2 right · 1 wrong' (empty when there is none)."""
    names = {"right": "right", "wrong": "wrong", "not_in_reports": "not in the reports", "is_there": "it is there"}
    return " · ".join(f"{counts[v]} {names[v]}" for v in names if counts and counts.get(v))


def report_rows(documents: Sequence[Document], chunk_counts: Sequence[int], root: str | None = None,
                feedback: Mapping[str, Mapping[str, int]] | None = None) -> list[list[object]]:
    """Rows for the reports table: id, title, date, source, chunks, staff verdicts (the Dataframe escapes its cells)."""
    feedback = feedback or {}
    return [[d.id, d.title, d.date or "", display_source(d.source, root), int(n), feedback_counts(feedback.get(d.id))]
            for d, n in zip(documents, chunk_counts)]


REPORT_COLUMNS = ["id", "title", "date", "source", "chunks", "feedback"]

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
.qa-notfound strong { color: #b42318; }
.qa-fb { display: flex; flex-wrap: wrap; gap: .4em; align-items: center; margin-top: .6em; padding-top: .4em;
         border-top: 1px dashed var(--border-color-primary); }
.qa-fb-b { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: .1em .6em; cursor: pointer;
           background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); }
.qa-fb-b:hover { border-color: var(--color-accent); }
.qa-fb-b.qa-on { background: var(--color-accent); border-color: var(--color-accent); color: #fff; }
.qa-fb-b:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.qa-fb-note { color: var(--body-text-color-subdued); }
.qa-answer ::selection { background: #9ecbff; }
"""

# Opening a citation's "whole report" scrolls the report box to the cited passage (no network, no eval).
# Feedback: a verdict button under an answer hands (answer id, verdict) to the hidden #fb-go button, whose event
# (app.py, js=qaFb.verdict) sends them; a selection inside a cited passage or an opened report becomes
# {doc, start, end} in report characters (code points, as Python counts them) and fills the "right answer" box.
HEAD_JS = """<script>
document.addEventListener("toggle", function (ev) {
  var d = ev.target;
  if (!d || !d.classList || !d.classList.contains("qa-whole") || !d.open) return;
  var box = d.querySelector(".qa-report"), p = d.querySelector(".qa-passage");
  if (box && p) { box.scrollTop = Math.max(0, p.offsetTop - 40); }
}, true);
window.qaFb = (function () {
  var state = {pending: null, sel: null};
  function match(el, re) { var m = el && el.className && String(el.className).match(re); return m ? m[1] : ""; }
  function aid(el) { return match(el && el.closest(".qa-answer"), /qa-aid-([0-9a-f]{32})/); }
  function chars(s) { return Array.from(s).length; }
  function hex(h) {
    var b = new Uint8Array((h.match(/../g) || []).map(function (x) { return parseInt(x, 16); }));
    return new TextDecoder().decode(b);
  }
  function upTo(run, node, off) { var r = document.createRange(); r.setStart(run, 0); r.setEnd(node, off); return chars(r.toString()); }
  function selection() {
    var s = window.getSelection();
    if (!s || !s.rangeCount || s.isCollapsed) return null;
    var r = s.getRangeAt(0);
    var runs = Array.prototype.filter.call(document.querySelectorAll("#chat .qa-t"), function (t) { return r.intersectsNode(t); });
    if (!runs.length) return null;
    var first = runs[0], last = runs[runs.length - 1], box = first.closest(".qa-quote, .qa-report");
    if (!box || last.closest(".qa-quote, .qa-report") !== box) return null;
    var at = function (t) { return parseInt(match(t, /qa-at-(\\d+)/), 10); };
    var start = at(first) + (first.contains(r.startContainer) ? upTo(first, r.startContainer, r.startOffset) : 0);
    var end = at(last) + (last.contains(r.endContainer) ? upTo(last, r.endContainer, r.endOffset) : chars(last.textContent));
    var cite = first.closest(".qa-cite");
    return {aid: aid(cite), doc: hex(match(cite, /qa-dx-([0-9a-f]+)/)), start: start, end: end, text: r.toString().trim()};
  }
  function selected() {
    var sel = selection();
    if (!sel || !sel.text) return;
    state.sel = sel;
    var box = document.querySelector("#fb-text textarea, #fb-text input");
    if (box) { box.value = sel.text; box.dispatchEvent(new Event("input", {bubbles: true})); }
  }
  document.addEventListener("mouseup", selected);
  document.addEventListener("keyup", function (ev) { if (ev.shiftKey || ev.key === "Shift") selected(); });
  document.addEventListener("click", function (ev) {
    var b = ev.target && ev.target.closest && ev.target.closest(".qa-fb-b");
    if (!b) return;
    var v = match(b, /qa-v-([a-z_]+)/), a = aid(b);
    if (!v || !a) return;
    state.pending = {aid: a, verdict: v};
    var go = document.querySelector("#fb-go");
    if (go) go.click();
  });
  return {
    state: state,
    verdict: function () { var p = state.pending || {}; var rest = Array.prototype.slice.call(arguments, 2);
                           return [p.aid || "", p.verdict || ""].concat(rest); },
    span: function (text) { var s = state.sel;
                            return s && (text || "").trim() === s.text ? JSON.stringify({doc: s.doc, start: s.start, end: s.end}) : ""; }
  };
})();
</script>"""
