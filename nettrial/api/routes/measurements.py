"""Laboratory results and vital signs, each graded by CTCAE when entered and again when corrected."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from nettrial.api.deps import ClinicalWriter, DbDep, ProtocolDep, Reader, reading, writing
from nettrial.api.routes._ids import RowId
from nettrial.store import measurements
from nettrial.store.models import LabResult, VitalSigns
from nettrial.store.participants import get_participant

router = APIRouter(prefix="/participants", tags=["measurements"])
labs_router = APIRouter(prefix="/labs", tags=["measurements"])
vitals_router = APIRouter(prefix="/vital-signs", tags=["measurements"])

_REASON = Field(min_length=3, description="why the record is changed (audited)")


class LabCreate(BaseModel):
    test: str = Field(min_length=1, max_length=30, description="a test of nettrial/data/labs.yaml, e.g. alt")
    value: float
    unit: str = Field(min_length=1, max_length=20)
    lln: float | None = Field(None, description="lower limit of normal, in the value's unit")
    uln: float | None = Field(None, description="upper limit of normal, in the value's unit")
    collected_on: dt.date
    visit_code: str | None = Field(None, max_length=20)


class LabUpdate(BaseModel):
    value: float | None = None
    unit: str | None = Field(None, min_length=1, max_length=20)
    lln: float | None = None
    uln: float | None = None
    collected_on: dt.date | None = None
    visit_code: str | None = Field(None, max_length=20)
    reason: str = _REASON


class LabDelete(BaseModel):
    reason: str = _REASON


class GradePublic(BaseModel):
    """A CTCAE grade as the safety engine explained it."""

    term: str
    version: str
    grade: int | None
    description: str
    rule: str
    needs_review: bool
    review_reasons: list[str]
    notes: list[str]
    baseline: float | None
    baseline_source: dict[str, Any] | None


class LabPublic(BaseModel):
    id: int
    participant_id: int
    test: str
    value: float
    unit: str
    lln: float | None
    uln: float | None
    collected_on: dt.date
    visit_code: str | None
    ctcae_term: str | None
    ctcae_grade: int | None
    ctcae_version: str | None
    grading: GradePublic | None
    grading_error: dict[str, Any] | None


class VitalSignsCreate(BaseModel):
    measured_on: dt.date
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    heart_rate_bpm: int | None = None
    weight_kg: float | None = None
    temperature_c: float | None = None
    visit_code: str | None = Field(None, max_length=20)


class VitalSignsUpdate(BaseModel):
    measured_on: dt.date | None = None
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    heart_rate_bpm: int | None = None
    weight_kg: float | None = None
    temperature_c: float | None = None
    visit_code: str | None = Field(None, max_length=20)
    reason: str = _REASON


class VitalSignsPublic(BaseModel):
    id: int
    participant_id: int
    measured_on: dt.date
    visit_code: str | None
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    heart_rate_bpm: int | None
    weight_kg: float | None
    temperature_c: float | None
    grades: dict[str, GradePublic]


def _grade(result: dict[str, Any]) -> GradePublic:
    return GradePublic(
        **{key: result[key] for key in ("term", "version", "grade", "description", "rule", "needs_review")},
        review_reasons=list(result["review_reasons"]),
        notes=list(result["notes"]),
        baseline=result["inputs"].get("baseline"),
        baseline_source=result.get("baseline_source"),
    )


def _lab(lab: LabResult) -> LabPublic:
    grading = lab.grading or {}
    return LabPublic(
        id=lab.id,
        participant_id=lab.participant_id,
        test=lab.test,
        value=lab.value,
        unit=lab.unit,
        lln=lab.lln,
        uln=lab.uln,
        collected_on=lab.collected_on,
        visit_code=lab.visit_code,
        ctcae_term=lab.ctcae_term,
        ctcae_grade=lab.ctcae_grade,
        ctcae_version=lab.ctcae_version,
        grading=_grade(grading) if "term" in grading else None,
        grading_error=grading.get("error"),
    )


def _vitals(vitals: VitalSigns) -> VitalSignsPublic:
    return VitalSignsPublic(
        id=vitals.id,
        participant_id=vitals.participant_id,
        measured_on=vitals.measured_on,
        visit_code=vitals.visit_code,
        systolic_mmhg=vitals.systolic_mmhg,
        diastolic_mmhg=vitals.diastolic_mmhg,
        heart_rate_bpm=vitals.heart_rate_bpm,
        weight_kg=vitals.weight_kg,
        temperature_c=vitals.temperature_c,
        grades={term: _grade(result) for term, result in (vitals.ctcae_grades or {}).items()},
    )


@router.post("/{participant_id}/labs", response_model=LabPublic, status_code=201)
def add_lab(
    participant_id: str, body: LabCreate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> LabPublic:
    """Enter a laboratory result; it is checked for unit and plausibility and graded by CTCAE."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        return _lab(
            measurements.add_lab(session, participant=participant, protocol=protocol, **body.model_dump())
        )


@router.get("/{participant_id}/labs", response_model=list[LabPublic])
async def list_labs(
    participant_id: str, db: DbDep, actor: Reader, test: str | None = None
) -> list[LabPublic]:
    """The participant's laboratory results in collection order (optionally of one test)."""
    with reading(db) as session:
        return [
            _lab(lab)
            for lab in measurements.list_labs(session, get_participant(session, participant_id), test)
        ]


@labs_router.patch("/{lab_id}", response_model=LabPublic)
def change_lab(
    lab_id: RowId, body: LabUpdate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> LabPublic:
    """Correct a laboratory result, with a reason; it is graded again."""
    with writing(db, actor, body.reason) as session:
        changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
        lab = measurements.update_lab(
            session, lab=measurements.get_lab(session, lab_id), protocol=protocol, changes=changes
        )
        return _lab(lab)


@labs_router.delete("/{lab_id}", status_code=204)
def delete_lab(
    lab_id: RowId,
    db: DbDep,
    protocol: ProtocolDep,
    actor: ClinicalWriter,
    body: LabDelete | None = None,
    reason: str | None = Query(None, min_length=3, description="or in the body"),
) -> None:
    """Remove a laboratory result entered in error, with a reason (in the body or the query)."""
    with writing(db, actor, body.reason if body else reason) as session:
        measurements.delete_lab(session, lab=measurements.get_lab(session, lab_id), protocol=protocol)


@router.post("/{participant_id}/vital-signs", response_model=VitalSignsPublic, status_code=201)
def add_vital_signs(
    participant_id: str, body: VitalSignsCreate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> VitalSignsPublic:
    """Enter vital signs; blood pressure is graded as Hypertension and weight as Weight loss."""
    with writing(db, actor) as session:
        participant = get_participant(session, participant_id)
        vitals = measurements.add_vital_signs(
            session, participant=participant, protocol=protocol, **body.model_dump()
        )
        return _vitals(vitals)


@router.get("/{participant_id}/vital-signs", response_model=list[VitalSignsPublic])
async def list_vital_signs(participant_id: str, db: DbDep, actor: Reader) -> list[VitalSignsPublic]:
    """The participant's vital signs in measurement order."""
    with reading(db) as session:
        found = measurements.list_vital_signs(session, get_participant(session, participant_id))
        return [_vitals(v) for v in found]


@vitals_router.patch("/{vital_signs_id}", response_model=VitalSignsPublic)
def change_vital_signs(
    vital_signs_id: RowId, body: VitalSignsUpdate, db: DbDep, protocol: ProtocolDep, actor: ClinicalWriter
) -> VitalSignsPublic:
    """Correct a set of vital signs, with a reason; they are graded again."""
    with writing(db, actor, body.reason) as session:
        changes = body.model_dump(exclude={"reason"}, exclude_unset=True)
        vitals = measurements.update_vital_signs(
            session,
            vitals=measurements.get_vital_signs(session, vital_signs_id),
            protocol=protocol,
            changes=changes,
        )
        return _vitals(vitals)
