"""Standards coming in: a ClinicalTrials.gov record compared with the protocol file, and an ODM file
loaded into an empty study database (the way back of ``nettrial export odm``)."""

from __future__ import annotations

from pathlib import Path

import click

from nettrial.cli import main, reports_errors, show
from nettrial.cli.service import database_option


@main.group("ctgov")
def ctgov_group() -> None:
    """The study's ClinicalTrials.gov record."""


@ctgov_group.command("compare")
@click.argument("record", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--protocol", "source", help="Built-in protocol name or file (default: the settings').")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@reports_errors
def compare_command(record: Path, source: str | None, as_json: bool) -> None:
    """Compare a registry record (API v2 JSON) with the protocol file; exit 1 when they differ."""
    from nettrial.config import get_settings
    from nettrial.export.ctgov_compare import compare
    from nettrial.export.ctgov_record import load_record
    from nettrial.protocol.load import load_protocol

    comparison = compare(load_record(record), load_protocol(source or get_settings().protocol))
    show(comparison, as_json)
    raise SystemExit(0 if comparison.matches else 1)


@main.group("import")
def import_group() -> None:
    """Load a study from a standard form into an empty study database."""


@import_group.command("odm")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "username", default="system", show_default=True, help="Recorded as the importer.")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print what was loaded as JSON.")
@reports_errors
def import_odm_command(path: Path, username: str, database_url: str | None, as_json: bool) -> None:
    """Load an ODM 1.3.2 file written by `nettrial export odm` (identified) into an empty database."""
    from nettrial.exceptions import InputError
    from nettrial.export.odm_import import import_odm
    from nettrial.store import migrate
    from nettrial.store.db import connect

    if not path.is_file():
        raise InputError("path", f"{path} is not a file")
    db = connect(database_url)
    migrate.upgrade(db)
    show(import_odm(db, path, username=username), as_json)
