"""Adverse events: CTCAE term and grade, CTCAE's suggestion, and the protocol's dose recommendation."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from nettrial.api.deps import ClinicalWriter, DbDep, ProtocolDep, Reader, reading, writing
from nettrial.api.routes._ids import RowId
from nettrial.store import adverse_events as store
from nettrial.store.adverse_events import Assessment
from nettrial.store.models import AdverseEvent
from nettrial.store.participants import current_dose_level, get_participant

router = APIRouter(prefix="/adverse-events", tags=["adverse events"])
participant_router = APIRouter(
    prefix="/participants/{participant_id}/adverse-events", tags=["adverse events"]
)

SeriousCriterion = Literal[store.SERIOUS_CRITERIA]  # type: ignore[valid-type]
Relatedness = Literal[store.RELATEDNESS]  # type: ignore[valid-type]
ActionTaken = Literal[store.ACTIONS_TAKEN]  # type: ignore[valid-type]
Outcome = Literal[store.OUTCOMES]  # type: ignore[valid-type]


class _Grading(BaseModel):
    """What CTCAE grades from (ctcae.md): structured answers, or a value with its unit and limits."""

    model_config = ConfigDict(extra="forbid")
    term: str = Field(min_length=1, max_length=100, description="CTCAE v5.0 term or alias")
    grade: int | None = Field(
        None, ge=1, le=5, description="default: CTCAE's suggestion from answers or value"
    )
    answers: dict[str, Any] | None = Field(None, description="the term's structured CTCAE answers")
    value: float | str | None = Field(None, description="a laboratory value, or systolic/diastolic")
    unit: str | None = Field(None, max_length=20)
    lln: float | None = Field(None, gt=0)
    uln: float | None = Field(None, gt=0)
    baseline: float | None = Field(None, ge=0)
    measures: dict[str, float] | None = Field(None, description="values the dose rules may need")


class AdverseEventPreview(_Grading):
    participant_id: int | str = Field(description="database id or study id (NET-001)")


class AdverseEventCreate(_Grading):
    onset_date: dt.date
    resolved_date: dt.date | None = None
    serious: bool
    serious_criteria: list[SeriousCriterion] = Field(default_factory=list)
    relatedness: Relatedness
    action_taken: ActionTaken
    outcome: Outcome


class AdverseEventUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: str | None = Field(None, min_length=1, max_length=100)
    grade: int | None = Field(None, ge=1, le=5)
    answers: dict[str, Any] | None = None
    value: float | str | None = None
    unit: str | None = Field(None, max_length=20)
    lln: float | None = Field(None, gt=0)
    uln: float | None = Field(None, gt=0)
    baseline: float | None = Field(None, ge=0)
    measures: dict[str, float] | None = None
    onset_date: dt.date | None = None
    resolved_date: dt.date | None = None
    serious: bool | None = None
    serious_criteria: list[SeriousCriterion] | None = None
    relatedness: Relatedness | None = None
    action_taken: ActionTaken | None = None
    outcome: Outcome | None = None
    reason: str = Field(min_length=3, description="why the event is corrected (audited)")


class AssessmentPublic(BaseModel):
    term: str
    soc: str
    grade: int
    dose_level: int
    ctcae: dict[str, Any] | None
    recommendation: dict[str, Any]


class AdverseEventPublic(BaseModel):
    id: int
    participant_id: int
    term: str
    soc: str
    ctcae_version: str
    grade: int
    onset_date: dt.date
    resolved_date: dt.date | None
    serious: bool
    serious_criteria: list[str]
    relatedness: str
    action_taken: str
    outcome: str
    answers: dict[str, Any] | None
    suggested_grade: int | None
    ctcae: dict[str, Any] | None = Field(description="CTCAE's suggestion, when this request graded the event")
    recommendation: dict[str, Any] | None


def _public(event: AdverseEvent, assessment: Assessment | None = None) -> AdverseEventPublic:
    return AdverseEventPublic(
        id=event.id,
        participant_id=event.participant_id,
        term=event.term,
        soc=event.soc,
        ctcae_version=event.ctcae_version,
        grade=event.grade,
        onset_date=event.onset_date,
        resolved_date=event.resolved_date,
        serious=event.serious,
        serious_criteria=list(event.serious_criteria or []),
        relatedness=event.relatedness,
        action_taken=event.action_taken,
        outcome=event.outcome,
        answers=event.answers,
        suggested_grade=event.suggested_grade,
        ctcae=assessment.ctcae_view() if assessment else None,
        recommendation=event.recommendation,
    )


@router.post("/preview", response_model=AssessmentPublic)
def preview(
    body: AdverseEventPreview, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> AssessmentPublic:
    """CTCAE's suggestion and the dose recommendation for an event not yet saved (writes nothing)."""
    with reading(db) as session:
        participant = get_participant(session, body.participant_id)
        level = current_dose_level(session, participant)
    assessment = store.assess(protocol, dose_level=level, **body.model_dump(exclude={"participant_id"}))
    return AssessmentPublic(
        term=assessment.term.name,
        soc=assessment.term.soc,
        grade=assessment.grade,
        dose_level=level,
        ctcae=assessment.ctcae_view(),
        recommendation=assessment.stored_recommendation(),
    )


@participant_router.post("", response_model=AdverseEventPublic, status_code=201)
def create_adverse_event(
    participant_id: str,
    body: AdverseEventCreate,
    db: DbDep,
    protocol: ProtocolDep,
    actor: ClinicalWriter,
) -> AdverseEventPublic:
    """Record an adverse event with CTCAE's suggestion and the dose recommendation."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        event, assessment = store.create_adverse_event(
            session, participant=participant, protocol=protocol, **body.model_dump()
        )
        return _public(event, assessment)


@participant_router.get("", response_model=list[AdverseEventPublic])
def list_adverse_events(participant_id: str, db: DbDep, actor: Reader) -> list[AdverseEventPublic]:
    """A participant's adverse events in order of onset."""
    with reading(db) as session:
        participant = get_participant(session, participant_id)
        return [_public(e) for e in store.list_adverse_events(session, participant=participant)]


@router.get("/{event_id}", response_model=AdverseEventPublic)
async def get_adverse_event(event_id: RowId, db: DbDep, actor: Reader) -> AdverseEventPublic:
    """One adverse event."""
    with reading(db) as session:
        return _public(store.get_adverse_event(session, event_id))


@router.patch("/{event_id}", response_model=AdverseEventPublic)
def update_adverse_event(
    event_id: RowId, body: AdverseEventUpdate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> AdverseEventPublic:
    """Correct an adverse event; a new term or grade recomputes the dose recommendation."""
    with writing(db, actor, body.reason) as session:
        event, assessment = store.update_adverse_event(
            session,
            event=store.get_adverse_event(session, event_id),
            protocol=protocol,
            **body.model_dump(exclude={"reason"}, exclude_unset=True),
        )
        return _public(event, assessment)
