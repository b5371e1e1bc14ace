"""Dispositions: how treatment and the study ended for a participant (one of each at most)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from nettrial.api.deps import ClinicalWriter, DbDep, Reader, reading, writing
from nettrial.api.routes._ids import RowId
from nettrial.store import assessments as store
from nettrial.store.models import Disposition
from nettrial.store.participants import get_participant

router = APIRouter(prefix="/dispositions", tags=["dispositions"])
participant_router = APIRouter(prefix="/participants/{participant_id}/dispositions", tags=["dispositions"])

Phase = Literal[store.PHASES]  # type: ignore[valid-type]
# Every status of either phase; the store checks that it belongs to the phase.
_STATUSES = tuple(dict.fromkeys(s for phase in store.PHASES for s in store.DISPOSITION_STATUSES[phase]))
Status = Literal[_STATUSES]  # type: ignore[valid-type]


class DispositionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: Phase
    status: Status
    status_date: dt.date
    reason: str | None = Field(None, max_length=2000, description="required unless completed")
    cause_of_death: str | None = Field(None, max_length=2000, description="required for a death, only then")


class DispositionUpdate(BaseModel):
    # ``reason`` is the correction's reason, as in every update; the disposition's own reason (why
    # the phase ended) is corrected through ``status_reason``.
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    status_date: dt.date | None = None
    status_reason: str | None = Field(None, max_length=2000, description="why the phase ended")
    cause_of_death: str | None = Field(None, max_length=2000)
    reason: str = Field(min_length=3, description="why the disposition is corrected (audited)")


class DispositionPublic(BaseModel):
    id: int
    participant_id: int
    phase: str
    status: str
    status_date: dt.date
    reason: str | None
    cause_of_death: str | None
    participant_status: str


def _public(disposition: Disposition, participant_status: str) -> DispositionPublic:
    return DispositionPublic(
        id=disposition.id,
        participant_id=disposition.participant_id,
        phase=disposition.phase,
        status=disposition.status,
        status_date=disposition.status_date,
        reason=disposition.reason,
        cause_of_death=disposition.cause_of_death,
        participant_status=participant_status,
    )


@participant_router.post("", response_model=DispositionPublic, status_code=201)
def create_disposition(
    participant_id: str, body: DispositionCreate, db: DbDep, actor: ClinicalWriter
) -> DispositionPublic:
    """Record how treatment or the study ended; the participant's status follows."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        disposition = store.create_disposition(session, participant=participant, **body.model_dump())
        return _public(disposition, participant.status)


@participant_router.get("", response_model=list[DispositionPublic])
def list_dispositions(participant_id: str, db: DbDep, actor: Reader) -> list[DispositionPublic]:
    """A participant's dispositions, treatment before study."""
    with reading(db) as session:
        participant = get_participant(session, participant_id)
        found = store.list_dispositions(session, participant=participant)
        return [_public(d, participant.status) for d in found]


@router.get("/{disposition_id}", response_model=DispositionPublic)
async def get_disposition(disposition_id: RowId, db: DbDep, actor: Reader) -> DispositionPublic:
    """One disposition."""
    with reading(db) as session:
        disposition = store.get_disposition(session, disposition_id)
        return _public(disposition, get_participant(session, disposition.participant_id).status)


@router.patch("/{disposition_id}", response_model=DispositionPublic)
def update_disposition(
    disposition_id: RowId, body: DispositionUpdate, db: DbDep, actor: ClinicalWriter
) -> DispositionPublic:
    """Correct a disposition; the participant's status follows."""
    changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
    if "status_reason" in changes:
        changes["reason"] = changes.pop("status_reason")
    with writing(db, actor, body.reason) as session:
        disposition = store.update_disposition(
            session, disposition=store.get_disposition(session, disposition_id), **changes
        )
        return _public(disposition, get_participant(session, disposition.participant_id).status)
