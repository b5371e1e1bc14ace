"""Screening and enrolment: patients, versioned screening records, stored evaluations, study ids.

Enrolment is atomic: under the write lock it counts participants, refuses a 36th, and gives the next
study id (NET-001, NET-002, ... without gaps). It needs an ELIGIBLE evaluation of the patient's
latest screening record, no older than the protocol's ``eligibility_verdict_valid_days``; otherwise
only an investigator's override with a reason, which is audited (protocol.md 6).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.io import validation_error
from nettrial.eligibility.record import SCHEMA_VERSION, ScreeningRecord
from nettrial.exceptions import ConflictError, InputError
from nettrial.protocol.model import Protocol
from nettrial.store import audit
from nettrial.store._rows import get_row
from nettrial.store.db import lock_writes
from nettrial.store.models import (
    EligibilityEvaluation,
    Participant,
    Patient,
    ScreeningRecordVersion,
    Site,
    Study,
    utcnow,
)

SEXES = ("female", "male")


def ensure_study(session: Session, protocol: Protocol) -> Study:
    """The study row for ``protocol`` (created on first use)."""
    study = session.scalar(select(Study).where(Study.nct_id == protocol.identity.nct_id))
    if study is None:
        study = Study(
            nct_id=protocol.identity.nct_id,
            protocol_version=protocol.protocol_version,
            target_enrolment=protocol.identity.target_enrolment,
        )
        session.add(study)
        session.flush()
    return study


def create_site(session: Session, *, code: str, name: str) -> Site:
    if session.scalar(select(Site).where(Site.code == code)) is not None:
        raise ConflictError("code", f"site {code!r} exists")
    site = Site(code=code, name=name)
    session.add(site)
    session.flush()
    return site


def get_patient(session: Session, patient_id: int) -> Patient:
    return get_row(session, Patient, patient_id, "patient")


def create_patient(
    session: Session,
    *,
    site_code: str,
    full_name: str,
    medical_record_number: str,
    date_of_birth: dt.date,
    sex: str,
) -> Patient:
    """A patient entering screening, numbered S-0001, S-0002, ... in order."""
    site = session.scalar(select(Site).where(Site.code == site_code))
    if site is None:
        codes = session.scalars(select(Site.code)).all()
        raise InputError("site_code", f"unknown site {site_code!r}", allowed=codes)
    for field, value in (("full_name", full_name), ("medical_record_number", medical_record_number)):
        if not value or not value.strip():
            raise InputError(field, "is required")
    if sex not in SEXES:
        raise InputError("sex", f"{sex!r} is not recorded here", allowed=SEXES)
    today = dt.date.today()
    if not dt.date(1900, 1, 1) <= date_of_birth <= today:
        raise InputError("date_of_birth", f"{date_of_birth} is not a plausible date of birth")
    lock_writes(session)
    number = (session.scalar(select(func.count(Patient.id))) or 0) + 1
    patient = Patient(
        screening_number=f"S-{number:04d}",
        site_id=site.id,
        full_name=full_name.strip(),
        medical_record_number=medical_record_number.strip(),
        date_of_birth=date_of_birth,
        sex=sex,
    )
    session.add(patient)
    session.flush()
    return patient


def save_screening_record(
    session: Session, *, patient: Patient, record: dict[str, Any], user_id: int
) -> ScreeningRecordVersion:
    """Validate and store a new version of the patient's screening record.

    The record's identity is the patient's: missing identity fields are filled from the patient,
    contradicting ones are refused (one patient, one date of birth).
    """
    # The version number is read under the write lock, so concurrent saves get 1, 2, 3 ... in turn.
    lock_writes(session)
    document = dict(record)
    if not isinstance(document.get("identity") or {}, dict):
        raise InputError("identity", "must be an object (patient_id, date_of_birth, sex, weight)")
    identity = dict(document.get("identity") or {})
    for key, value in (
        ("patient_id", patient.screening_number),
        ("date_of_birth", patient.date_of_birth.isoformat()),
        ("sex", patient.sex),
    ):
        given = identity.setdefault(key, value)
        if str(given) != value:
            raise InputError(f"identity.{key}", f"{given!r} contradicts the patient's {key} ({value})")
    document["identity"] = identity
    try:
        validated = ScreeningRecord.model_validate(document)
    except ValidationError as error:
        raise validation_error(error) from None
    version = (
        session.scalar(
            select(func.max(ScreeningRecordVersion.version)).where(
                ScreeningRecordVersion.patient_id == patient.id
            )
        )
        or 0
    ) + 1
    saved = ScreeningRecordVersion(
        patient_id=patient.id,
        version=version,
        schema_version=SCHEMA_VERSION,
        record=validated.model_dump(mode="json", exclude_none=True),
        saved_by=user_id,
    )
    session.add(saved)
    session.flush()
    return saved


def latest_record(session: Session, patient: Patient) -> ScreeningRecordVersion | None:
    return session.scalar(
        select(ScreeningRecordVersion)
        .where(ScreeningRecordVersion.patient_id == patient.id)
        .order_by(ScreeningRecordVersion.version.desc())
        .limit(1)
    )


def evaluate_patient(
    session: Session, *, patient: Patient, protocol: Protocol, user_id: int, first_dose: dt.date | None = None
) -> EligibilityEvaluation:
    """Evaluate the latest screening record and store the result with both versions."""
    saved = latest_record(session, patient)
    if saved is None:
        raise ConflictError("screening_record", "save a screening record before evaluating eligibility")
    result = evaluate(ScreeningRecord.model_validate(saved.record), protocol, first_dose)
    evaluation = EligibilityEvaluation(
        patient_id=patient.id,
        record_id=saved.id,
        protocol_version=protocol.protocol_version,
        decision=result.decision.value,
        result=_json(result.to_dict()),
        evaluated_by=user_id,
    )
    session.add(evaluation)
    session.flush()
    return evaluation


def _json(value: Any) -> Any:
    """Dates and enums as text, so the stored result reads the same on SQLite and PostgreSQL."""
    import orjson

    return orjson.loads(orjson.dumps(value, default=str))


def latest_evaluation(session: Session, patient: Patient) -> EligibilityEvaluation | None:
    return session.scalar(
        select(EligibilityEvaluation)
        .where(EligibilityEvaluation.patient_id == patient.id)
        .order_by(EligibilityEvaluation.id.desc())
        .limit(1)
    )


def latest_evaluations(session: Session) -> dict[int, EligibilityEvaluation]:
    """Every evaluated patient's latest evaluation, by patient id, in one query (screening log, funnel)."""
    latest = select(func.max(EligibilityEvaluation.id)).group_by(EligibilityEvaluation.patient_id)
    found = session.scalars(select(EligibilityEvaluation).where(EligibilityEvaluation.id.in_(latest)))
    return {evaluation.patient_id: evaluation for evaluation in found}


def screening_funnel(session: Session) -> Counter[str]:
    """Patients screened, and by their latest decision (``NOT_EVALUATED`` when never evaluated)."""
    latest = select(func.max(EligibilityEvaluation.id)).group_by(EligibilityEvaluation.patient_id)
    funnel = Counter(
        dict(
            session.execute(
                select(EligibilityEvaluation.decision, func.count())
                .where(EligibilityEvaluation.id.in_(latest))
                .group_by(EligibilityEvaluation.decision)
            ).all()
        )
    )
    funnel["screened"] = session.scalar(select(func.count(Patient.id))) or 0
    funnel["NOT_EVALUATED"] = funnel["screened"] - sum(n for k, n in funnel.items() if k != "screened")
    return funnel


def _usable_evaluation(
    session: Session, patient: Patient, protocol: Protocol, now: dt.datetime
) -> tuple[EligibilityEvaluation | None, str | None]:
    """The evaluation enrolment may rely on, or why there is none."""
    evaluation = latest_evaluation(session, patient)
    if evaluation is None:
        return None, "no eligibility evaluation"
    record = latest_record(session, patient)
    if record is not None and evaluation.record_id != record.id:
        return None, f"the screening record changed (version {record.version}) after the last evaluation"
    if evaluation.decision != "ELIGIBLE":
        return None, f"the last evaluation is {evaluation.decision}"
    valid_days = int(protocol.settings["eligibility_verdict_valid_days"].value)
    if evaluation.evaluated_at < now - dt.timedelta(days=valid_days):
        return None, f"the ELIGIBLE evaluation is older than {valid_days} days"
    if evaluation.protocol_version != protocol.protocol_version:
        return None, f"the evaluation used protocol version {evaluation.protocol_version}"
    return evaluation, None


def enrol(
    session: Session,
    *,
    patient: Patient,
    protocol: Protocol,
    user_id: int,
    may_override: bool = False,
    override_reason: str | None = None,
) -> Participant:
    """Enrol ``patient`` as the next participant, atomically; never beyond the target enrolment."""
    lock_writes(session)
    study = ensure_study(session, protocol)
    # Locks the study row on PostgreSQL too (belt and braces with the advisory lock).
    session.execute(select(Study.id).where(Study.id == study.id).with_for_update())
    if session.scalar(select(Participant).where(Participant.patient_id == patient.id)) is not None:
        raise ConflictError("patient", f"{patient.screening_number} is already enrolled")
    enrolled = session.scalar(select(func.count(Participant.id))) or 0
    if enrolled >= study.target_enrolment:
        raise ConflictError(
            "enrolment", f"enrolment is closed: {enrolled} of {study.target_enrolment} enrolled"
        )
    evaluation, problem = _usable_evaluation(session, patient, protocol, utcnow())
    reason = None
    if problem is not None:
        if not override_reason or not override_reason.strip():
            raise ConflictError(
                "evaluation", f"cannot enrol: {problem}; an investigator may override with a reason"
            )
        if not may_override:
            raise ConflictError("evaluation", f"cannot enrol: {problem}; only an investigator may override")
        reason = f"investigator override ({problem}): {override_reason.strip()}"
    number = enrolled + 1
    record = latest_record(session, patient)
    planned = (record.record.get("planned_first_dose") if record else None) or None
    participant = Participant(
        patient_id=patient.id,
        study_number=number,
        study_id=f"NET-{number:03d}",
        enrolled_by=user_id,
        evaluation_id=evaluation.id if evaluation else None,
        override_reason=reason,
        first_dose_date=dt.date.fromisoformat(planned[:10]) if planned else None,
    )
    session.add(participant)
    with audit.because(session, f"enrolled as {participant.study_id}"):
        patient.status = "enrolled"
        study.enrolled = number
        session.flush()
    if reason:
        audit.record_event(
            session,
            entity="participant",
            entity_id=str(participant.id),
            what="enrolment override",
            reason=reason,
        )
    return participant
