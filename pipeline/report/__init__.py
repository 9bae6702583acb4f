"""The nightly review report: one self-contained HTML file (inline CSS, inline SVG plots).

Belongs here: gathering the report's data from the warehouse (``data``), drawing its plots
(``plots``) and rendering the page (``html``). ``write_report(conn, out_dir)`` is the entry
point; it works on any warehouse, empty or partly built.
"""

from pipeline.report.html import REPORT_NAME, write_report

__all__ = ["REPORT_NAME", "write_report"]
