"""Shared test fixtures: where the project's shared/ folder (spec, reference data) lives."""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest

# Cheaper argon2 memory in tests only (still argon2id); set before nettrial reads its settings.
os.environ.setdefault("NETTRIAL_ARGON2_MEMORY_KIB", "1024")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_shared(relative: str) -> Path:
    """A path under ../shared; in CI its absence fails the test, elsewhere it skips with the reason."""
    path = SHARED / relative
    if not path.exists():
        message = f"reference data {path} is absent (it ships beside the repository as ../shared)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


# --- study databases: every store and API test runs on SQLite and on PostgreSQL -----------------

POSTGRES_URL = os.environ.get(
    "NETTRIAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_POSTGRES_SKIPPED: list[str] = []


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(error).__name__})"


def _postgres_schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A fresh, migrated study database: a SQLite file, or a PostgreSQL schema of its own."""
    from sqlalchemy import create_engine, text

    from nettrial.store import migrate
    from nettrial.store.db import connect

    if request.param == "sqlite":
        database = connect(f"sqlite:///{tmp_path / 'study.db'}")
        migrate.upgrade(database)
        yield database
        database.dispose()
        return
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}: CI runs the PostgreSQL suite")
        _POSTGRES_SKIPPED.append(request.node.nodeid)
        pytest.skip(f"PostgreSQL suite not run: {problem}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    database = connect(_postgres_schema_url(schema))
    try:
        migrate.upgrade(database)
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _POSTGRES_SKIPPED:
        terminalreporter.write_line(
            f"PostgreSQL suite NOT run ({len(_POSTGRES_SKIPPED)} tests): {postgres_problem()}; "
            "the SQLite suite ran. CI (CI=true) fails instead of skipping.",
            yellow=True,
        )
