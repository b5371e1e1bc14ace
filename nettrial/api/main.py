"""The study service: ``build_app`` wires the database, the protocol, the routers and the one error handler.

Errors are JSON a coordinator can act on: ``{"error": {"status", "code", "field", "message",
"allowed"}}``, with the field path of the input that was refused. Nothing is written when a request
fails: each write is one transaction, rolled back on any error. Request bodies and personal data are
never logged; the log line of a failure names the route and the error type only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nettrial import __version__
from nettrial.exceptions import (
    AuthenticationError,
    ConflictError,
    InputError,
    NettrialError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from nettrial.protocol.load import load_protocol
from nettrial.protocol.model import Protocol
from nettrial.store.db import Database, database

log = logging.getLogger("nettrial.api")
API = "/api/v1"


def _error(
    status: int, code: str, message: str, field: str | None = None, allowed: Any = None, **headers: str
):
    body = {"status": status, "code": code, "field": field, "message": message}
    if allowed:
        body["allowed"] = list(allowed) if not isinstance(allowed, str) else [allowed]
    return JSONResponse({"error": body}, status_code=status, headers=headers or None)


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _is_page(request: Request) -> bool:
    return not (request.url.path.startswith(API) or request.url.path in ("/healthz", "/openapi.json"))


async def _nettrial_error(request: Request, error: Exception) -> Response:
    if _is_page(request):
        from nettrial.web.errors import page_error

        return page_error(request, error)
    if isinstance(error, InputError):
        return _error(422, "invalid", error.detail, error.field, error.allowed)
    if isinstance(error, NotFoundError):
        return _error(404, "not_found", str(error), error.entity)
    if isinstance(error, ConflictError):
        return _error(409, "conflict", error.detail, error.field)
    if isinstance(error, TooManyAttemptsError):
        return _error(
            429, "too_many_attempts", str(error), "password", **{"Retry-After": str(error.retry_after)}
        )
    if isinstance(error, AuthenticationError):
        return _error(401, "unauthenticated", str(error), **{"WWW-Authenticate": "Bearer"})
    if isinstance(error, PermissionDeniedError):
        return _error(403, "forbidden", str(error))
    log.error("%s %s failed: %s", request.method, request.url.path, type(error).__name__)
    return _error(500, "internal", "the service could not complete the request")


async def _validation_error(request: Request, error: RequestValidationError) -> Response:
    problems = error.errors()
    first = problems[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    field = _field_path(tuple(first.get("loc", ())))
    if _is_page(request):  # e.g. /queries/abc/answer: a page, not JSON, for a person
        from nettrial.web.errors import page_error

        return page_error(request, InputError(field, message))
    return _error(422, "invalid", message, field)


async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
    """Starlette's own errors (unknown path, wrong method, unreadable body) in the same JSON shape."""
    if _is_page(request) and error.status_code == 404:
        from nettrial.exceptions import NotFoundError
        from nettrial.web.errors import page_error

        return page_error(request, NotFoundError("page", request.url.path))
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
    headers = dict(error.headers or {})
    return _error(error.status_code, codes.get(error.status_code, "http_error"), str(error.detail), **headers)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    # A constraint the store functions did not foresee, or a database that is busy or gone:
    # the transaction was rolled back, so nothing was half written.
    log.error("%s %s database error: %s", request.method, request.url.path, type(error).__name__)
    if isinstance(error, IntegrityError):
        return _error(409, "conflict", "the change contradicts data already stored; nothing was written")
    if isinstance(error, DataError):  # e.g. an id beyond the column's range
        return _error(422, "invalid", "a value is outside what the database can store; nothing was written")
    return _error(503, "unavailable", "the database is busy or unavailable; nothing was written, try again")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import anyio.to_thread

    from nettrial.config import get_settings

    # Sync routes run in this pool; see Settings.request_threads for why it is small.
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().request_threads
    yield


def build_app(db: Database | None = None, protocol: Protocol | None = None) -> FastAPI:
    """The service on ``db`` (default: the settings' database) running ``protocol``."""
    from nettrial.api.routes import ROUTERS
    from nettrial.config import get_settings

    app = FastAPI(
        lifespan=_lifespan,
        title="nettrial",
        version=__version__,
        description="Study service for NCT07279532: screening, enrolment, treatment, safety and follow-up.",
        openapi_url="/openapi.json",
    )
    app.state.db = db or database(get_settings().database_url)
    app.state.protocol = protocol or load_protocol(get_settings().protocol)
    app.add_exception_handler(NettrialError, _nettrial_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _database_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(DataError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        from sqlalchemy import text

        with app.state.db.session(write=False) as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    for router in ROUTERS:
        app.include_router(router, prefix=API)
    from nettrial.web.pages import PAGES

    for router in PAGES:
        app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("nettrial.web", "static")]), name="static")
    return app
