"""The export command: the study in a standard form (SDTM, ODM, ClinicalTrials.gov results, FHIR), audited.

Every export is made as a named user of the study (``--as``): their role decides the form they may
take (``export.identified``, ``export.pseudonymised`` in the role matrix), and the audit trail records
who exported what, in which form, cut off when. The format modules are imported only when used: each
has its own dependencies, and one that is missing does not stop the others.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from nettrial.cli import main, out_option, reports_errors, show, study_database
from nettrial.cli.service import database_option
from nettrial.export import FORMATS, record_result


@main.command("export")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(list(FORMATS)))
@out_option("export")
@click.option("--cutoff", help="Data cut-off date, YYYY-MM-DD (default: today, UTC).")
@click.option(
    "--pseudonymised/--identified",
    "pseudonymised",
    default=None,
    help="The form of the export (default: identified when the user's role may take it, else pseudonymised).",
)
@click.option("--as", "username", required=True, help="The study user making the export (audited).")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@reports_errors
def export_command(
    format_name: str,
    out_dir: Path,
    cutoff: str | None,
    pseudonymised: bool | None,
    username: str,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Export the study as FORMAT into --out, as the user --as; the export is audited."""
    from nettrial.api.deps import may
    from nettrial.config import get_settings
    from nettrial.protocol.load import load_protocol
    from nettrial.store import exports

    db = study_database(database_url)
    user = _user(db, username)
    requested = None if pseudonymised is None else ("pseudonymised" if pseudonymised else "identified")
    form = exports.choose_form(user.role, lambda action: may(user.role, action), requested)
    cutoff_on = exports.cutoff_date(cutoff, dt.datetime.now(dt.UTC).date())
    export = _exporter(format_name)
    protocol = load_protocol(get_settings().protocol)
    with db.session(write=False) as session:
        result = export(session, protocol, out_dir, cutoff=cutoff_on, pseudonymised=form)
    with db.session() as session:
        record_result(session, result, user_id=user.id, username=user.username, root=out_dir)
    show(result, as_json)
    if not as_json:
        click.echo(f"recorded in the audit trail as {user.username} ({user.role})")


def _user(db, username: str):
    """The active study user ``username``; anyone else is bad input of ``--as``."""
    from sqlalchemy import select

    from nettrial.exceptions import InputError
    from nettrial.store.models import User

    with db.session(write=False) as session:
        user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise InputError("as", f"{username!r} is not an active user of this study")
    return user


def _exporter(name: str):
    """The format's ``export``; a format whose module is not installed is refused by name."""
    from nettrial.exceptions import InputError
    from nettrial.export import exporter

    try:
        return exporter(name)
    except ModuleNotFoundError as error:
        if error.name != FORMATS[name][0]:
            raise  # the format exists but something it needs does not: a real failure
        raise InputError("format", f"{name} export is not available in this installation") from None
