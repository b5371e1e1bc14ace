"""The ``nettrial`` command: one sub-command per job.

Bad input exits with status 2 and one line naming the field and what is allowed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from nettrial import __version__
from nettrial.exceptions import InputError, NettrialError

EXIT_BAD_INPUT = 2


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nettrial's own errors into a one-line message and exit status 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NettrialError as error:  # bad input or a malformed data/protocol file
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def show(result: Any, as_json: bool) -> None:
    """A result that explains itself: its ``explain()`` text, or its ``to_dict()`` as JSON."""
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.explain())


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nettrial")
def main() -> None:
    """nettrial: staging, eligibility, safety and data management for NCT07279532."""


def parse_pairs(items: tuple[str, ...] | str | None, field: str) -> dict[str, str]:
    """``k=v`` pairs from repeated options or one comma-separated option."""
    if not items:
        return {}
    parts = items.split(",") if isinstance(items, str) else [p for item in items for p in item.split(",")]
    pairs = {}
    for part in filter(None, (p.strip() for p in parts)):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError(field, f"{part!r} is not name=value")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_date(text: str | None, field: str):
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


def out_option(what: str) -> Callable[..., Any]:
    """``--out``: the directory ``what`` is written to, passed as ``out_dir``."""
    return click.option(
        "--out",
        "out_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Directory the {what} is written to (created if missing).",
    )


def study_database(url: str | None):
    """The study database, refused (exit 2) when it does not exist or has no schema yet.

    For commands that read a study (a report, an export): a SQLite file that is not there is not created.
    """
    from sqlalchemy.engine import make_url

    from nettrial.config import get_settings
    from nettrial.store import migrate
    from nettrial.store.db import connect, normalise_url

    target = make_url(normalise_url(url or get_settings().database_url))
    missing = f"{target.render_as_string(hide_password=True)} holds no study"
    if target.get_backend_name() == "sqlite" and not Path(target.database or "").is_file():
        raise InputError("database_url", f"{missing} (no such file)")
    database = connect(url)
    if migrate.current(database) is None:
        raise InputError(
            "database_url", f"{missing}: create one with `nettrial db upgrade` or `nettrial demo`"
        )
    return database


# Sub-commands register themselves on `main` when their module is imported.
from nettrial.cli import clinical, design, export, report, safety, service, standards, survival  # noqa: E402, F401
