"""Users, passwords (argon2) and tokens: who may sign in, and who a token belongs to.

Repeated failed logins slow further attempts down: after ``login_failures_allowed`` failures in a
row, each attempt must wait twice as long as the last (capped), whatever the password.
Tokens are random; only their SHA-256 is stored, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row, bindparam, delete, select
from sqlalchemy.orm import Session

from nettrial.config import get_settings
from nettrial.exceptions import AuthenticationError, ConflictError, InputError, TooManyAttemptsError
from nettrial.store import audit
from nettrial.store.db import Database
from nettrial.store.models import ApiToken, Site, User, utcnow

ROLES = ("admin", "investigator", "coordinator", "monitor", "statistician")
_HASHER = PasswordHasher(
    time_cost=get_settings().argon2_time_cost, memory_cost=get_settings().argon2_memory_kib
)
# Verified against when the username is unknown, so that both cases take as long.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InputError("password", "must be at least 8 characters")
    return _HASHER.hash(password)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    full_name: str,
    site_code: str | None = None,
    language: str = "en",
) -> User:
    if role not in ROLES:
        raise InputError("role", f"unknown role {role!r}", allowed=ROLES)
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InputError("username", "letters, digits, '.', '-' and '_' only")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ConflictError("username", f"{username!r} is taken")
    site_id = None
    if site_code is not None:
        site = session.scalar(select(Site).where(Site.code == site_code))
        if site is None:
            raise InputError("site", f"unknown site {site_code!r}")
        site_id = site.id
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        full_name=full_name,
        site_id=site_id,
        language=language,
    )
    session.add(user)
    session.flush()
    return user


def _delay(failures: int) -> int:
    settings = get_settings()
    over = failures - settings.login_failures_allowed
    return 0 if over < 0 else min(2**over, settings.login_delay_cap_seconds)


def authenticate(session: Session, *, username: str, password: str) -> User:
    """The active user with this password; failures are counted and slow the next attempt down."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        raise AuthenticationError("unknown user or wrong password")
    now = utcnow()
    wait = _delay(user.failed_logins)
    if wait and user.last_failed_login and now < user.last_failed_login + dt.timedelta(seconds=wait):
        remaining = user.last_failed_login + dt.timedelta(seconds=wait) - now
        raise TooManyAttemptsError(max(1, int(remaining.total_seconds()) + 1))
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        user.last_failed_login = now
        session.flush()
        raise AuthenticationError("unknown user or wrong password") from None
    if user.failed_logins:
        user.failed_logins = 0
    if _HASHER.check_needs_rehash(user.password_hash):
        with audit.because(session, "password hash upgraded at login"):
            user.password_hash = _HASHER.hash(password)
            session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, *, kind: str = "bearer") -> tuple[str, dt.datetime]:
    """A new token for ``user`` (returned once, stored hashed) and when it expires."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(minutes=get_settings().token_minutes)
    session.add(ApiToken(token_hash=_digest(token), user_id=user.id, kind=kind, expires_at=expires))
    audit.record_event(session, entity="user_account", entity_id=str(user.id), what=f"login ({kind})")
    session.flush()
    return token, expires


# Built once: the statement every authenticated request runs.
_TOKEN_USER = (
    select(User.id, User.username, User.full_name, User.role, User.language, User.active, ApiToken.expires_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("digest"))
)


def token_user(db: Database, token: str) -> Row[Any]:
    """The user a bearer token or web session belongs to: id, username, full_name, role, language.

    Every request makes this lookup, so it is one Core query on a pooled connection, without an ORM
    session (a third of a read's cost otherwise; benchmarks/api_load.py).
    """
    with db.connection() as connection:
        return token_user_on(connection, token)


def token_user_on(connection: Connection, token: str) -> Row[Any]:
    """``token_user`` on a connection the caller holds (and reads on afterwards)."""
    found = connection.execute(_TOKEN_USER, {"digest": _digest(token)}).first()
    if found is None or found.expires_at <= utcnow() or not found.active:
        raise AuthenticationError("unknown or expired token: sign in again")
    return found


def revoke_token(session: Session, token: str) -> None:
    session.execute(delete(ApiToken).where(ApiToken.token_hash == _digest(token)))


def sign_in(
    db: Database, *, username: str, password: str, kind: str = "bearer"
) -> tuple[User, str, dt.datetime]:
    """Check the password and issue a token, in a transaction of its own.

    A failed attempt is committed (its counter slows the next attempt down) before the error is
    raised; a successful one is audited as a login event.
    """
    with db.session() as session:
        audit.acting_as(session, None, username)
        try:
            user = authenticate(session, username=username, password=password)
        except TooManyAttemptsError:
            raise
        except AuthenticationError as error:
            failure = error
        else:
            audit.acting_as(session, user.id, user.username)
            token, expires = issue_token(session, user, kind=kind)
            return user, token, expires
    raise failure
