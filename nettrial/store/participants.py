"""Participants: lookup by id or study id, and where each stands in treatment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from nettrial.exceptions import NotFoundError
from nettrial.store.models import DosingPeriod, Participant, Patient
from nettrial.store.participant_record import participant_key

# Nearly every caller shows the patient and the site: load them in the same query.
_WITH_PATIENT = (joinedload(Participant.patient).joinedload(Patient.site),)


def get_participant(session: Session, participant_id: int | str) -> Participant:
    """A participant by database id or study id (``NET-001``)."""
    key = participant_key(participant_id)
    found = None
    if key is not None and key[0] == "id":
        found = session.get(Participant, key[1], options=_WITH_PATIENT)
    elif key is not None:
        found = session.scalar(
            select(Participant).options(*_WITH_PATIENT).where(Participant.study_id == key[1])
        )
    if found is None:
        raise NotFoundError("participant", participant_id)
    return found


def current_dose_level(session: Session, participant: Participant) -> int:
    """The dose level of the latest dosing period (the starting level 0 before any dosing)."""
    latest = session.scalar(
        select(DosingPeriod)
        .where(DosingPeriod.participant_id == participant.id)
        .order_by(DosingPeriod.start_date.desc(), DosingPeriod.id.desc())
        .limit(1)
    )
    return 0 if latest is None else latest.dose_level
