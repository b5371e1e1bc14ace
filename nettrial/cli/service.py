"""Service commands: the study database, the server, users, the audit trail, backups.

Every command that touches the study database takes ``--database-url`` (default: the settings'
``database_url``, a SQLite file in the working directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nettrial.cli import emit_json, main, reports_errors
from nettrial.config import get_settings

database_option = click.option(
    "--database-url", help="Study database (default: NETTRIAL_DATABASE_URL or sqlite:///nettrial.db)."
)


def _database(url: str | None):
    from nettrial.store.db import connect

    return connect(url)


@main.group("db")
def db_group() -> None:
    """The study database's schema."""


@db_group.command("upgrade")
@database_option
@reports_errors
def db_upgrade(database_url: str | None) -> None:
    """Create or migrate the schema to the newest revision."""
    from nettrial.store import migrate

    click.echo(f"schema at revision {migrate.upgrade(_database(database_url))}")


@main.command("demo")
@database_option
@click.option("--seed", type=int, default=20261123, show_default=True, help="Seed of the synthetic study.")
@reports_errors
def demo_command(database_url: str | None, seed: int) -> None:
    """Create the synthetic demo study (an empty database is required)."""
    from nettrial.store import migrate
    from nettrial.store.demo import create_demo_study

    db = _database(database_url)
    migrate.upgrade(db)
    summary = create_demo_study(db, seed=seed)
    click.echo(summary.explain())


@main.command("serve")
@database_option
@click.option("--demo", is_flag=True, help="Create the demo study first if the database is empty.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Processes (default: one per core)."
)
@reports_errors
def serve_command(database_url: str | None, demo: bool, host: str, port: int, workers: int | None) -> None:
    """Run the study service (REST API under /api/v1, OpenAPI at /openapi.json)."""
    import os

    import uvicorn

    from nettrial.store import migrate

    db = _database(database_url)
    migrate.upgrade(db)
    if demo:
        from nettrial.store.demo import create_demo_study, is_empty

        if is_empty(db):
            click.echo(create_demo_study(db).explain())
        else:
            click.echo("the database already holds a study; demo data not added")
        click.echo("demo users (demo mode only): " + ", ".join(f"{r} / {r}-demo" for r in DEMO_ROLES))
    os.environ["NETTRIAL_DATABASE_URL"] = db.url
    workers = workers or get_settings().workers
    click.echo(f"serving on http://{host}:{port} with {workers} worker process(es) (API /api/v1, docs /docs)")
    uvicorn.run("nettrial.api.app:app", host=host, port=port, workers=workers, log_level="info")


DEMO_ROLES = ("admin", "investigator", "coordinator", "monitor", "statistician")


@main.group("user")
def user_group() -> None:
    """Accounts of the study service."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(DEMO_ROLES))
@click.option("--full-name", required=True)
@click.option("--site", "site_code", help="Site code of the user's hospital.")
@click.option("--language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@database_option
@reports_errors
def user_add(username, role, full_name, site_code, language, password_stdin, database_url) -> None:
    """Create an account (the password is asked for, never given on the command line)."""
    from nettrial.store import audit
    from nettrial.store.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    db = _database(database_url)
    with db.session() as session:
        audit.acting_as(session, None, "cli")
        user = create_user(
            session,
            username=username,
            password=password,
            role=role,
            full_name=full_name,
            site_code=site_code,
            language=language,
        )
        click.echo(f"user {user.username} ({user.role}) created")


@main.group("site")
def site_group() -> None:
    """Sites (hospitals) of the study."""


@site_group.command("add")
@click.argument("code")
@click.argument("name")
@database_option
@reports_errors
def site_add(code: str, name: str, database_url: str | None) -> None:
    """Add a site."""
    from nettrial.store import audit
    from nettrial.store.screening import create_site

    with _database(database_url).session() as session:
        audit.acting_as(session, None, "cli")
        create_site(session, code=code, name=name)
    click.echo(f"site {code} added")


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@database_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def audit_verify(database_url: str | None, as_json: bool) -> None:
    """Check the hash chain; exit 1 and name the first broken entry after any tampering."""
    from dataclasses import asdict

    from nettrial.store.audit import verify_chain

    with _database(database_url).session(write=False) as session:
        report = verify_chain(session)
    if as_json:
        emit_json(asdict(report) | {"ok": report.ok})
    elif report.ok:
        click.echo(f"audit chain intact: {report.entries} entries")
    else:
        click.echo(f"audit chain broken at entry {report.broken_at}: {report.problem}")
    sys.exit(0 if report.ok else 1)


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@database_option
@reports_errors
def backup_command(file: Path, database_url: str | None) -> None:
    """Write the whole study database to FILE (.json or .json.gz)."""
    from nettrial.store.backup import backup

    counts = backup(_database(database_url), file)
    click.echo(f"{sum(counts.values())} rows in {len(counts)} tables written to {file}")


@main.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@database_option
@reports_errors
def restore_command(file: Path, database_url: str | None) -> None:
    """Restore a backup into an empty database; the audit chain is verified afterwards."""
    from nettrial.store.audit import verify_chain
    from nettrial.store.backup import restore

    db = _database(database_url)
    counts = restore(db, file)
    with db.session(write=False) as session:
        report = verify_chain(session)
    click.echo(f"{sum(counts.values())} rows restored; audit chain {'intact' if report.ok else 'BROKEN'}")
    sys.exit(0 if report.ok else 1)
