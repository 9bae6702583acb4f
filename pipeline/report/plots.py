"""The report's plots, drawn with matplotlib (Agg) and returned as inline SVG text.

Each function takes a small frame and returns ``<svg ...>`` markup, or ``None`` when there
is nothing to draw (the page then says so instead of showing an empty axis).
"""

from __future__ import annotations

import io
import re

import polars as pl

_PALETTE = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",      # text stays text: smaller, selectable, crisp
        "svg.hashsalt": "chargeline",  # stable ids, so equal data gives an equal file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e9ecef",
    })
    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    # RDF metadata only names the producer; dropping it keeps the page small and URL-free.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text[text.index("<svg"):]


def drift_per_charger(drift: pl.DataFrame, top: int = 8) -> str | None:
    """Start-time drift (charger minus backend, s) per session over time, per charger."""
    if drift.is_empty():
        return None
    plt = _pyplot()
    worst = (drift.group_by("charge_point_id").agg(pl.col("start_drift_s").abs().median().alias("m"))
             .sort(["m", "charge_point_id"], descending=[True, False]).head(top)["charge_point_id"].to_list())
    fig, ax = plt.subplots(figsize=(9, 3.6))
    rest = drift.filter(~pl.col("charge_point_id").is_in(worst))
    if rest.height:
        ax.scatter(rest["started_at"].to_list(), rest["start_drift_s"].to_list(), s=6,
                   color="#ced4da", label="other chargers")
    for i, cp in enumerate(worst):
        part = drift.filter(pl.col("charge_point_id") == cp).sort("started_at")
        ax.plot(part["started_at"].to_list(), part["start_drift_s"].to_list(), marker="o",
                markersize=3, linewidth=1, color=_PALETTE[i % len(_PALETTE)], label=cp)
    ax.axhline(0, color="#495057", linewidth=0.8)
    ax.set_ylabel("charger start − backend start (s)")
    ax.set_title("Start-time drift per charger")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.autofmt_xdate()
    return _svg(fig)


def ems_vs_sessions(intervals: pl.DataFrame, top_sites: int = 8) -> str | None:
    """EMS-measured EV energy against the sessions' energy, one point per site interval."""
    if intervals.is_empty():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sites = (intervals.group_by("site_id").agg(
                (pl.col("ems_ev_energy_kwh") - pl.col("sessions_energy_kwh")).abs().sum().alias("d"))
             .sort(["d", "site_id"], descending=[True, False])["site_id"].to_list())
    for i, site in enumerate(sites):
        part = intervals.filter(pl.col("site_id") == site)
        label, color = (site, _PALETTE[i % len(_PALETTE)]) if i < top_sites else (None, "#adb5bd")
        ax.scatter(part["ems_ev_energy_kwh"].to_list(), part["sessions_energy_kwh"].to_list(),
                   s=10, alpha=0.8, color=color, label=label)
    top = max(float(intervals["ems_ev_energy_kwh"].max() or 0),
              float(intervals["sessions_energy_kwh"].max() or 0), 1.0)
    ax.plot([0, top], [0, top], color="#495057", linewidth=0.8, linestyle="--", label="equal")
    ax.set_xlabel("EMS EV energy per interval (kWh)")
    ax.set_ylabel("sessions' energy in interval (kWh)")
    ax.set_title("Site meter vs sessions, per EMS interval")
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def money_by_check(by_check: pl.DataFrame) -> str | None:
    """Money at risk per check, largest on top."""
    if by_check.is_empty():
        return None
    plt = _pyplot()
    data = by_check.with_columns(pl.col("money_at_risk").fill_null(0)).sort("money_at_risk")
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * data.height + 1.2))
    ax.barh(data["check"].to_list(), data["money_at_risk"].to_list(), color="#d9480f")
    for y, v in enumerate(data["money_at_risk"].to_list()):
        ax.text(v, y, f" {v:,.2f}", va="center", fontsize=8)
    ax.set_xlabel("money at risk")
    ax.set_title("Money at risk by check")
    ax.grid(axis="y", visible=False)
    return _svg(fig)
