"""The last stage: read what the evaluation saved, summarise it and write the report files."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_reports(run_dir: Path, *, html: bool = True) -> dict[str, Any]:
    """Build the report of ``run_dir`` from its saved results, write ``report.json`` (and
    ``report.html``), return the report."""
    from edgesnn.report import build_report, write_report
    from edgesnn.results import load_results

    results = load_results(run_dir)
    rep = build_report(results)
    write_report(run_dir, rep)
    if html:
        from edgesnn.report_html import write_html

        write_html(results, rep)
    return rep
