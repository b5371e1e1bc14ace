"""PostgreSQL's pool: a connection idle past the threshold is pinged, and replaced if it was dropped.

A connection in steady use is not pinged: a ping at every checkout was two round trips of every read.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, text

from nettrial.store.db import _postgresql_engine

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


def _backend(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _drop(db, pid: int) -> None:
    """What a server restart or a firewall does to a pooled connection."""
    admin = create_engine(db.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def _counting_pings(engine) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or ping(dbapi_connection)
    return pings


def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(db):
    engine = _postgresql_engine(db.url, 0.0, pool_size=1, max_overflow=0)  # idle at once
    pings = _counting_pings(engine)
    first = _backend(engine)
    _drop(db, first)
    assert _backend(engine) != first  # pinged, found dead, replaced: the request never saw it
    assert len(pings) == 1
    engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(db):
    engine = _postgresql_engine(db.url, 3600.0, pool_size=1, max_overflow=0)
    pings = _counting_pings(engine)
    first = _backend(engine)
    assert [_backend(engine) for _ in range(5)] == [first] * 5
    assert pings == []
    # Why the ping exists: the same drop, not pinged, fails the next use.
    _drop(db, first)
    with pytest.raises(exc.OperationalError):
        _backend(engine)
    engine.dispose()
