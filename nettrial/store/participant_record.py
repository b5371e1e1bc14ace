"""A participant's record read as plain rows: the participant with the patient, dosing and visits.

The participant page's reads (``GET /participants/{id}`` and its schedule) are the service's most
frequent requests. Through an ORM session, which builds and tracks objects nobody changes, the
participant with their dosing and visits cost 1.4 ms of CPU; as prebuilt Core statements on one
connection, 0.56 ms (server CPU per read in benchmarks/api_load.py: 2.3 -> 1.6 ms). The rows carry
the models' attribute names, so ``treatment``'s and ``schedule``'s rules read them as they read the
models.

Nothing here writes: changes go through the ORM, where the audit trail is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from nettrial.exceptions import NotFoundError
from nettrial.store.models import DosingPeriod, Participant, Patient, Site, Visit


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The patient of a participant, with the attributes ``api.privacy.patient_view`` shows."""

    id: int
    screening_number: str
    site_code: str
    full_name: str
    medical_record_number: str
    date_of_birth: dt.date
    sex: str
    status: str


@dataclass(frozen=True, slots=True)
class LatestPeriod:
    """The participant's latest dosing period: their dose level and where they stand in treatment."""

    dose_level: int
    start_date: dt.date
    stop_date: dt.date | None
    stop_reason: str | None


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """A participant's own columns, their patient and their latest dosing period (None before any)."""

    id: int
    study_id: str
    status: str
    enrolled_at: dt.datetime
    first_dose_date: dt.date | None
    override_reason: str | None
    patient: PatientRecord
    latest_period: LatestPeriod | None


_PATIENT_FIELDS = tuple(f.name for f in fields(PatientRecord))
_PERIOD_FIELDS = tuple(f.name for f in fields(LatestPeriod))
_PARTICIPANT_FIELDS = tuple(
    f.name for f in fields(ParticipantRecord) if f.name not in ("patient", "latest_period")
)

_participant, _patient, _period = Participant.__table__, Patient.__table__, DosingPeriod.__table__
# The latest in the order read_periods gives them (start date, then id). The subquery reads its own
# alias of the table: the outer query joins dosing_period too.
_candidate = _period.alias("candidate")
_LATEST_PERIOD_ID = (
    select(_candidate.c.id)
    .where(_candidate.c.participant_id == _participant.c.id)
    .order_by(_candidate.c.start_date.desc(), _candidate.c.id.desc())
    .limit(1)
    .correlate(_participant)
    .scalar_subquery()
)
_site = Site.__table__
_patient_columns = {name: _patient.c.get(name) for name in _PATIENT_FIELDS} | {"site_code": _site.c.code}
# One row, its columns in the order of the records' fields: the participant's, the patient's (with
# the site code), and the latest dosing period's (NULL before any dosing).
_PARTICIPANT = (
    select(
        *(_participant.c[name] for name in _PARTICIPANT_FIELDS),
        *(_patient_columns[name].label(f"patient_{name}") for name in _PATIENT_FIELDS),
        *(_period.c[name].label(f"period_{name}") for name in _PERIOD_FIELDS),
    )
    .join(_patient, _patient.c.id == _participant.c.patient_id)
    .join(_site, _site.c.id == _patient.c.site_id)
    .outerjoin(_period, _period.c.id == _LATEST_PERIOD_ID)
)
_PATIENT_AT = len(_PARTICIPANT_FIELDS)
_PERIOD_AT = _PATIENT_AT + len(_PATIENT_FIELDS)
_BY_NUMBER = _PARTICIPANT.where(_participant.c.id == bindparam("key"))
_BY_STUDY_ID = _PARTICIPANT.where(_participant.c.study_id == bindparam("key"))
_PERIODS = (
    select(DosingPeriod.__table__)
    .where(DosingPeriod.participant_id == bindparam("participant_id"))
    .order_by(DosingPeriod.start_date, DosingPeriod.id)
)
_VISITS = (
    select(Visit.__table__).where(Visit.participant_id == bindparam("participant_id")).order_by(Visit.id)
)


def participant_key(reference: int | str) -> tuple[str, int | str] | None:
    """How ``reference`` names a participant: ``("id", 3)`` or ``("study_id", "NET-003")``.

    None for a number no row can have (zero, negative, or beyond the integer column's range, where
    the driver would overflow).
    """
    # isascii: "²" is a digit to str.isdigit but not to int().
    if isinstance(reference, str) and not (reference.isascii() and reference.isdigit()):
        return "study_id", reference
    number = int(reference)
    return ("id", number) if 0 < number < 2**31 else None


def read_participant(connection: Connection, reference: int | str) -> ParticipantRecord:
    """A participant by database id or study id (``NET-001``), with the patient, site and latest
    dosing period, in one query."""
    key = participant_key(reference)
    row = None
    if key is not None:
        statement = _BY_NUMBER if key[0] == "id" else _BY_STUDY_ID
        row = connection.execute(statement, {"key": key[1]}).first()
    if row is None:
        raise NotFoundError("participant", reference)
    # By position: cheaper than by name, and the statement's columns follow the fields' order.
    # dose_level is NOT NULL, so NULL there is the outer join finding no period.
    latest = LatestPeriod(*row[_PERIOD_AT:]) if row[_PERIOD_AT] is not None else None
    return ParticipantRecord(*row[:_PATIENT_AT], PatientRecord(*row[_PATIENT_AT:_PERIOD_AT]), latest)


def read_periods(connection: Connection, participant_id: int) -> list[Row[Any]]:
    """The participant's dosing periods in date order, as ``treatment.list_periods`` gives them."""
    return list(connection.execute(_PERIODS, {"participant_id": participant_id}))


def read_visits(connection: Connection, participant_id: int) -> list[Row[Any]]:
    """The participant's recorded visits in the order entered, as ``visits.list_visits`` gives them."""
    return list(connection.execute(_VISITS, {"participant_id": participant_id}))
