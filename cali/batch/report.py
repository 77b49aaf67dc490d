"""The day's report: quality results, errors per service per hour, top clusters, what was learned.

`build_report` merges the two step outputs kept under reports/dt=<day>/ (quality.json from the checks,
reindex.json from the Ray Job); `render_html` makes the page a person reads. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

QUALITY_NAME = "quality.json"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def build_report(day: str, quality: dict[str, Any] | None, reindex: dict[str, Any] | None,
                 now: datetime, alert: str | None = None) -> dict[str, Any]:
    """The report document; a missing step is reported as missing, never invented."""
    hours: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (reindex or {}).get("per_service_hour", []):
        if row["level"] in ("ERROR", "FATAL"):
            hours[row["service"]][row["hour"]] += row["records"]
    knowledge = (reindex or {}).get("knowledge", {})
    return {
        "day": day, "generated_at": now.isoformat(),
        "quality": None if quality is None else {k: v for k, v in quality.items()},
        "quality_alert": alert,
        "errors_per_service_per_hour": {s: dict(sorted(h.items())) for s, h in sorted(hours.items())},
        "warnings_per_service": _per_service(reindex, "WARN"),
        "records": (reindex or {}).get("records"), "alertable": (reindex or {}).get("alertable"),
        "clusters": (reindex or {}).get("clusters"),
        "top_clusters": (reindex or {}).get("top_clusters", []),
        "knowledge": knowledge or None,
        "learned": knowledge.get("learned", 0) if knowledge else 0,
        "quality_failures": (quality or {}).get("failures", 0),
        "reindex_seconds": (reindex or {}).get("seconds"),
        "missing": [n for n, v in (("quality checks", quality), ("reindex job", reindex)) if v is None],
    }


def _per_service(reindex: dict[str, Any] | None, level: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for row in (reindex or {}).get("per_service_hour", []):
        if row["level"] == level:
            out[row["service"]] += row["records"]
    return dict(sorted(out.items()))


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#1d1d1f}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccd;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f8}.ok{color:#17803d}.bad{color:#b3261e}
.warn{color:#a15c00}code{font-size:.85rem}.n{text-align:right}"""


def _cell(v: Any, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape('' if v is None else str(v))}</td>"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets); every value is escaped."""
    day = escape(report["day"])
    q = report.get("quality")
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>CALI daily report {day}</title>"
             f"<style>{_CSS}</style><h1>CALI daily report, {day}</h1>",
             f"<p>Generated {escape(report['generated_at'])}. Records archived: {report.get('records')}; "
             f"ERROR/WARN: {report.get('alertable')}; clusters: {report.get('clusters')}; "
             f"knowledge entries learned: {report.get('learned')}.</p>"]
    if report.get("missing"):
        parts.append(f"<p class=bad>Missing: {escape(', '.join(report['missing']))}.</p>")
    parts.append("<h2>Data quality</h2>")
    if q:
        verdict = "<span class=ok>passed</span>" if q["success"] else \
            f"<span class=bad>failed ({q['failures']} check(s))</span>"
        parts.append(f"<p>{verdict}; {q['records']} records in {q['objects']} objects, {q['dlq']} dead-lettered "
                     f"(ratio {q['dlq_ratio']:.4%}).</p>")
        if report.get("quality_alert"):
            parts.append(f"<p>Slack alert: {escape(report['quality_alert'])}.</p>")
        rows = "".join(
            "<tr>" + _cell(c["check"]) + _cell(c["severity"])
            + _cell("ok" if c["success"] else "failed", "ok" if c["success"] else
                    ("bad" if c["severity"] == "critical" else "warn"))
            + _cell(c.get("unexpected_count"), "n") + _cell(c.get("observed_value"))
            + _cell(", ".join(str(s) for s in c.get("sample") or [])) + "</tr>" for c in q["checks"])
        parts.append("<table><tr><th>check</th><th>severity</th><th>result</th><th>unexpected</th>"
                     f"<th>observed</th><th>sample</th></tr>{rows}</table>")
    hours = report.get("errors_per_service_per_hour") or {}
    if hours:
        cols = [f"{h:02d}" for h in range(24)]
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + _cell(s) + "".join(_cell(h.get(c, ""), "n") for c in cols) + "</tr>"
                       for s, h in hours.items())
        parts.append(f"<h2>Errors per service per hour (UTC)</h2><table><tr><th>service</th>{head}</tr>{body}"
                     "</table>")
    top = report.get("top_clusters") or []
    if top:
        body = "".join(
            "<tr>" + _cell(c["count"], "n") + _cell(c["service"]) + _cell(c["level"]) + _cell(c["title"])
            + _cell(f"{c['first_seen']} .. {c['last_seen']}")
            + _cell(f"{(c.get('knowledge') or {}).get('action', '')} {(c.get('knowledge') or {}).get('entry', '')}")
            + "</tr>" for c in top)
        parts.append("<h2>Top clusters of the day</h2><table><tr><th>records</th><th>service</th><th>level</th>"
                     f"<th>cluster</th><th>seen</th><th>knowledge base</th></tr>{body}</table>")
    k = report.get("knowledge")
    if k:
        parts.append(f"<h2>Knowledge base</h2><p>Added {len(k.get('added', []))}, updated "
                     f"{len(k.get('updated', []))}, matching a known incident {len(k.get('known', []))}, day removed "
                     f"from {len(k.get('removed', []))} (through {escape(str(k.get('via', '')))}).</p>")
        if k.get("added"):
            parts.append("<p>New: " + ", ".join(f"<code>{escape(i)}</code>" for i in k["added"]) + "</p>")
    parts.append("</html>\n")
    return "\n".join(parts)
