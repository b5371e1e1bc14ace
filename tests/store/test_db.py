"""The database connection.

PostgreSQL's pool: a connection idle past the threshold is pinged, and replaced if it was dropped; one
in steady use is not (a ping at every checkout was two round trips of every read). SQLite's writers
take turns on a lock file, across threads and processes, instead of retrying from the busy handler.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, exc, make_url, text

from nettrial.store.db import _postgresql_engine, connect

POSTGRESQL = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


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


@POSTGRESQL
def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(db):
    engine = _postgresql_engine(db.url, 0.0, pool_size=1, max_overflow=0)  # idle at once
    pings = _counting_pings(engine)
    first = _backend(engine)
    _drop(db, first)
    assert _backend(engine) != first  # pinged, found dead, replaced: the request never saw it
    assert len(pings) == 1
    engine.dispose()


@POSTGRESQL
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


_HOLD_THE_TURN = """
import fcntl, sys, time
with open(sys.argv[1], "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _other_process_holds_the_turn(db, seconds: float) -> subprocess.Popen:
    path = f"{make_url(db.url).database}-writelock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_TURN, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def _write(db) -> float:
    """Seconds a write transaction took to get in and commit."""
    started = time.monotonic()
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS turns (n INTEGER)"))
        session.execute(text("INSERT INTO turns VALUES (1)"))
    return time.monotonic() - started


def test_a_sqlite_writer_waits_for_another_process_s_turn_and_goes_as_soon_as_it_ends(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'study.db'}")
    holder = _other_process_holds_the_turn(db, 0.6)
    waited = _write(db)
    assert holder.wait(timeout=10) == 0
    assert 0.4 < waited < 2.0  # waited for the other's turn, not for a busy-handler back-off


def test_a_turn_held_by_a_process_killed_mid_write_is_released_with_it(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'study.db'}")
    holder = _other_process_holds_the_turn(db, 60)
    killer = threading.Timer(0.3, holder.kill)  # kill -9 while it holds the turn
    killer.start()
    assert _write(db) < 5
    holder.wait(timeout=10)
    killer.join()


def test_threads_take_turns_and_a_write_inside_another_on_the_same_thread_goes_in_its_turn(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'study.db'}")
    inside: list[int] = []
    with db.session():
        with db.session() as nested:  # covered by the outer turn: no deadlock
            nested.execute(text("CREATE TABLE turns (n INTEGER)"))
        other = threading.Thread(target=lambda: inside.append(_write(db) > 0))
        other.start()
        other.join(timeout=0.3)
        assert other.is_alive() and not inside  # the other thread waits for this turn
    other.join(timeout=10)
    assert inside == [True]
