"""Participants: the enrolled patients, their schedule of visits, and the visits as they happened."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from nettrial.api.deps import (
    ClinicalWriter,
    DbDep,
    ParticipantReading,
    ProtocolDep,
    Reader,
    reading,
    writing,
)
from nettrial.api.privacy import patient_view
from nettrial.protocol.model import Protocol
from nettrial.safety.schedule import VisitStatus
from nettrial.store import schedule, treatment, visits
from nettrial.store.models import Participant, Patient, Visit
from nettrial.store.participant_record import ParticipantRecord, read_participant, read_periods, read_visits
from nettrial.store.participants import get_participant

router = APIRouter(prefix="/participants", tags=["participants"])


class ParticipantPublic(BaseModel):
    id: int
    study_id: str
    screening_number: str
    site_code: str
    status: str
    enrolled_at: dt.datetime
    first_dose_date: dt.date | None
    current_dose_level: int
    treatment_state: str


class ParticipantDetail(ParticipantPublic):
    override_reason: str | None
    patient: dict[str, Any]


class VisitCreate(BaseModel):
    visit_code: str = Field(min_length=1, max_length=20)
    status: Literal["done", "missed"]
    visit_date: dt.date | None = Field(None, description="required when done")
    note: str | None = Field(None, max_length=2000)


class VisitUpdate(BaseModel):
    status: Literal["done", "missed"] | None = None
    visit_date: dt.date | None = None
    note: str | None = Field(None, max_length=2000)
    reason: str = Field(min_length=3, description="why the record is changed (audited)")


class VisitPublic(BaseModel):
    id: int
    participant_id: int
    visit_code: str
    status: str
    visit_date: dt.date | None
    note: str | None


class ScheduledVisitPublic(BaseModel):
    visit_code: str
    kind: str
    target: dt.date
    earliest: dt.date
    latest: dt.date
    anchor: str
    rule: str
    status: str
    reason: str
    done_on: dt.date | None
    in_window: bool | None
    days_from_target: int | None
    note: str | None


class SchedulePublic(BaseModel):
    study_id: str
    today: dt.date
    first_dose_date: dt.date
    last_dose_date: dt.date | None
    interruptions: list[tuple[dt.date, dt.date]]
    visits: list[ScheduledVisitPublic]


def _summary(participant: Participant | ParticipantRecord, periods: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": participant.id,
        "study_id": participant.study_id,
        "screening_number": participant.patient.screening_number,
        "site_code": participant.patient.site_code,
        "status": participant.status,
        "enrolled_at": participant.enrolled_at,
        "first_dose_date": participant.first_dose_date,
        "current_dose_level": periods[-1].dose_level if periods else 0,
        "treatment_state": treatment.state(periods),
    }


def _visit(visit: Visit) -> VisitPublic:
    return VisitPublic(
        id=visit.id,
        participant_id=visit.participant_id,
        visit_code=visit.visit_code,
        status=visit.status,
        visit_date=visit.visit_date,
        note=visit.note,
    )


@router.get("", response_model=list[ParticipantPublic])
def list_participants(db: DbDep, actor: Reader) -> list[ParticipantPublic]:
    """Every participant, in study-id order, with where each stands in treatment."""
    with reading(db) as session:
        found = list(
            session.scalars(
                select(Participant)
                .options(selectinload(Participant.patient).selectinload(Patient.site))
                .order_by(Participant.study_number)
            )
        )
        periods = treatment.periods_by_participant(session, [p.id for p in found])
        return [ParticipantPublic(**_summary(p, periods.get(p.id, []))) for p in found]


# The participant page's two reads run on the event loop (api/deps.py) as Core statements on one
# connection (store/participant_record.py): they are the service's most frequent requests.
@router.get("/{participant_id}", response_model=ParticipantDetail)
async def get_one(participant_id: str, reader: ParticipantReading) -> ParticipantDetail:
    """One participant (by id or study id, e.g. NET-001), the patient shown as the reader may see them."""
    participant = read_participant(reader.connection, participant_id)
    latest = participant.latest_period
    return ParticipantDetail(
        **_summary(participant, [latest] if latest else []),  # where they stand: the latest period
        override_reason=participant.override_reason,
        patient=patient_view(participant.patient, reader.actor),
    )


# A schedule is a pure function of the rows just read, the protocol and the date, and a participant
# page is read again and again between changes. The last schedules computed are kept, keyed by those
# rows themselves (immutable values), so any change to a row is a new key, never a stale answer. The
# entry holds its protocol, so the protocol's id in the key cannot be another's. Only the event loop
# touches this (the route is async): no lock.
_SCHEDULES_KEPT = 512
_schedules: OrderedDict[tuple[Any, ...], tuple[Protocol, SchedulePublic]] = OrderedDict()


@router.get("/{participant_id}/schedule", response_model=SchedulePublic)
async def get_schedule(
    participant_id: str, protocol: ProtocolDep, reader: ParticipantReading
) -> SchedulePublic:
    """The planned visits with their windows and today's status (409 before the first dose date is known)."""
    connection = reader.connection
    participant = read_participant(connection, participant_id)
    periods, recorded = read_periods(connection, participant.id), read_visits(connection, participant.id)
    today = dt.datetime.now(dt.UTC).date()
    participant_key = (participant.id, participant.study_id, participant.first_dose_date)
    key = (id(protocol), participant_key, tuple(periods), tuple(recorded), today)
    kept = _schedules.get(key)
    if kept is not None and kept[0] is protocol:
        _schedules.move_to_end(key)
        return kept[1]
    found = schedule.schedule_of(participant, periods, recorded, protocol=protocol, today=today)
    shown = SchedulePublic(
        study_id=participant.study_id,
        today=found.today,
        first_dose_date=found.first_dose_date,
        last_dose_date=found.last_dose_date,
        interruptions=found.interruptions,
        visits=[_scheduled(status, found.recorded.get(status.visit.id)) for status in found.statuses],
    )
    _schedules[key] = (protocol, shown)
    if len(_schedules) > _SCHEDULES_KEPT:
        _schedules.popitem(last=False)
    return shown


def _scheduled(status: VisitStatus, recorded: Any) -> ScheduledVisitPublic:
    visit = status.visit
    return ScheduledVisitPublic(
        visit_code=visit.id,
        kind=visit.kind,
        target=visit.target,
        earliest=visit.earliest,
        latest=visit.latest,
        anchor=visit.anchor,
        rule=visit.rule,
        status=status.status,
        reason=status.reason,
        done_on=status.done_on,
        in_window=status.in_window,
        days_from_target=status.days_from_target,
        note=recorded.note if recorded else None,
    )


@router.post("/{participant_id}/visits", response_model=VisitPublic, status_code=201)
def record_visit(
    participant_id: str, body: VisitCreate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> VisitPublic:
    """Record a scheduled visit as done (with its date) or missed."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        return _visit(
            visits.record_visit(session, participant=participant, protocol=protocol, **body.model_dump())
        )


@router.patch("/{participant_id}/visits/{visit_code}", response_model=VisitPublic)
def change_visit(
    participant_id: str, visit_code: str, body: VisitUpdate, db: DbDep, actor: ClinicalWriter
) -> VisitPublic:
    """Correct a recorded visit (status, date or note), with a reason."""
    with writing(db, actor, body.reason) as session:
        participant = get_participant(session, participant_id)
        visit = visits.get_visit(session, participant=participant, visit_code=visit_code)
        changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
        return _visit(visits.update_visit(session, visit=visit, changes=changes))
