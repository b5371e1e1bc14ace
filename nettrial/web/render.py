"""Rendering a page: the Jinja2 templates with the user's language, role and CSRF token at hand."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from nettrial import __version__
from nettrial.web.i18n import LANGUAGES, translate


@cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(resources.files("nettrial.web") / "templates"))
    found.env.globals["version"] = __version__
    found.env.globals["languages"] = LANGUAGES
    return found


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``name`` for the request's user: ``_("key")`` translates, ``may("action")`` checks the role."""
    actor = getattr(request.state, "actor", None)
    language = actor.language if actor else request.cookies.get("nettrial_language", "en")
    values = {
        "request": request,
        "actor": actor,
        "language": language,
        "csrf": getattr(request.state, "csrf", ""),
        "_": lambda key, **kw: translate(key, language, **kw),
        "may": (lambda action: actor is not None and actor.may(action)),
        **context,
    }
    return templates().TemplateResponse(request, name, values, status_code=status)
