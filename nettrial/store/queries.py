"""Data queries: a question about a record or one of its fields, answered at the site, closed by the monitor.

A query is open, then answered, then closed (ICH E6(R3) source data verification). The monitor may
also close a query nobody answered, but only with a reason (withdrawn, raised in error); a closed
query is final. Each change of state is a row update, audited with the reason it happened.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError, InputError, NotFoundError
from nettrial.store import audit
from nettrial.store._rows import get_row
from nettrial.store.models import Base, DataQuery, utcnow

# The study data a monitor verifies against source: every audited clinical table. Accounts, sites,
# the study row and the queries themselves are not study data.
QUERYABLE = (
    "patient",
    "screening_record",
    "eligibility_evaluation",
    "participant",
    "consent",
    "visit",
    "dosing_period",
    "lab_result",
    "vital_signs",
    "adverse_event",
    "tumour_assessment",
    "disposition",
)
STATUSES = ("open", "answered", "closed")


def _model(entity: str) -> type[Base]:
    if entity not in QUERYABLE:
        raise InputError("entity", f"{entity!r} is not study data a query can be about", allowed=QUERYABLE)
    return next(m.class_ for m in Base.registry.mappers if m.local_table.name == entity)


def get_query(session: Session, query_id: int) -> DataQuery:
    return get_row(session, DataQuery, query_id, "query")


def list_queries(
    session: Session, *, status: str | None = None, entity: str | None = None, entity_id: int | None = None
) -> list[DataQuery]:
    """Queries, oldest first, optionally by status and by the record they are about."""
    statement = select(DataQuery).order_by(DataQuery.id)
    if status is not None:
        if status not in STATUSES:
            raise InputError("status", f"{status!r} is not a query status", allowed=STATUSES)
        statement = statement.where(DataQuery.status == status)
    if entity is not None:
        statement = statement.where(DataQuery.entity == entity)
    if entity_id is not None:
        statement = statement.where(DataQuery.entity_id == entity_id)
    return list(session.scalars(statement))


def open_query(
    session: Session, *, entity: str, entity_id: int, field: str | None, text: str, user_id: int
) -> DataQuery:
    """Ask about a record that exists (and about one of its fields, if ``field`` is given)."""
    model = _model(entity)
    if session.get(model, entity_id) is None:
        raise NotFoundError(entity.replace("_", " "), entity_id)
    if field is not None:
        columns = [c.name for c in model.__table__.columns if c.name != "id"]
        if field not in columns:
            raise InputError("field", f"{entity} has no field {field!r}", allowed=columns)
    if not text.strip():
        raise InputError("text", "ask a question")
    query = DataQuery(entity=entity, entity_id=entity_id, field=field, text=text.strip(), opened_by=user_id)
    session.add(query)
    session.flush()
    return query


def _lock(session: Session, query: DataQuery) -> None:
    # Read the state again under a row lock (PostgreSQL; SQLite writers already queue), so that of
    # two answers sent at once the second sees the first and is refused.
    session.refresh(query, with_for_update=True)


def answer_query(session: Session, *, query: DataQuery, answer: str, user_id: int) -> DataQuery:
    """The site's answer to an open query."""
    _lock(session, query)
    if query.status != "open":
        raise ConflictError("status", f"query {query.id} is {query.status}: only an open query is answered")
    if not answer.strip():
        raise InputError("answer", "give an answer")
    with audit.because(session, "query answered"):
        query.status, query.answer = "answered", answer.strip()
        query.answered_by, query.answered_at = user_id, utcnow()
        session.flush()
    return query


def close_query(session: Session, *, query: DataQuery, user_id: int, reason: str | None = None) -> DataQuery:
    """Close an answered query, or an open one with a reason; a closed query stays closed."""
    reason = reason.strip() if reason and reason.strip() else None
    _lock(session, query)
    if query.status == "closed":
        raise ConflictError("status", f"query {query.id} is already closed")
    if query.status == "open" and reason is None:
        raise ConflictError("status", f"query {query.id} is unanswered: give a reason to close it anyway")
    with audit.because(session, reason or "query closed"):
        query.status = "closed"
        query.closed_by, query.closed_at = user_id, utcnow()
        session.flush()
    return query
