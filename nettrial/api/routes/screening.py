"""Screening: patients, versioned screening records, eligibility evaluations, enrolment, screening log."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.api.deps import Actor, DbDep, Enroller, ProtocolDep, Reader, ScreeningWriter, reading, writing
from nettrial.api.privacy import evaluation_view, patient_view, record_view
from nettrial.api.routes._ids import RowId
from nettrial.exceptions import NotFoundError
from nettrial.store import screening
from nettrial.store.models import EligibilityEvaluation, Participant, Patient, ScreeningRecordVersion

router = APIRouter(prefix="/patients", tags=["screening"])
log_router = APIRouter(prefix="/screening-log", tags=["screening"])


class PatientCreate(BaseModel):
    site_code: str = Field(min_length=1)
    full_name: str = Field(min_length=1, max_length=200)
    medical_record_number: str = Field(min_length=1, max_length=50)
    date_of_birth: dt.date
    sex: Literal["female", "male"]


class RecordPublic(BaseModel):
    patient_id: int
    version: int
    schema_version: str
    saved_at: dt.datetime
    record: dict[str, Any]


class EvaluationCreate(BaseModel):
    first_dose: dt.date | None = Field(
        None,
        ge=dt.date(2000, 1, 1),
        le=dt.date(2100, 12, 31),
        description="planned first dose; default: the record's",
    )


class EvaluationPublic(BaseModel):
    id: int
    patient_id: int
    record_version: int
    protocol_version: str
    decision: str
    evaluated_at: dt.datetime
    result: dict[str, Any]


class EnrolmentCreate(BaseModel):
    override_reason: str | None = Field(
        None, max_length=2000, description="investigators only: enrol without a current ELIGIBLE evaluation"
    )


class EnrolmentPublic(BaseModel):
    participant_id: int
    study_id: str
    patient_id: int
    enrolled_at: dt.datetime
    first_dose_date: dt.date | None
    override_reason: str | None


def _evaluation(session: Session, evaluation: EligibilityEvaluation, actor: Actor) -> EvaluationPublic:
    record = session.get(ScreeningRecordVersion, evaluation.record_id)
    patient = session.get(Patient, evaluation.patient_id)
    return EvaluationPublic(
        id=evaluation.id,
        patient_id=evaluation.patient_id,
        record_version=record.version,
        protocol_version=evaluation.protocol_version,
        decision=evaluation.decision,
        evaluated_at=evaluation.evaluated_at,
        result=evaluation_view(evaluation.result, patient.date_of_birth, actor),
    )


@router.post("", status_code=201)
def create_patient(body: PatientCreate, db: DbDep, actor: ScreeningWriter) -> dict[str, Any]:
    """Register a patient for screening (numbered S-0001, S-0002, ...)."""
    with writing(db, actor) as session:
        return patient_view(screening.create_patient(session, **body.model_dump()), actor)


@router.get("")
def list_patients(db: DbDep, actor: Reader) -> list[dict[str, Any]]:
    """Every patient in screening or enrolled."""
    with reading(db) as session:
        return [patient_view(p, actor) for p in session.scalars(select(Patient).order_by(Patient.id))]


@router.get("/{patient_id}")
async def get_patient(patient_id: RowId, db: DbDep, actor: Reader) -> dict[str, Any]:
    """One patient."""
    with reading(db) as session:
        return patient_view(screening.get_patient(session, patient_id), actor)


@router.put("/{patient_id}/screening-record", response_model=RecordPublic, status_code=201)
def save_record(patient_id: RowId, record: dict[str, Any], db: DbDep, actor: ScreeningWriter) -> RecordPublic:
    """Save a new version of the screening record (schema: ``nettrial schema screening-record``)."""
    with writing(db, actor) as session:
        patient = screening.get_patient(session, patient_id)
        saved = screening.save_screening_record(
            session, patient=patient, record=record, user_id=actor.user_id
        )
        return RecordPublic(
            patient_id=patient.id,
            version=saved.version,
            schema_version=saved.schema_version,
            saved_at=saved.saved_at,
            record=saved.record,
        )


@router.get("/{patient_id}/screening-record", response_model=RecordPublic)
async def get_record(patient_id: RowId, db: DbDep, actor: Reader) -> RecordPublic:
    """The latest version of the screening record."""
    with reading(db) as session:
        saved = screening.latest_record(session, screening.get_patient(session, patient_id))
        if saved is None:
            raise NotFoundError("screening record of patient", patient_id)
        return RecordPublic(
            patient_id=patient_id,
            version=saved.version,
            schema_version=saved.schema_version,
            saved_at=saved.saved_at,
            record=record_view(saved.record, actor),
        )


@router.post("/{patient_id}/evaluations", response_model=EvaluationPublic, status_code=201)
def evaluate(
    patient_id: RowId, body: EvaluationCreate, db: DbDep, protocol: ProtocolDep, actor: ScreeningWriter
) -> EvaluationPublic:
    """Evaluate eligibility on the latest record and store the verdicts with their evidence."""
    with writing(db, actor) as session:
        patient = screening.get_patient(session, patient_id)
        evaluation = screening.evaluate_patient(
            session, patient=patient, protocol=protocol, user_id=actor.user_id, first_dose=body.first_dose
        )
        return _evaluation(session, evaluation, actor)


@router.get("/{patient_id}/evaluations", response_model=list[EvaluationPublic])
async def list_evaluations(patient_id: RowId, db: DbDep, actor: Reader) -> list[EvaluationPublic]:
    """Every stored evaluation, newest first."""
    with reading(db) as session:
        screening.get_patient(session, patient_id)
        found = session.scalars(
            select(EligibilityEvaluation)
            .where(EligibilityEvaluation.patient_id == patient_id)
            .order_by(EligibilityEvaluation.id.desc())
        )
        return [_evaluation(session, e, actor) for e in found]


@router.post("/{patient_id}/enrolment", response_model=EnrolmentPublic, status_code=201)
def enrol(
    patient_id: RowId, body: EnrolmentCreate, db: DbDep, protocol: ProtocolDep, actor: Enroller
) -> EnrolmentPublic:
    """Enrol the patient as the next participant (NET-001 ...); closed at the target enrolment."""
    with writing(db, actor) as session:
        participant = screening.enrol(
            session,
            patient=screening.get_patient(session, patient_id),
            protocol=protocol,
            user_id=actor.user_id,
            may_override=actor.may("enrol.override"),
            override_reason=body.override_reason,
        )
        return EnrolmentPublic(
            participant_id=participant.id,
            study_id=participant.study_id,
            patient_id=participant.patient_id,
            enrolled_at=participant.enrolled_at,
            first_dose_date=participant.first_dose_date,
            override_reason=participant.override_reason,
        )


@log_router.get("")
def screening_log(db: DbDep, actor: Reader) -> list[dict[str, Any]]:
    """One row per patient: status, latest decision, criteria not met, study id when enrolled."""
    with reading(db) as session:
        rows = []
        for patient in session.scalars(select(Patient).order_by(Patient.id)):
            latest = screening.latest_evaluation(session, patient)
            participant = session.scalar(select(Participant).where(Participant.patient_id == patient.id))
            rows.append(
                {
                    **patient_view(patient, actor),
                    "decision": latest.decision if latest else None,
                    "failed": latest.result.get("failed", []) if latest else [],
                    "missing": latest.result.get("missing", []) if latest else [],
                    "study_id": participant.study_id if participant else None,
                }
            )
        return rows
