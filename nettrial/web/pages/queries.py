"""Data queries: the list (by status), and the forms to open, answer and close one.

Each form is shown only to the roles that may use it (``query.open``, ``query.answer``,
``query.close``), and each handler checks the CSRF token and the role before anything else. The store
functions are the API route's; a refused form is shown again with its message beside the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nettrial.api.deps import Actor, writing
from nettrial.api.routes.queries import QueryAnswer, QueryClose, QueryCreate
from nettrial.exceptions import ConflictError, InputError, NotFoundError
from nettrial.store import queries as store
from nettrial.store.models import User
from nettrial.web.i18n import translate
from nettrial.web.pages._forms import (
    FormState,
    entered,
    form_data,
    note_refusal,
    require_any,
    row_id,
    validated,
)
from nettrial.web.pages.history import participant_of
from nettrial.web.render import render
from nettrial.web.session import check_csrf, page_actor, require

router = APIRouter(include_in_schema=False)

READ = ("study.read", "study.read_pseudonymised")
DONE = ("opened", "answered", "closed")


def _rows(session: Session, status: str | None) -> list[dict[str, Any]]:
    names: dict[int, str] = {}

    def username(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in names:
            names[user_id] = session.get(User, user_id).username
        return names[user_id]

    return [
        {
            "query": query,
            "opened_by": username(query.opened_by),
            "answered_by": username(query.answered_by),
            "closed_by": username(query.closed_by),
            "owner": participant_of(session, query.entity, query.entity_id),
        }
        for query in store.list_queries(session, status=status)
    ]


def queries_page(
    request: Request,
    *,
    status: str = "",
    form: FormState | None = None,
    code: int = 200,
    message: str | None = None,
) -> Response:
    """The list of queries with the forms the user may use; ``form`` is the one posted, if any."""
    shown = status if status in store.STATUSES else None
    params = request.query_params
    opening = FormState(
        "open",
        {
            "entity": params.get("entity", ""),
            "entity_id": params.get("entity_id", ""),
            "field": params.get("field", ""),
        },
    )
    with request.app.state.db.session(write=False) as session:
        return render(
            request,
            "queries.html",
            status=code,
            rows=_rows(session, shown),
            chosen=shown or "",
            statuses=store.STATUSES,
            entities=store.QUERYABLE,
            opening=form if form is not None and form.name == "open" else opening,
            posted=form,
            blank=FormState,
            message=message,
        )


@router.get("/queries")
def query_list(request: Request, status: str = "", done: str = ""):
    """Queries, oldest first, optionally of one status."""
    actor = page_actor(request)
    require_any(actor, *READ)
    message = translate(f"query.done.{done}", actor.language) if done in DONE else None
    return queries_page(request, status=status, message=message)


def _write(request: Request, state: FormState, work, done: str) -> Response:
    """Run ``work`` in one audited write; back to the list, or the list with the refusal shown."""
    actor = request.state.actor
    try:
        with writing(request.app.state.db, actor) as session:
            work(session)
    except (InputError, ConflictError) as error:
        code = 409 if isinstance(error, ConflictError) else 422
        note_refusal(state, error)
        return queries_page(request, form=state, code=code)
    return RedirectResponse(f"/queries?done={done}", status_code=303)


async def _posted(request: Request, action: str) -> tuple[Actor, dict[str, Any]]:
    """The signed-in user allowed ``action`` and what they posted (after the CSRF check)."""
    await check_csrf(request)
    actor = await run_in_threadpool(page_actor, request)
    require(actor, action)
    return actor, entered(await request.form())


@router.post("/queries")
async def open_query(request: Request):
    """Open a query about a record, or one field of it."""
    actor, values = await _posted(request, "query.open")
    state = FormState("open", values, language=actor.language)

    def work(session: Session) -> None:
        body = validated(QueryCreate, form_data(state.values, QueryCreate.model_fields), actor.language)
        try:
            store.open_query(session, **body.model_dump(), user_id=actor.user_id)
        except NotFoundError as error:
            # A record that does not exist is a mistake in the form, not a page that is missing.
            raise InputError("entity_id", str(error)) from None

    return await run_in_threadpool(_write, request, state, work, "opened")


@router.post("/queries/{query_id}/answer")
async def answer_query(request: Request, query_id: str):
    """Answer an open query."""
    actor, values = await _posted(request, "query.answer")
    number = row_id(query_id, "query")
    state = FormState(f"answer-{number}", values, language=actor.language)

    def work(session: Session) -> None:
        body = validated(QueryAnswer, form_data(state.values, QueryAnswer.model_fields), actor.language)
        query = store.get_query(session, number)
        store.answer_query(session, query=query, answer=body.answer, user_id=actor.user_id)

    return await run_in_threadpool(_write, request, state, work, "answered")


@router.post("/queries/{query_id}/close")
async def close_query(request: Request, query_id: str):
    """Close an answered query (an unanswered one only with a reason)."""
    actor, values = await _posted(request, "query.close")
    number = row_id(query_id, "query")
    state = FormState(f"close-{number}", values, language=actor.language)

    def work(session: Session) -> None:
        body = validated(QueryClose, form_data(state.values, QueryClose.model_fields), actor.language)
        query = store.get_query(session, number)
        store.close_query(session, query=query, user_id=actor.user_id, reason=body.reason)

    return await run_in_threadpool(_write, request, state, work, "closed")


@router.get("/queries/{query_id}/{action}")
def back_to_queries(request: Request, query_id: str, action: str):
    """A form's address opened as a page (after a sign-in or a language switch): the list."""
    page_actor(request)
    return RedirectResponse("/queries", status_code=303)
