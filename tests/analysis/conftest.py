"""The demo study, created once per test session, for tests that analyse a whole study."""

from __future__ import annotations

import datetime as dt

import pytest

from nettrial.store import migrate
from nettrial.store.db import connect
from nettrial.store.demo import create_demo_study

# The demo's data cut-off: fixed, so that every derived figure is repeatable.
DEMO_CUTOFF = dt.date(2026, 11, 23)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """A SQLite study database holding the demo study (seed fixed) cut off at ``DEMO_CUTOFF``.

    Shared by the session: tests must only read it.
    """
    database = connect(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    migrate.upgrade(database)
    create_demo_study(database, today=DEMO_CUTOFF)
    yield database
    database.dispose()
