"""Tumour assessments: imaging for recurrence, with the sites of any recurrence (protocol.md 3-4)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from nettrial.api.deps import ClinicalWriter, DbDep, Reader, reading, writing
from nettrial.api.routes._ids import RowId
from nettrial.store import assessments as store
from nettrial.store.models import TumourAssessment
from nettrial.store.participants import get_participant

router = APIRouter(prefix="/tumour-assessments", tags=["tumour assessments"])
participant_router = APIRouter(
    prefix="/participants/{participant_id}/tumour-assessments", tags=["tumour assessments"]
)

Method = Literal[store.METHODS]  # type: ignore[valid-type]
Result = Literal[store.RESULTS]  # type: ignore[valid-type]
Site = Literal[store.RECURRENCE_SITES]  # type: ignore[valid-type]


class TumourAssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assessed_on: dt.date
    method: Method
    result: Result
    recurrence_sites: list[Site] = Field(default_factory=list, description="required iff recurrence")
    visit_code: str | None = Field(None, min_length=1, max_length=20)
    new_anticancer_therapy_on: dt.date | None = Field(None, description="start of new anticancer therapy")


class TumourAssessmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assessed_on: dt.date | None = None
    method: Method | None = None
    result: Result | None = None
    recurrence_sites: list[Site] | None = None
    visit_code: str | None = Field(None, min_length=1, max_length=20)
    new_anticancer_therapy_on: dt.date | None = None
    reason: str = Field(min_length=3, description="why the assessment is corrected (audited)")


class TumourAssessmentPublic(BaseModel):
    id: int
    participant_id: int
    assessed_on: dt.date
    method: str
    result: str
    recurrence_sites: list[str]
    visit_code: str | None
    new_anticancer_therapy_on: dt.date | None


def _public(assessment: TumourAssessment) -> TumourAssessmentPublic:
    return TumourAssessmentPublic(
        id=assessment.id,
        participant_id=assessment.participant_id,
        assessed_on=assessment.assessed_on,
        method=assessment.method,
        result=assessment.result,
        recurrence_sites=list(assessment.recurrence_sites or []),
        visit_code=assessment.visit_code,
        new_anticancer_therapy_on=assessment.new_anticancer_therapy_on,
    )


@participant_router.post("", response_model=TumourAssessmentPublic, status_code=201)
def create_tumour_assessment(
    participant_id: str, body: TumourAssessmentCreate, db: DbDep, actor: ClinicalWriter
) -> TumourAssessmentPublic:
    """Record an imaging assessment: no evidence of disease, or recurrence with its sites."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        return _public(store.create_tumour_assessment(session, participant=participant, **body.model_dump()))


@participant_router.get("", response_model=list[TumourAssessmentPublic])
def list_tumour_assessments(participant_id: str, db: DbDep, actor: Reader) -> list[TumourAssessmentPublic]:
    """A participant's imaging assessments in date order."""
    with reading(db) as session:
        participant = get_participant(session, participant_id)
        return [_public(a) for a in store.list_tumour_assessments(session, participant=participant)]


@router.get("/{assessment_id}", response_model=TumourAssessmentPublic)
async def get_tumour_assessment(assessment_id: RowId, db: DbDep, actor: Reader) -> TumourAssessmentPublic:
    """One imaging assessment."""
    with reading(db) as session:
        return _public(store.get_tumour_assessment(session, assessment_id))


@router.patch("/{assessment_id}", response_model=TumourAssessmentPublic)
def update_tumour_assessment(
    assessment_id: RowId, body: TumourAssessmentUpdate, db: DbDep, actor: ClinicalWriter
) -> TumourAssessmentPublic:
    """Correct an imaging assessment."""
    with writing(db, actor, body.reason) as session:
        assessment = store.get_tumour_assessment(session, assessment_id)
        changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
        return _public(store.update_tumour_assessment(session, assessment=assessment, **changes))
