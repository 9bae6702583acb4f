"""Render ``ReportData`` as one self-contained HTML page and write it.

No external resource of any kind (no CDN, fonts, scripts or images by URL): CSS and the
few lines of script are inline and plots are inline SVG, so the file opens offline and
can be mailed as is. Every value is escaped.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.report import plots
from pipeline.report.data import ReportData, gather

REPORT_NAME = "review_report.html"

CSS = """
:root { --fg:#212529; --muted:#6c757d; --line:#dee2e6; --bg:#f8f9fa; --accent:#1f6feb;
        --err:#c92a2a; --warn:#e67700; --info:#1971c2; --ok:#2b8a3e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0; background: #fff; }
header { background: #102a43; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #bcccdc; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 32px; z-index: 2; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 8px 32px 48px; max-width: 1400px; }
section { margin: 28px 0; }
h2 { font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
        min-width: 170px; }
.card .v { font-size: 24px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 20px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); position: sticky; top: 37px; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.sev { display: inline-block; padding: 0 6px; border-radius: 4px; color: #fff; font-size: 12px; }
.sev-error { background: var(--err); } .sev-warn { background: var(--warn); }
.sev-info { background: var(--info); }
.st { font-size: 12px; padding: 0 6px; border-radius: 4px; border: 1px solid var(--line); }
.st-open { background: #fff3bf; } .st-confirmed { background: #ffe3e3; }
.st-dismissed { background: #e9ecef; } .st-resolved { background: #d3f9d8; }
.gone { color: var(--muted); font-style: italic; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
details[open] { background: #fcfcfd; }
details:target { outline: 2px solid var(--accent); }
summary { cursor: pointer; }
pre { background: var(--bg); padding: 8px; overflow-x: auto; font-size: 12px; margin: 4px 0; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 12px; }
.kv div:nth-child(odd) { color: var(--muted); }
.muted { color: var(--muted); }
.pass { color: var(--ok); font-weight: 600; } .fail { color: var(--err); font-weight: 600; }
"""

# Opening a drill-down when its anchor is followed (queue links, shared URLs).
SCRIPT = """
function openTarget() {
  var id = decodeURIComponent(location.hash.slice(1)); if (!id) return;
  var el = document.getElementById(id); if (el && el.tagName === 'DETAILS') el.open = true;
}
window.addEventListener('hashchange', openTarget); window.addEventListener('load', openTarget);
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return html.escape(", ".join(str(v) for v in value))
    return html.escape(str(value))


def anchor(review_key: str) -> str:
    return "item-" + re.sub(r"[^A-Za-z0-9_-]", "-", review_key)


def _table(frame: pl.DataFrame, numeric: tuple[str, ...] = (), table_id: str | None = None) -> str:
    if frame.is_empty():
        return '<p class="muted">Nothing to show.</p>'
    head = "".join(f'<th class="{"n" if c in numeric else ""}">{_e(c)}</th>' for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if c in numeric else ""}">{_fmt(c, v)}</td>'
                         for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
        for row in frame.iter_rows())
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(column: str, value: Any) -> str:
    if column.endswith(("rate", "coverage")) and isinstance(value, float):
        return f"{value:.1%}"
    if column == "energy_kwh" and isinstance(value, float):
        return f"{value:,.1f}"
    return _e(value)


def _sev(sev: str | None) -> str:
    return f'<span class="sev sev-{_e(sev)}">{_e(sev)}</span>' if sev else ""


def _cards(data: ReportData) -> str:
    t = data.totals
    cur = "/".join(t["currencies"]) or ""
    cards = [
        ("sessions", "–" if t["sessions"] is None else f"{t['sessions']:,}"),
        ("findings", f"{t['findings']:,}"),
        ("review items", f"{t['review_items']:,}"),
        ("open items", f"{t['open_items']:,}"),
        (f"money at risk {cur}".strip(), f"{t['money_at_risk']:,.2f}"),
        (f"open at risk {cur}".strip(), f"{t['open_money_at_risk']:,.2f}"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in cards) + "</div>"


def _figure(fig_id: str, svg: str | None, caption: str, empty: str) -> str:
    body = svg if svg else f'<p class="muted">{_e(empty)}</p>'
    return f'<figure id="{fig_id}">{body}<figcaption>{_e(caption)}</figcaption></figure>'


def _queue(data: ReportData) -> str:
    if data.queue.is_empty():
        return '<p class="muted">The review queue is empty.</p>'
    rows = []
    for i, r in enumerate(data.queue.iter_rows(named=True), start=1):
        gone = "" if r["finding_present"] in (True, None) else ' <span class="gone">(gone)</span>'
        money = "" if r["money_at_risk"] is None else f"{float(r['money_at_risk']):,.2f}"
        rows.append(
            f'<tr class="queue-row"><td class="n">{i}</td>'
            f'<td><a href="#{anchor(r["review_key"])}">{_e(r["review_key"])}</a>{gone}</td>'
            f'<td><span class="st st-{_e(r["status"])}">{_e(r["status"])}</span></td>'
            f'<td>{_sev(r["max_severity"])}</td><td class="n">{money}</td><td>{_e(r["currency"])}</td>'
            f'<td>{_e(r["checks"])}</td><td>{_e(r["site_id"])}</td><td>{_e(r["site_type"])}</td>'
            f'<td>{_e(r["charge_point_id"])}</td><td>{_e(r["started_at"])}</td>'
            f'<td>{_e(r["reviewer"])}</td><td>{_e(r["note"])}</td></tr>')
    head = ("<tr><th class='n'>#</th><th>key</th><th>status</th><th>severity</th>"
            "<th class='n'>at risk</th><th>cur</th><th>checks</th><th>site</th><th>type</th>"
            "<th>charger</th><th>started (UTC)</th><th>reviewer</th><th>note</th></tr>")
    more = ""
    if data.queue_total > data.queue.height:
        more = (f'<p class="muted">Showing the top {data.queue.height:,} of {data.queue_total:,} items; '
                "<code>chargeline review export --out queue.csv</code> writes them all.</p>")
    return (f'<table id="queue-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>{more}')


def _json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _e(value)
    return _e(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _drilldown(d) -> str:
    it = d.item
    findings = "".join(
        f'<div class="finding"><p>{_sev(f["severity"])} <b>{_e(f["check"])}</b> '
        f'{"" if f["money_at_risk"] is None else _e(float(f["money_at_risk"]))} {_e(f["currency"])} '
        f'<span class="muted">flag {_e(f["flag_id"])}</span><br>{_e(f["explanation"])}</p>'
        f'<pre>{_json(f["evidence"])}</pre></div>' for f in d.findings) or '<p class="muted">No current finding.</p>'
    lineage = ""
    if d.lineage:
        kv = "".join(f"<div>{_e(k)}</div><div>{_e(v)}</div>" for k, v in d.lineage.items() if v is not None)
        lineage = f'<h4>Lineage</h4><div class="kv lineage">{kv}</div>'
    elif it["session_key"]:
        lineage = '<p class="muted">No lineage row for this session.</p>'
    decision = (f'<p>Status <span class="st st-{_e(it["status"])}">{_e(it["status"])}</span>'
                f'{" by " + _e(it["reviewer"]) if it["reviewer"] else ""}'
                f'{" on " + _e(it["decided_at"]) if it["decided_at"] else ""}'
                f'{" — " + _e(it["note"]) if it["note"] else ""}</p>')
    money = "" if it["money_at_risk"] is None else f"{float(it['money_at_risk']):,.2f} {_e(it['currency'])}"
    return (f'<details id="{anchor(it["review_key"])}" class="drilldown"><summary>'
            f'{_sev(it["max_severity"])} <b>{_e(it["review_key"])}</b> · {money} · {_e(it["checks"])} · '
            f'{_e(it["site_id"])} {_e(it["charge_point_id"])}</summary>'
            f'{decision}<h4>Findings</h4>{findings}{lineage}</details>')


def _quality(data: ReportData) -> str:
    gx = data.gx
    if not gx:
        return '<p class="muted">Data quality suites were not run for this report.</p>'
    rows = "".join(
        f'<tr><td>{_e(s["suite"])}</td><td class="{"pass" if s["success"] else "fail"}">'
        f'{"pass" if s["success"] else "FAIL"}</td><td class="n">{s["evaluated"]}</td>'
        f'<td class="n">{s["failed"]}</td><td>{_e(", ".join(s["failed_expectations"]))}</td></tr>'
        for s in gx.get("suites", []))
    link = ""
    if gx.get("docs_index"):
        link = f'<p><a id="data-docs-link" href="{_e(gx["docs_index"])}">Great Expectations Data Docs</a></p>'
    return (f"{link}<table><thead><tr><th>suite</th><th>result</th><th class='n'>expectations</th>"
            f"<th class='n'>failed</th><th>failed expectations</th></tr></thead><tbody>{rows}</tbody></table>")


def render(data: ReportData) -> str:
    """The whole page as text."""
    money_cols = ("findings", "sessions", "errors", "money_at_risk", "energy_kwh", "revenue_excl_vat",
                  "reconciliation_rate")
    drill = "".join(_drilldown(d) for d in data.drilldowns) or '<p class="muted">Nothing flagged.</p>'
    if data.drilldowns and len(data.drilldowns) < data.queue_total:
        drill += (f'<p class="muted">Drill-down for the top {len(data.drilldowns):,} items; '
                  "<code>chargeline review show KEY</code> shows any other.</p>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in data.notes)
    sections = [
        ("summary", "Totals", _cards(data)),
        ("by-check", "Money at risk by check", _table(data.by_check, money_cols)),
        ("by-site", "By site", _table(data.by_site, money_cols)),
        ("by-site-type", "By site type", _table(data.by_site_type, money_cols)),
        ("plots", "Plots", '<div class="grid">'
         + _figure("plot-money", plots.money_by_check(data.by_check),
                   "Sum of money at risk over each check's findings.", "No findings.")
         + _figure("plot-ems", plots.ems_vs_sessions(data.site_intervals),
                   "Points off the dashed line are intervals where the site meter and the sessions disagree.",
                   "No EMS intervals.")
         + "</div>"
         + _figure("plot-drift", plots.drift_per_charger(data.drift),
                   "Charger start minus backend start per session; the chargers with the largest median drift are coloured.",
                   "No session seen by both charger and backend.")),
        ("queue", "Review queue, most money at risk first", _queue(data)),
        ("sessions", "Drill-down per item", drill),
        ("quality", "Data quality", _quality(data)),
    ]
    if notes:
        sections.append(("notes", "Notes", f"<ul>{notes}</ul>"))
    nav = "".join(f'<a href="#{sid}">{_e(title.split(",")[0])}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    stamp = data.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>chargeline review report {stamp}</title><style>{CSS}</style></head><body>"
        f"<header><h1>chargeline · settlement review</h1><p>Generated {stamp}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main><script>{SCRIPT}</script></body></html>")


def write_report(conn: duckdb.DuckDBPyConnection, out_dir: str | Path, options: dict | None = None,
                 gx: dict[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/review_report.html`` from the warehouse and return its path.

    ``gx`` is the summary ``pipeline.gx.run_suites(...).to_dict()`` returns; its Data Docs
    are linked relative to the report, so keep both in ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if gx and gx.get("docs_index"):
        docs = Path(gx["docs_index"])
        try:
            gx = {**gx, "docs_index": docs.resolve().relative_to(out_dir.resolve()).as_posix()}
        except ValueError:
            gx = {**gx, "docs_index": docs.resolve().as_uri()}
    path = out_dir / REPORT_NAME
    path.write_text(render(gather(conn, options, gx=gx)), encoding="utf-8")
    return path


