"""Backup and restore as one portable JSON document (SQLite to PostgreSQL and back).

A backup is read in one consistent snapshot; a restore goes into an empty database at the same
schema revision, table by table in foreign-key order, and gives back identical rows, so the audit
chain of the restored database verifies as the original did.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Date, func, insert, select, text

from nettrial import __version__
from nettrial.exceptions import ConflictError, InputError
from nettrial.store import migrate
from nettrial.store.db import Database
from nettrial.store.models import Base, UTCDateTime

FORMAT = "nettrial-backup"
FORMAT_VERSION = 1


def _open(path: Path, mode: str):
    return (
        gzip.open(path, mode + "t", encoding="utf-8")
        if path.suffix == ".gz"
        else path.open(mode, encoding="utf-8")
    )


def plain_value(value: Any) -> Any:
    """A column value as a backup document holds it (dates in ISO 8601)."""
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def backup(db: Database, path: Path) -> dict[str, int]:
    """Write every table to ``path`` (``.json`` or ``.json.gz``); return the row count per table."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_revision": migrate.current(db),
        "software_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": {},
    }
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            document["tables"][table.name] = {
                "columns": [c.name for c in table.columns],
                "rows": [[plain_value(v) for v in row] for row in rows],
            }
    with _open(path, "w") as handle:
        json.dump(document, handle, ensure_ascii=False)
    return {name: len(t["rows"]) for name, t in document["tables"].items()}


def _typed(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column.type, Date):
        return dt.date.fromisoformat(value)
    return value


def restore(db: Database, path: Path) -> dict[str, int]:
    """Load a backup into an empty database (migrated to the backup's revision first)."""
    with _open(path, "r") as handle:
        document = json.load(handle)
    if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
        raise InputError("file", f"{path} is not a nettrial backup (format {FORMAT} {FORMAT_VERSION})")
    migrate.upgrade(db, document["schema_revision"])
    counts: dict[str, int] = {}
    with db.session() as session:
        connection = session.connection()
        for table in Base.metadata.sorted_tables:
            if connection.execute(select(func.count()).select_from(table)).scalar():
                raise ConflictError("database", f"restore needs an empty database; {table.name} has rows")
        for table in Base.metadata.sorted_tables:
            saved = document["tables"].get(table.name, {"columns": [], "rows": []})
            columns = [table.c[name] for name in saved["columns"]]
            rows = [
                {c.name: _typed(c, v) for c, v in zip(columns, row, strict=True)} for row in saved["rows"]
            ]
            if rows:
                connection.execute(insert(table), rows)
            counts[table.name] = len(rows)
            if connection.dialect.name == "postgresql" and rows and "id" in table.c:
                # Serial columns continue after the restored ids.
                sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
                connection.execute(text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table.name}))"))
    return counts
