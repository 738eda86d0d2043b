"""A self-contained HTML report of an evaluation run: summary, inline SVG charts, question table.

No external resources: no CDN, no scripts, no fonts. Every text from a question set or a model is
passed through ``html.escape``.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Mapping, Sequence

from qa.eval.evaluate import Record

log = logging.getLogger(__name__)

_W, _H = 560, 260  # chart size in px
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 12, 28, 46
_COLORS = ("#4c78a8", "#f58518", "#54a24b")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:3px 7px;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.chart{border:1px solid #eee;padding:.4rem}
.bad{background:#fdecea}.good{background:#eaf6ea}svg text{font-size:11px;fill:#333}
"""


def _num(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _bars_svg(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    y_max: float,
    notes: Sequence[str] | None = None,
    y_label: str = "",
    diagonal: bool = False,
) -> str:
    """A bar chart (one group per label, one bar per series) as an inline ``<svg>`` element."""
    inner_w, inner_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    y_max = y_max if y_max > 0 else 1.0
    group_w = inner_w / max(1, len(labels))
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{_W / 2:.0f}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>']
    for i in range(5):  # horizontal grid with y ticks
        frac = i / 4
        y = _PAD_T + inner_h * (1 - frac)
        parts.append(f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - _PAD_R}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{_tick(y_max * frac)}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{_PAD_T + inner_h / 2:.0f}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {_PAD_T + inner_h / 2:.0f})">{html.escape(y_label)}</text>')
    if diagonal:
        parts.append(f'<line x1="{_PAD_L}" y1="{_PAD_T + inner_h}" x2="{_W - _PAD_R}" y2="{_PAD_T}" '
                     f'stroke="#999" stroke-dasharray="4 3"/>')
    for g, label in enumerate(labels):
        x0 = _PAD_L + g * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series):
            value = max(0.0, min(values[g], y_max))
            h = inner_h * value / y_max
            x = x0 + s * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{_PAD_T + inner_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{_COLORS[s % len(_COLORS)]}"><title>{html.escape(f"{label} {name}: {values[g]:.3g}")}'
                         f'</title></rect>')
        cx = _PAD_L + (g + 0.5) * group_w
        parts.append(f'<text x="{cx:.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle">{html.escape(label)}</text>')
        if notes:
            parts.append(f'<text x="{cx:.1f}" y="{_H - _PAD_B + 28}" text-anchor="middle" fill="#777">'
                         f'{html.escape(notes[g])}</text>')
    for s, (name, _) in enumerate(series):  # legend
        x = _W - _PAD_R - 90 * (len(series) - s)
        parts.append(f'<rect x="{x}" y="{_H - 12}" width="10" height="10" fill="{_COLORS[s % len(_COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{_H - 3}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.2g}"


def calibration_svg(records: Sequence[Record], bins: int = 10) -> str:
    """Share of answers counted correct (F1 >= 0.5) per confidence bin; n per bin under each bar."""
    counts, correct = [0] * bins, [0] * bins
    for r in records:
        b = min(bins - 1, max(0, int(min(1.0, max(0.0, r.confidence)) * bins)))
        counts[b] += 1
        correct[b] += r.f1 >= 0.5
    labels = [f"{i / bins:.1f}" for i in range(bins)]
    shares = [correct[i] / counts[i] if counts[i] else 0.0 for i in range(bins)]
    return _bars_svg("Calibration: confidence vs share correct (F1 \u2265 0.5)", labels,
                     [("share correct", shares)], 1.0, notes=[f"n={c}" for c in counts],
                     y_label="share correct", diagonal=True)


def latency_svg(records: Sequence[Record], bins: int = 20) -> str:
    """Histogram of per-question latency in milliseconds."""
    latencies = [max(0.0, r.latency_ms) for r in records]
    top = max(latencies, default=0.0) or 1.0
    width = top / bins
    counts = [0] * bins
    for value in latencies:
        counts[min(bins - 1, int(value / width))] += 1
    labels = [f"{i * width:.0f}" if i % 4 == 0 else "" for i in range(bins)]
    return _bars_svg(f"Latency (ms per question; bins of {width:.3g} ms, max {top:.1f})", labels,
                     [("questions", [float(c) for c in counts])], float(max(counts, default=1)),
                     y_label="questions")


def by_type_svg(summary: dict) -> str:
    """Exact match and F1 (percent) for each question type; n under each group."""
    by_type = summary.get("by_type", {})
    labels = list(by_type)
    return _bars_svg("Accuracy by question type", labels,
                     [("EM", [by_type[t]["exact_match"] for t in labels]), ("F1", [by_type[t]["f1"] for t in labels])],
                     100.0, notes=[f"n={by_type[t]['n']}" for t in labels], y_label="percent")


def _summary_table(summary: dict) -> str:
    rows = []
    for key, value in summary.items():
        if key == "by_type":
            continue
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, v in items:
            name = f"{key} {sub}".strip()
            rows.append(f"<tr><th>{html.escape(name)}</th><td class=num>{_num(v)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _golds(r: Record, none: str) -> str:
    """A record's gold answers, each once, or ``none`` for an unanswerable question."""
    return " | ".join(dict.fromkeys(r.golds)) if r.golds else none


def _row_start(r: Record) -> str:
    """A table row's opening, coloured by the record's score (good: exact, bad: F1 0), with its id and question."""
    cls = "good" if r.exact == 1.0 else ("bad" if r.f1 == 0.0 else "")
    return f'<tr class="{cls}"><td>{html.escape(r.id)}</td><td>{html.escape(r.question)}</td>'


def _records_table(records: Sequence[Record], max_rows: int) -> str:
    ordered = sorted(records, key=lambda r: (r.f1, -r.confidence))[:max_rows]
    head = ("<tr><th>id</th><th>question</th><th>gold</th><th>prediction</th><th>EM</th><th>F1</th>"
            "<th>confidence</th><th>gold rank</th><th>ms</th><th>type</th></tr>")
    rows = []
    for r in ordered:
        rows.append(
            f"{_row_start(r)}<td>{html.escape(_golds(r, '(no answer)'))}</td>"
            f"<td>{html.escape(r.prediction) or '(no answer)'}</td>"
            f"<td class=num>{r.exact:.0f}</td><td class=num>{r.f1:.2f}</td><td class=num>{r.confidence:.2f}</td>"
            f"<td class=num>{_num(r.gold_rank)}</td><td class=num>{r.latency_ms:.1f}</td>"
            f"<td>{html.escape(r.qtype)}</td></tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def flagged_table(records: Sequence[Record], flagged: Mapping[str, Mapping]) -> str:
    """Questions staff gave a verdict on (a set from ``qa feedback export``): the answer the chat gave then, the
    staff's answer (gold) and this run's answer side by side."""
    head = ("<tr><th>id</th><th>question</th><th>verdict</th><th>old answer (chat)</th><th>staff's answer</th>"
            "<th>new answer (this run)</th><th>EM</th><th>F1</th></tr>")
    rows = []
    for r in records:
        f = flagged.get(r.id)
        if f is None:
            continue
        old = f.get("old_answer")
        rows.append(
            f"{_row_start(r)}<td>{html.escape(str(f.get('verdict') or ''))}</td>"
            f"<td>{html.escape(old) if old else '(not found)'}</td>"
            f"<td>{html.escape(_golds(r, '(not in the reports)'))}</td>"
            f"<td>{html.escape(r.prediction) or '(not found)'}</td><td class=num>{r.exact:.0f}</td>"
            f"<td class=num>{r.f1:.2f}</td></tr>")
    fixed = sum(1 for r in records if r.id in flagged and r.exact == 1.0)
    return (f"<h2>Flagged by staff</h2><p>{fixed} of {len(rows)} questions answered as staff said.</p>"
            f"<table class=\"flagged\">{head}{''.join(rows)}</table>")


def write_html_report(
    records: Sequence[Record], summary: dict, path: str | Path, title: str, max_rows: int = 1000,
    flagged: Mapping[str, Mapping] | None = None,
) -> Path:
    """Write one self-contained HTML file; the question table lists the worst ``max_rows`` answers. ``flagged``
    ({question id: {"verdict", "old_answer"}}, ``qa.feedback.export.read_flagged``) adds the staff's questions."""
    if not records:
        raise ValueError("no records to report; evaluate at least one question first")
    path = Path(path)
    shown = min(len(records), max_rows)
    caption = (f"All {len(records)} questions, worst F1 first." if shown == len(records)
               else f"The {shown} lowest-F1 of {len(records)} questions (most confident first among ties).")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<h2>Summary</h2>{_summary_table(summary)}"
        "<p>Percentages as in the official SQuAD script; latency in milliseconds.</p>"
        f"{flagged_table(records, flagged) if flagged else ''}"
        "<h2>Charts</h2><div class=\"charts\">"
        f"<div class=\"chart\">{calibration_svg(records)}</div>"
        f"<div class=\"chart\">{latency_svg(records)}</div>"
        f"<div class=\"chart\">{by_type_svg(summary)}</div></div>"
        f"<h2>Questions</h2><p>{html.escape(caption)}</p>{_records_table(records, max_rows)}"
        "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    log.info("wrote HTML report of %d questions to %s", len(records), path)
    return path
