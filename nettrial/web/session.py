"""Web sessions: the session cookie (HttpOnly, SameSite=Lax), who is signed in, and CSRF tokens.

The session is a row of the same token table as the API's bearer tokens (kind ``session``). Every
form carries a CSRF token derived from the session token (SHA-256 of a label and the token): a page
of another site can neither read the HttpOnly cookie nor compute the token, so it cannot post a form
on the user's behalf. Every POST checks it before anything else.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from nettrial.api.deps import SESSION_COOKIE, Actor
from nettrial.exceptions import AuthenticationError, PermissionDeniedError
from nettrial.store.users import token_user


class SignInRequired(AuthenticationError):
    """The page needs a signed-in user: the handler redirects to the login page."""


def csrf_token(session_token: str) -> str:
    return hashlib.sha256(f"nettrial-csrf:{session_token}".encode()).hexdigest()


def page_actor(request: Request) -> Actor:
    """The signed-in user of this page request (redirect to the login page when there is none)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired("sign in")
    try:
        user = token_user(request.app.state.db, token)
        actor = Actor(user.id, user.username, user.full_name, user.role, user.language)
    except AuthenticationError:
        raise SignInRequired("session expired") from None
    request.state.actor = actor
    request.state.csrf = csrf_token(token)
    return actor


async def check_csrf(request: Request) -> None:
    """Refuse a form whose CSRF token does not belong to this session."""
    form = await request.form()
    token = request.cookies.get(SESSION_COOKIE, "")
    sent = str(form.get("csrf_token", ""))
    if not token or not hmac.compare_digest(sent, csrf_token(token)):
        raise PermissionDeniedError("anonymous", "submit a form without a valid CSRF token")


def require(actor: Actor, action: str) -> None:
    if not actor.may(action):
        raise PermissionDeniedError(actor.role, action)
