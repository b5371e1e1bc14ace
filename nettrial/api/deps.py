"""Dependencies shared by every route: the database, the protocol, who is asking, and may they.

One permission check, written once: ``requires(action, ...)`` reads the role matrix
(``roles.yaml``) and refuses with 403 before the route runs. Writes go through ``writing``, which
binds the actor (and the reason, when one is given) to the session for the audit trail, and commits
before the response is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from nettrial._yaml import load_yaml
from nettrial.exceptions import AuthenticationError, PermissionDeniedError
from nettrial.protocol.model import Protocol
from nettrial.store import audit
from nettrial.store.db import Database
from nettrial.store.users import token_user, token_user_on

SESSION_COOKIE = "nettrial_session"


@cache
def role_matrix() -> dict[str, frozenset[str]]:
    data = load_yaml((resources.files("nettrial.api") / "roles.yaml").read_text(encoding="utf-8"))
    actions = set(data["actions"])
    matrix = {role: frozenset(granted) for role, granted in data["roles"].items()}
    unknown = {a for granted in matrix.values() for a in granted} - actions
    if unknown:
        raise RuntimeError(f"roles.yaml grants undefined actions: {sorted(unknown)}")
    return matrix


def may(role: str, action: str) -> bool:
    return action in role_matrix().get(role, frozenset())


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user making this request."""

    user_id: int
    username: str
    full_name: str
    role: str
    language: str

    def may(self, action: str) -> bool:
        return may(self.role, action)

    @property
    def pseudonymised(self) -> bool:
        """Sees clinical data without names, record numbers or full dates of birth."""
        return not self.may("study.read") and self.may("study.read_pseudonymised")


# Where a route or dependency runs. FastAPI runs a plain ``def`` in the thread pool, and the hop there
# and back costs more than a short read (benchmarks/api_load.py: reads p95 62 -> 44 ms on SQLite).
# - ``async def``: work without I/O, the token lookup, and reads of one record or one participant's
#   records. They never wait for a lock (SQLite WAL readers; PostgreSQL MVCC) and their work is small
#   and bounded, so running them on the event loop holds it for about a millisecond.
# - ``def`` (thread pool): every write, which may wait for the study's write lock (store/db.py), and
#   reads of the whole study (lists, the audit trail), whose work grows with the study.
async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_protocol(request: Request) -> Protocol:
    return request.app.state.protocol


DbDep = Annotated[Database, Depends(get_db)]
ProtocolDep = Annotated[Protocol, Depends(get_protocol)]


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie
    raise AuthenticationError("sign in first (bearer token or session cookie)")


def _signed_in(request: Request, user: Any) -> Actor:
    actor = Actor(user.id, user.username, user.full_name, user.role, user.language)
    request.state.actor = actor
    return actor


async def current_actor(request: Request, db: DbDep) -> Actor:
    return _signed_in(request, token_user(db, _token(request)))


ActorDep = Annotated[Actor, Depends(current_actor)]


def _known(actions: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [a for a in actions if not any(a in granted for granted in role_matrix().values())]
    if unknown:
        raise RuntimeError(f"no role has {unknown}: add the action to roles.yaml")
    return actions


def _check(actor: Actor, actions: tuple[str, ...]) -> Actor:
    if not any(actor.may(a) for a in actions):
        raise PermissionDeniedError(actor.role, " or ".join(actions))
    return actor


def requires(*actions: str) -> Callable[[Actor], Actor]:
    """A dependency that lets the request through if the actor's role has any of ``actions``."""
    _known(actions)

    async def check(actor: ActorDep) -> Actor:
        return _check(actor, actions)

    check.actions = actions  # read by the route x role test
    return check


@dataclass(frozen=True, slots=True)
class Reading:
    """Who reads, and the connection their request reads on."""

    actor: Actor
    connection: Connection


def reads(*actions: str) -> Any:
    """``requires`` for an ``async`` read route, on one pooled connection for the whole request.

    The token lookup, the role check and the route's own reads share the connection (one pool
    checkout instead of two, the most frequent reads' cost; benchmarks/api_load.py). It is given back
    when the route returns, before the response is sent (``scope="function"``): held across that
    ``await``, slow clients could take the whole pool while the event loop waited for it.
    Only for ``async`` routes: a route in the thread pool would hold it while waiting for a thread.
    """
    _known(actions)

    async def on_one_connection(request: Request) -> AsyncIterator[Reading]:
        with request.app.state.db.connection() as connection:
            actor = _signed_in(request, token_user_on(connection, _token(request)))
            yield Reading(_check(actor, actions), connection)

    on_one_connection.actions = actions  # read by the route x role test
    return Annotated[Reading, Depends(on_one_connection, scope="function")]


Reader = Annotated[Actor, Depends(requires("study.read", "study.read_pseudonymised"))]
ParticipantReading = reads("study.read", "study.read_pseudonymised")
IdentifiedReader = Annotated[Actor, Depends(requires("study.read"))]
ScreeningWriter = Annotated[Actor, Depends(requires("screening.write"))]
Enroller = Annotated[Actor, Depends(requires("enrol"))]
ClinicalWriter = Annotated[Actor, Depends(requires("clinical.write"))]
AuditReader = Annotated[Actor, Depends(requires("audit.read"))]
UserManager = Annotated[Actor, Depends(requires("users.manage"))]


@contextmanager
def writing(db: Database, actor: Actor, reason: str | None = None) -> Iterator[Session]:
    """A write transaction on behalf of ``actor``, audited, committed when the block ends."""
    with db.session() as session:
        audit.acting_as(session, actor.user_id, actor.username)
        with audit.because(session, reason):
            yield session


@contextmanager
def reading(db: Database) -> Iterator[Session]:
    with db.session(write=False) as session:
        yield session
