"""The study report command: HTML and PDF with tables and figures, from the study database."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import click

from nettrial.cli import emit_json, main, out_option, parse_date, reports_errors, study_database
from nettrial.cli.service import database_option
from nettrial.config import get_settings


@main.command("report")
@out_option("report")
@click.option("--cutoff", help="Data cut-off date, YYYY-MM-DD (default: today).")
@click.option(
    "--protocol", "source", help="Built-in protocol name or file (default: the settings' protocol)."
)
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@reports_errors
def report_command(out_dir: Path, cutoff: str | None, source: str | None, database_url, as_json) -> None:
    """Write the study report (report.html, report.pdf, figures/) for a data cut-off."""
    from nettrial.analysis.report import build_report
    from nettrial.protocol.load import load_protocol

    started = time.perf_counter()
    cutoff_date = parse_date(cutoff, "cutoff") or date.today()
    if not as_json:
        # Said first, so that a report cut off at "today" says which day that was.
        click.echo(f"data cut-off {cutoff_date.isoformat()}{'' if cutoff else ' (today)'}")
    result = build_report(
        study_database(database_url),
        load_protocol(source or get_settings().protocol),
        out_dir,
        cutoff=cutoff_date,
    )
    seconds = time.perf_counter() - started
    if as_json:
        emit_json(result.to_dict() | {"seconds": round(seconds, 2)})
        return
    for path in result.files:
        click.echo(f"wrote {path}")
    click.echo(f"{len(result.files)} files in {seconds:.1f} s")
