"""The study database: one table per thing the study team records (SQLAlchemy 2 declarative).

Every clinical table carries the CTCAE/protocol version it was judged by where that matters, and
every change to any table except the audit log itself is written to ``audit_log`` by ``audit.py``.
Times are UTC; dates are calendar dates as recorded. Controlled vocabularies are checked by the
API schemas and the store functions; the columns hold their codes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """A UTC instant: stored without zone (SQLite has none), always returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC instants only")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSONType, list[Any]: JSONType, dt.datetime: UTCDateTime}


class Study(Base):
    """The one study this database runs; its row is the lock enrolment takes."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    nct_id: Mapped[str] = mapped_column(String(20), unique=True)
    protocol_version: Mapped[str] = mapped_column(String(20))
    target_enrolment: Mapped[int]
    enrolled: Mapped[int] = mapped_column(default=0)


class Site(Base):
    __tablename__ = "site"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    language: Mapped[str] = mapped_column(String(10), default="en")
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    last_failed_login: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token or web session: only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(10), default="bearer")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    user: Mapped[User] = relationship()


class Patient(Base):
    """A patient in screening. Name, record number and date of birth are personal data."""

    __tablename__ = "patient"
    id: Mapped[int] = mapped_column(primary_key=True)
    screening_number: Mapped[str] = mapped_column(String(20), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    full_name: Mapped[str] = mapped_column(String(200))
    medical_record_number: Mapped[str] = mapped_column(String(50))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="screening")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    site: Mapped[Site] = relationship()

    @property
    def site_code(self) -> str:
        return self.site.code


class ScreeningRecordVersion(Base):
    """One saved version of a patient's screening record (ScreeningRecord JSON, schema 1.0)."""

    __tablename__ = "screening_record"
    __table_args__ = (UniqueConstraint("patient_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    version: Mapped[int]
    schema_version: Mapped[str] = mapped_column(String(10))
    record: Mapped[dict[str, Any]]
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))


class EligibilityEvaluation(Base):
    """A stored eligibility decision, tied to the record version and protocol version it judged."""

    __tablename__ = "eligibility_evaluation"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("screening_record.id"))
    protocol_version: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]]
    evaluated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    evaluated_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))


class Participant(Base):
    """An enrolled patient: study id NET-001, NET-002, ... in order, without gaps."""

    __tablename__ = "participant"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), unique=True)
    study_number: Mapped[int] = mapped_column(unique=True)
    study_id: Mapped[str] = mapped_column(String(20), unique=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enrolled_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("eligibility_evaluation.id"))
    override_reason: Mapped[str | None] = mapped_column(Text)
    first_dose_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(30), default="enrolled")
    patient: Mapped[Patient] = relationship()


class Consent(Base):
    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    form_version: Mapped[str] = mapped_column(String(20))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    withdrawn_on: Mapped[dt.date | None] = mapped_column(Date)


class Visit(Base):
    """A protocol visit as it happened (done on a date) or was recorded as missed."""

    __tablename__ = "visit"
    __table_args__ = (UniqueConstraint("participant_id", "visit_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    visit_code: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # done | missed
    visit_date: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)


class DosingPeriod(Base):
    """Dosing at one dose level from start to stop (open while ongoing), with missed doses."""

    __tablename__ = "dosing_period"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    dose_level: Mapped[int]
    start_date: Mapped[dt.date] = mapped_column(Date)
    stop_date: Mapped[dt.date | None] = mapped_column(Date)
    missed_doses: Mapped[int] = mapped_column(default=0)
    stop_reason: Mapped[str | None] = mapped_column(
        String(30)
    )  # interruption | reduction | discontinued | completed
    adverse_event_id: Mapped[int | None] = mapped_column(ForeignKey("adverse_event.id"))


class LabResult(Base):
    __tablename__ = "lab_result"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    test: Mapped[str] = mapped_column(String(30))
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(String(20))
    lln: Mapped[float | None]
    uln: Mapped[float | None]
    collected_on: Mapped[dt.date] = mapped_column(Date)
    visit_code: Mapped[str | None] = mapped_column(String(20))
    ctcae_term: Mapped[str | None] = mapped_column(String(100))
    ctcae_grade: Mapped[int | None]
    ctcae_version: Mapped[str | None] = mapped_column(String(10))
    grading: Mapped[dict[str, Any] | None]


class VitalSigns(Base):
    __tablename__ = "vital_signs"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    measured_on: Mapped[dt.date] = mapped_column(Date)
    visit_code: Mapped[str | None] = mapped_column(String(20))
    systolic_mmhg: Mapped[int | None]
    diastolic_mmhg: Mapped[int | None]
    heart_rate_bpm: Mapped[int | None]
    weight_kg: Mapped[float | None]
    temperature_c: Mapped[float | None]
    ctcae_grades: Mapped[dict[str, Any] | None]


class AdverseEvent(Base):
    __tablename__ = "adverse_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    term: Mapped[str] = mapped_column(String(100))
    soc: Mapped[str] = mapped_column(String(100))
    ctcae_version: Mapped[str] = mapped_column(String(10))
    grade: Mapped[int]
    onset_date: Mapped[dt.date] = mapped_column(Date)
    resolved_date: Mapped[dt.date | None] = mapped_column(Date)
    serious: Mapped[bool] = mapped_column(default=False)
    serious_criteria: Mapped[list[Any]] = mapped_column(default=list)
    relatedness: Mapped[str] = mapped_column(String(20))
    action_taken: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    answers: Mapped[dict[str, Any] | None]
    suggested_grade: Mapped[int | None]
    recommendation: Mapped[dict[str, Any] | None]
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class TumourAssessment(Base):
    """Imaging for recurrence: no evidence of disease, or recurrence with its sites."""

    __tablename__ = "tumour_assessment"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    assessed_on: Mapped[dt.date] = mapped_column(Date)
    visit_code: Mapped[str | None] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))  # CT | MRI | PET-CT
    result: Mapped[str] = mapped_column(String(30))  # no_evidence_of_disease | recurrence
    recurrence_sites: Mapped[list[Any]] = mapped_column(default=list)  # local | nodal | liver | other_distant
    new_anticancer_therapy_on: Mapped[dt.date | None] = mapped_column(Date)


class Disposition(Base):
    __tablename__ = "disposition"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    phase: Mapped[str] = mapped_column(String(20))  # treatment | study
    status: Mapped[str] = mapped_column(String(30))  # completed | withdrawn | lost_to_follow_up | death | ...
    status_date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    cause_of_death: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("participant_id", "phase"),)


class DataQuery(Base):
    """A monitor's or coordinator's question about one field of one record."""

    __tablename__ = "data_query"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int]
    field: Mapped[str | None] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | answered | closed
    opened_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    answered_at: Mapped[dt.datetime | None]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    closed_at: Mapped[dt.datetime | None]


class AuditEntry(Base):
    """Append-only: who changed what, when, from what to what, and why; each entry hashes the previous."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime]
    user_id: Mapped[int | None]
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(10))  # insert | update | delete | event
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(60))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# Tables whose changes are not audited field by field: the audit log itself, and login tokens
# (a token is a secret; its creation is audited as a login event instead). Login throttling
# counters change on every attempt and are not study data. A password hash is audited as changed,
# never shown.
NOT_AUDITED = {"audit_log", "api_token"}
NOT_AUDITED_FIELDS = {("user_account", "failed_logins"), ("user_account", "last_failed_login")}
MASKED_FIELDS = {("user_account", "password_hash")}
