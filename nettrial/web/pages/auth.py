"""Sign in and out of the web interface, and switch its language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from nettrial.api.deps import SESSION_COOKIE
from nettrial.config import get_settings
from nettrial.exceptions import AuthenticationError, TooManyAttemptsError
from nettrial.store import audit
from nettrial.store.models import User
from nettrial.store.users import revoke_token, sign_in
from nettrial.web.i18n import LANGUAGES, translate
from nettrial.web.render import render
from nettrial.web.session import check_csrf, page_actor

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    """The sign-in form."""
    return render(request, "login.html", next=next if next.startswith("/") else "/")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
):
    """Check the password; on success set the session cookie (HttpOnly, SameSite=Lax)."""
    language = request.cookies.get("nettrial_language", "en")
    try:
        _, token, _ = sign_in(request.app.state.db, username=username, password=password, kind="session")
    except TooManyAttemptsError as error:
        message = translate("login.too_many", language, seconds=error.retry_after)
        return render(request, "login.html", status=429, error=message, username=username, next=next)
    except AuthenticationError:
        message = translate("login.failed", language)
        return render(request, "login.html", status=401, error=message, username=username, next=next)
    response = RedirectResponse(next if next.startswith("/") else "/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=get_settings().token_minutes * 60,
    )
    return response


@router.post("/logout")
async def logout(request: Request):
    """End the session."""
    await check_csrf(request)
    page_actor(request)
    with request.app.state.db.session() as session:
        revoke_token(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/language")
async def language(request: Request):
    """Switch the user's language (stored with the account, audited)."""
    await check_csrf(request)
    actor = page_actor(request)
    form = await request.form()
    chosen = str(form.get("language", "en"))
    if chosen not in LANGUAGES:
        chosen = "en"
    with request.app.state.db.session() as session:
        audit.acting_as(session, actor.user_id, actor.username)
        with audit.because(session, "language chosen by the user"):
            session.get(User, actor.user_id).language = chosen
    back = str(form.get("next", "/"))
    response = RedirectResponse(back if back.startswith("/") else "/", status_code=303)
    response.set_cookie("nettrial_language", chosen, samesite="lax")
    return response
