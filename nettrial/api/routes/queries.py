"""Data queries: opened by a monitor or the site, answered by the site, closed by the monitor."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from nettrial.api.deps import Actor, DbDep, Reader, reading, requires, writing
from nettrial.api.routes._ids import MAX_ROW_ID, RowId, RowIdField
from nettrial.store import queries as store
from nettrial.store.models import DataQuery, User

router = APIRouter(prefix="/queries", tags=["queries"])

QueryOpener = Annotated[Actor, Depends(requires("query.open"))]
QueryAnswerer = Annotated[Actor, Depends(requires("query.answer"))]
QueryCloser = Annotated[Actor, Depends(requires("query.close"))]
Entity = Literal[store.QUERYABLE]  # type: ignore[valid-type]
Status = Literal[store.STATUSES]  # type: ignore[valid-type]


class QueryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: Entity
    entity_id: RowIdField
    field: str | None = Field(None, min_length=1, max_length=60)
    text: str = Field(min_length=1, max_length=4000)


class QueryAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=4000)


class QueryClose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000, description="required to close an unanswered query")


class QueryPublic(BaseModel):
    id: int
    entity: str
    entity_id: int
    field: str | None
    text: str
    status: str
    opened_by: str
    opened_at: dt.datetime
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    closed_by: str | None
    closed_at: dt.datetime | None


def _public(session: Session, query: DataQuery) -> QueryPublic:
    def username(user_id: int | None) -> str | None:
        return None if user_id is None else session.get(User, user_id).username

    return QueryPublic(
        id=query.id,
        entity=query.entity,
        entity_id=query.entity_id,
        field=query.field,
        text=query.text,
        status=query.status,
        opened_by=username(query.opened_by),
        opened_at=query.opened_at,
        answer=query.answer,
        answered_by=username(query.answered_by),
        answered_at=query.answered_at,
        closed_by=username(query.closed_by),
        closed_at=query.closed_at,
    )


@router.post("", response_model=QueryPublic, status_code=201)
def open_query(body: QueryCreate, db: DbDep, actor: QueryOpener) -> QueryPublic:
    """Open a query about a record, or one field of it."""
    with writing(db, actor) as session:
        query = store.open_query(session, **body.model_dump(), user_id=actor.user_id)
        return _public(session, query)


@router.get("", response_model=list[QueryPublic])
def list_queries(
    db: DbDep,
    actor: Reader,
    status: Status | None = None,
    entity: Entity | None = None,
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> list[QueryPublic]:
    """Queries, oldest first, by status and by record."""
    with reading(db) as session:
        found = store.list_queries(session, status=status, entity=entity, entity_id=entity_id)
        return [_public(session, q) for q in found]


@router.get("/{query_id}", response_model=QueryPublic)
async def get_query(query_id: RowId, db: DbDep, actor: Reader) -> QueryPublic:
    """One query."""
    with reading(db) as session:
        return _public(session, store.get_query(session, query_id))


@router.post("/{query_id}/answer", response_model=QueryPublic)
def answer_query(query_id: RowId, body: QueryAnswer, db: DbDep, actor: QueryAnswerer) -> QueryPublic:
    """Answer an open query."""
    with writing(db, actor) as session:
        query = store.get_query(session, query_id)
        return _public(
            session, store.answer_query(session, query=query, answer=body.answer, user_id=actor.user_id)
        )


@router.post("/{query_id}/close", response_model=QueryPublic)
def close_query(query_id: RowId, body: QueryClose, db: DbDep, actor: QueryCloser) -> QueryPublic:
    """Close an answered query (an unanswered one only with a reason)."""
    with writing(db, actor) as session:
        query = store.get_query(session, query_id)
        return _public(
            session, store.close_query(session, query=query, user_id=actor.user_id, reason=body.reason)
        )
