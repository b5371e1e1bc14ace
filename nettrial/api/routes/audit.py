"""The audit trail: who changed what, when, from what to what and why; and whether the chain is intact."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from nettrial.api.deps import AuditReader, DbDep, reading
from nettrial.api.privacy import audit_value_view
from nettrial.store.audit import verify_chain
from nettrial.store.models import AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEntryPublic(BaseModel):
    id: int
    at: dt.datetime
    username: str
    action: str
    entity: str
    entity_id: str
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str | None


class ChainPublic(BaseModel):
    ok: bool
    entries: int
    broken_at: int | None
    problem: str | None


@router.get("", response_model=list[AuditEntryPublic])
def list_entries(
    db: DbDep,
    actor: AuditReader,
    entity: str | None = None,
    entity_id: str | None = None,
    field: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryPublic]:
    """Audit entries, newest first, for an entity, a record or one of its fields."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    for column, value in (
        (AuditEntry.entity, entity),
        (AuditEntry.entity_id, entity_id),
        (AuditEntry.field, field),
    ):
        if value is not None:
            statement = statement.where(column == value)
    with reading(db) as session:
        return [
            AuditEntryPublic(
                id=e.id,
                at=e.at,
                username=e.username,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                field=e.field,
                old_value=audit_value_view(e.entity, e.field, e.old_value, actor),
                new_value=audit_value_view(e.entity, e.field, e.new_value, actor),
                reason=e.reason,
            )
            for e in session.scalars(statement)
        ]


@router.get("/verify", response_model=ChainPublic)
def verify(db: DbDep, actor: AuditReader) -> ChainPublic:
    """Recompute the hash chain and report the first entry that was altered, removed or inserted."""
    with reading(db) as session:
        report = verify_chain(session)
    return ChainPublic(
        ok=report.ok, entries=report.entries, broken_at=report.broken_at, problem=report.problem
    )
