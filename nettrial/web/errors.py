"""Errors on pages: sign-in redirects, and the same error classes as the API rendered as a page."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from nettrial.exceptions import (
    AuthenticationError,
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from nettrial.web.render import render
from nettrial.web.session import SignInRequired

_STATUS = {PermissionDeniedError: (403, "error.forbidden"), NotFoundError: (404, "error.not_found"),
           InputError: (422, "error.invalid"), ConflictError: (409, "error.conflict")}  # fmt: skip


def page_error(request: Request, error: Exception) -> Response:
    """A redirect to the login page, or an error page a person can act on."""
    if isinstance(error, SignInRequired | AuthenticationError):
        return RedirectResponse(f"/login?next={quote(_return_to(request))}", status_code=303)
    for kind, (status, title) in _STATUS.items():
        if isinstance(error, kind):
            return render(request, "error.html", status=status, title_key=title, detail=str(error))
    return render(request, "error.html", status=500, title_key="error.internal", detail="")


def _return_to(request: Request) -> str:
    """Where to go after signing in again: the page itself, or for a form post (its address takes
    POST only) the page the form was on, when the browser says it was one of ours."""
    if request.method == "GET":
        return request.url.path
    came_from = urlsplit(request.headers.get("referer", ""))
    if came_from.netloc == request.url.netloc and came_from.path.startswith("/"):
        return came_from.path
    return "/"
