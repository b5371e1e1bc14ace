"""What a pseudonymised reader (the statistician) may see: no names, record numbers or full dates of birth.

Every route that returns personal data passes it through here, so the rule lives in one place; the
web pages use the same functions.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from nettrial.api.deps import Actor
from nettrial.store.models import Patient
from nettrial.store.participant_record import PatientRecord

PERSONAL_FIELDS = ("full_name", "medical_record_number", "date_of_birth")


def patient_view(patient: Patient | PatientRecord, actor: Actor) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": patient.id,
        "screening_number": patient.screening_number,
        "site_code": patient.site_code,
        "sex": patient.sex,
        "birth_year": patient.date_of_birth.year,
        "status": patient.status,
    }
    if not actor.pseudonymised:
        view |= {
            "full_name": patient.full_name,
            "medical_record_number": patient.medical_record_number,
            "date_of_birth": patient.date_of_birth.isoformat(),
        }
    return view


def record_view(record: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """A screening record; for a pseudonymised reader the date of birth is reduced to its year."""
    if not actor.pseudonymised:
        return record
    shown = copy.deepcopy(record)
    identity = shown.get("identity", {})
    if "date_of_birth" in identity:
        identity["birth_year"] = int(str(identity.pop("date_of_birth"))[:4])
    return shown


def evaluation_view(result: dict[str, Any], date_of_birth: dt.date, actor: Actor) -> dict[str, Any]:
    """A stored eligibility result; for a pseudonymised reader the date of birth is reduced to its year.

    The age criterion's evidence quotes the date of birth ("born 1965-05-10, age on consent.date"),
    so every text of the result is searched for it, wherever the evidence put it.
    """
    if not actor.pseudonymised:
        return result
    full, year = date_of_birth.isoformat(), str(date_of_birth.year)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(full, year)
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    return scrub(result)


# Audited values that carry personal data: the patient's identifying fields, and the screening
# record (its identity holds the date of birth).
PERSONAL_AUDIT_FIELDS = {("patient", f) for f in PERSONAL_FIELDS} | {("screening_record", "record")}


def audit_value_view(entity: str, field: str | None, value: str | None, actor: Actor) -> str | None:
    """An audited old or new value; personal data is hidden from a reader without ``study.read``.

    The audit trail is read by roles that may not read personal data (an administrator), so the
    trail shows that a name changed, and when and why, without showing the name.
    """
    if value is None or actor.may("study.read") or (entity, field) not in PERSONAL_AUDIT_FIELDS:
        return value
    return "<hidden>"
