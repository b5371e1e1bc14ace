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
class ParticipantRecord:
    """A participant's own columns and their patient: what every participant page shows first."""

    id: int
    study_id: str
    status: str
    enrolled_at: dt.datetime
    first_dose_date: dt.date | None
    override_reason: str | None
    patient: PatientRecord


_PATIENT_FIELDS = tuple(f.name for f in fields(PatientRecord))
_PARTICIPANT_FIELDS = tuple(f.name for f in fields(ParticipantRecord) if f.name != "patient")

_participant, _patient = Participant.__table__, Patient.__table__
# One row: the participant's columns, then the patient's and the site code as patient_<name>.
_PARTICIPANT = (
    select(
        *(_participant.c[name] for name in _PARTICIPANT_FIELDS),
        *(_patient.c[name].label(f"patient_{name}") for name in _PATIENT_FIELDS if name != "site_code"),
        Site.__table__.c.code.label("patient_site_code"),
    )
    .join(_patient, _patient.c.id == _participant.c.patient_id)
    .join(Site.__table__, Site.__table__.c.id == _patient.c.site_id)
)
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
    """A participant by database id or study id (``NET-001``), with the patient and site, in one query."""
    key = participant_key(reference)
    row = None
    if key is not None:
        statement = _BY_NUMBER if key[0] == "id" else _BY_STUDY_ID
        row = connection.execute(statement, {"key": key[1]}).first()
    if row is None:
        raise NotFoundError("participant", reference)
    values: dict[str, Any] = row._asdict()
    patient = PatientRecord(**{name: values[f"patient_{name}"] for name in _PATIENT_FIELDS})
    return ParticipantRecord(**{name: values[name] for name in _PARTICIPANT_FIELDS}, patient=patient)


def read_periods(connection: Connection, participant_id: int) -> list[Row[Any]]:
    """The participant's dosing periods in date order, as ``treatment.list_periods`` gives them."""
    return list(connection.execute(_PERIODS, {"participant_id": participant_id}))


def read_visits(connection: Connection, participant_id: int) -> list[Row[Any]]:
    """The participant's recorded visits in the order entered, as ``visits.list_visits`` gives them."""
    return list(connection.execute(_VISITS, {"participant_id": participant_id}))
