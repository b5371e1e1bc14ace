"""The dosing log: periods at one dose level, the state of treatment and the relative dose intensity."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from nettrial.api.deps import ClinicalWriter, DbDep, ProtocolDep, Reader, reading, writing
from nettrial.api.routes._ids import RowId, RowIdField
from nettrial.protocol.model import Protocol
from nettrial.store import treatment
from nettrial.store.models import DosingPeriod
from nettrial.store.participants import get_participant

router = APIRouter(prefix="/participants", tags=["dosing"])
periods_router = APIRouter(prefix="/dosing", tags=["dosing"])

StopReason = Literal["interruption", "reduction", "discontinued", "completed"]


class DosingCreate(BaseModel):
    dose_level: int = Field(description="a level of the protocol's dose ladder (0, -1, ...)")
    start_date: dt.date
    stop_date: dt.date | None = Field(None, description="last day dosed; empty while dosing goes on")
    missed_doses: int = Field(0, ge=0)
    stop_reason: StopReason | None = None
    adverse_event_id: RowIdField | None = Field(None, description="the adverse event that led to the stop")


class DosingUpdate(BaseModel):
    dose_level: int | None = None
    start_date: dt.date | None = None
    stop_date: dt.date | None = None
    stop_reason: StopReason | None = None
    missed_doses: int | None = Field(None, ge=0)
    adverse_event_id: RowIdField | None = None
    reason: str = Field(min_length=3, description="why the record is changed (audited)")


class DosingPublic(BaseModel):
    id: int
    participant_id: int
    dose_level: int
    dose: str
    start_date: dt.date
    stop_date: dt.date | None
    missed_doses: int
    stop_reason: str | None
    adverse_event_id: int | None


class DosingLogPublic(BaseModel):
    study_id: str
    today: dt.date
    state: str
    current_dose_level: int
    first_dose_date: dt.date | None
    last_dose_date: dt.date | None
    dose_intensity: dict[str, Any] | None
    periods: list[DosingPublic]


def _period(period: DosingPeriod, protocol: Protocol) -> DosingPublic:
    described = {lv.level: lv.description for lv in protocol.dose_levels.levels}
    return DosingPublic(
        id=period.id,
        participant_id=period.participant_id,
        dose_level=period.dose_level,
        dose=described.get(period.dose_level, ""),
        start_date=period.start_date,
        stop_date=period.stop_date,
        missed_doses=period.missed_doses,
        stop_reason=period.stop_reason,
        adverse_event_id=period.adverse_event_id,
    )


@router.post("/{participant_id}/dosing", response_model=DosingPublic, status_code=201)
def add_period(
    participant_id: str, body: DosingCreate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> DosingPublic:
    """Record a dosing period; the first one records the participant's first dose."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        period = treatment.add_period(
            session, participant=participant, protocol=protocol, **body.model_dump()
        )
        return _period(period, protocol)


@router.get("/{participant_id}/dosing", response_model=DosingLogPublic)
async def dosing_log(participant_id: str, db: DbDep, protocol: ProtocolDep, actor: Reader) -> DosingLogPublic:
    """The dosing periods, the state of treatment, the current dose level and the dose intensity to date."""
    today = dt.datetime.now(dt.UTC).date()
    with reading(db) as session:
        participant = get_participant(session, participant_id)
        found = treatment.summary(session, participant=participant, protocol=protocol, today=today)
        return DosingLogPublic(
            study_id=participant.study_id,
            today=today,
            state=found.state,
            current_dose_level=found.current_dose_level,
            first_dose_date=found.first_dose_date,
            last_dose_date=found.last_dose_date,
            dose_intensity=found.dose_intensity.to_dict() if found.dose_intensity else None,
            periods=[_period(p, protocol) for p in found.periods],
        )


@periods_router.patch("/{period_id}", response_model=DosingPublic)
def change_period(
    period_id: RowId, body: DosingUpdate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> DosingPublic:
    """Stop a dosing period (stop date and why) or correct it, with a reason."""
    with writing(db, actor, body.reason) as session:
        changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
        period = treatment.update_period(
            session, period=treatment.get_period(session, period_id), protocol=protocol, changes=changes
        )
        return _period(period, protocol)
