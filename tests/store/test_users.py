"""Users: argon2 password hashes, slowed-down repeated failures, tokens stored only as hashes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from nettrial.exceptions import AuthenticationError, ConflictError, InputError, TooManyAttemptsError
from nettrial.store import audit
from nettrial.store.models import ApiToken, User
from nettrial.store.users import create_user, revoke_token, sign_in, token_user
from tests import factories


def test_passwords_are_stored_as_argon2id_hashes(db):
    factories.seed(db)
    with db.session(write=False) as session:
        user = session.scalar(select(User).where(User.username == "coordinator"))
    assert user.password_hash.startswith("$argon2id$")
    assert factories.password("coordinator") not in user.password_hash


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"role": "superuser"}, "role"), ({"password": "short"}, "password"), ({"username": "a b"}, "username")],
)
def test_bad_accounts_are_refused(db, changes, field):
    factories.seed(db)
    values = {"username": "newuser", "password": "long enough", "role": "monitor", "full_name": "N"} | changes
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, None, "test")
        create_user(session, **values)
    assert error.value.field == field


def test_usernames_are_unique(db):
    factories.seed(db)
    with pytest.raises(ConflictError), db.session() as session:
        audit.acting_as(session, None, "test")
        create_user(session, username="monitor", password="long enough", role="monitor", full_name="M")


def test_repeated_failures_slow_the_next_attempt_down(db):
    factories.seed(db)
    for _ in range(5):
        with pytest.raises(AuthenticationError) as error:
            sign_in(db, username="monitor", password="wrong password")
        assert not isinstance(error.value, TooManyAttemptsError)
    # After 5 failures in a row (committed, not rolled back), even the right password must wait.
    with pytest.raises(TooManyAttemptsError) as error:
        sign_in(db, username="monitor", password=factories.password("monitor"))
    assert error.value.retry_after == 1
    with db.session() as session:
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        session.execute(update(User).where(User.username == "monitor").values(last_failed_login=earlier))
    user, token, _ = sign_in(db, username="monitor", password=factories.password("monitor"))
    assert user.username == "monitor" and token
    with db.session(write=False) as session:
        assert session.scalar(select(User.failed_logins).where(User.username == "monitor")) == 0


def test_unknown_users_and_inactive_accounts_cannot_sign_in(db):
    factories.seed(db)
    with pytest.raises(AuthenticationError):
        sign_in(db, username="nobody", password="whatever it is")
    with db.session() as session:
        audit.acting_as(session, None, "admin")
        with audit.because(session, "left the study team"):
            session.scalar(select(User).where(User.username == "monitor")).active = False
    with pytest.raises(AuthenticationError):
        sign_in(db, username="monitor", password=factories.password("monitor"))


def test_tokens_are_stored_hashed_expire_and_can_be_revoked(db):
    factories.seed(db)
    _, token, expires = sign_in(db, username="monitor", password=factories.password("monitor"))
    assert expires > dt.datetime.now(dt.UTC)
    with db.session() as session:
        stored = session.scalar(select(ApiToken))
        assert stored.token_hash != token and len(stored.token_hash) == 64
        revoke_token(session, token)
        assert session.scalar(select(ApiToken)) is None
    with pytest.raises(AuthenticationError):
        token_user(db, token)
    _, token, _ = sign_in(db, username="monitor", password=factories.password("monitor"))
    assert token_user(db, token).username == "monitor"
    with db.session() as session:
        session.execute(update(User).values(active=False))
    with pytest.raises(AuthenticationError):
        token_user(db, token)
    with db.session() as session:
        session.execute(update(User).values(active=True))
    _, token, _ = sign_in(db, username="monitor", password=factories.password("monitor"))
    with db.session() as session:
        session.execute(update(ApiToken).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="expired"):
        token_user(db, token)


@pytest.mark.parametrize(("failures", "wait"), [(0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (15, 900), (40, 900)])
def test_the_wait_doubles_after_the_allowed_failures_and_is_capped(failures, wait):
    from nettrial.store.users import _delay

    assert _delay(failures) == wait
