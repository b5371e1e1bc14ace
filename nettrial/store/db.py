"""The database connection: one engine per URL, sessions for reading and for writing.

SQLite (the embedded default) runs with foreign keys on, write-ahead logging and full sync, and
every writing transaction starts with ``BEGIN IMMEDIATE`` so that writers queue instead of failing
half-way (enrolment and the audit chain rely on it). PostgreSQL (psycopg 3) serialises the writers
that need it with a transaction-level advisory lock (``lock_writes``).
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from nettrial.config import get_settings

# Any constant identifies the lock; this one spells "NET".
_WRITE_LOCK = 0x4E4554


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is off, so that BEGIN is ours (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgresql_engine(url: str, ping_idle_seconds: float, **options: Any) -> Engine:
    """psycopg 3 on a pool that pings a connection only when it has been idle a while.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout; this is its documented pessimistic
    recipe with a threshold: a ``DisconnectionError`` from the checkout hook makes the pool discard
    the connection and take a fresh one.
    """
    engine = create_engine(url, **options)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= ping_idle_seconds:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection dropped: {error}") from error

    return engine


class _WriteTurns:
    """Writers to one SQLite file take turns, across the threads and the processes of the service.

    SQLite lets one writer in and makes the others retry from its busy handler, which sleeps up to
    100 ms between tries: under load a writer could wait over a second while later ones went first
    (benchmarks/api_load.py, 2 worker processes: write p99 1.1-1.5 s). Waiting on a lock file instead,
    the kernel wakes the next writer as soon as the last one is done. A lock held by a process that
    dies is released with it. A write session opened inside another on the same thread is already
    covered by the outer one's turn.
    """

    def __init__(self, path: str | None):
        self._path = None if path in (None, "", ":memory:") else f"{path}-writelock"
        self._thread_lock = threading.Lock()
        self._depth = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        if depth:
            self._depth.value = depth + 1
            try:
                yield
            finally:
                self._depth.value = depth
            return
        with self._thread_lock, open(self._path, "a") if self._path else nullcontext() as handle:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            self._depth.value = 1
            try:
                yield
            finally:
                self._depth.value = 0


@dataclass(frozen=True)
class Database:
    """Engines and session factories for one database URL."""

    url: str
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    _write_turns: _WriteTurns | None = field(default=None, repr=False, compare=False)

    @property
    def engine(self) -> Engine:
        return self.writer.kw["bind"]

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        factory = self.writer if write else self.reader
        turn = self._write_turns.turn() if write and self._write_turns else nullcontext()
        with turn, factory() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection for a read without an ORM session (the per-request token lookup)."""
        with self.reader.kw["bind"].connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.reader.kw["bind"].dispose()
        self.writer.kw["bind"].dispose()


def connect(url: str | None = None) -> Database:
    """A ``Database`` for ``url`` (default: the settings' ``database_url``)."""
    url = normalise_url(url or get_settings().database_url)
    if url.startswith("sqlite"):
        reader, writer = _sqlite_engine(url, immediate=False), _sqlite_engine(url, immediate=True)
    else:
        ping = get_settings().pool_ping_idle_seconds
        writer = _postgresql_engine(url, ping, pool_size=10, max_overflow=40)
        # Reads in autocommit, on a pool of their own. Under READ COMMITTED every statement takes its
        # own snapshot anyway, so a read transaction would add only its BEGIN and COMMIT round trips
        # (a fifth of a read's cost), and switching a shared connection to autocommit and back at each
        # checkout cost half as much again as the query itself (75 us on 150). SQLite's reads keep
        # their transaction: there it is one snapshot for all the statements of a read.
        reader = _postgresql_engine(url, ping, pool_size=10, max_overflow=20, isolation_level="AUTOCOMMIT")
    return Database(
        url,
        sessionmaker(bind=reader, expire_on_commit=False),
        sessionmaker(bind=writer, expire_on_commit=False),
        _WriteTurns(make_url(url).database) if url.startswith("sqlite") else None,
    )


@cache
def database(url: str | None = None) -> Database:
    """The process-wide ``Database`` for a URL."""
    return connect(url)


def lock_writes(session: Session) -> None:
    """Serialise this transaction with every other writer that takes the lock (PostgreSQL).

    SQLite needs nothing: ``BEGIN IMMEDIATE`` already holds the database's single write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Keyed by schema too: studies (and test runs) in other schemas of the database don't wait.
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": _WRITE_LOCK}
        )
