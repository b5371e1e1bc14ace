"""What a pseudonymised reader (the statistician) may see: no names, record numbers or full dates of birth.

Every route that returns personal data passes it through here, so the rule lives in one place; the
web pages use the same functions.
"""

from __future__ import annotations

import copy
from typing import Any

from nettrial.api.deps import Actor
from nettrial.store.models import Patient

PERSONAL_FIELDS = ("full_name", "medical_record_number", "date_of_birth")


def patient_view(patient: Patient, actor: Actor) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": patient.id,
        "screening_number": patient.screening_number,
        "site_code": patient.site.code,
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
