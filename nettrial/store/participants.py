"""Participants: lookup by id or study id, and where each stands in treatment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from nettrial.exceptions import NotFoundError
from nettrial.store.models import DosingPeriod, Participant, Patient

# Nearly every caller shows the patient and the site: load them in the same query.
_WITH_PATIENT = (joinedload(Participant.patient).joinedload(Patient.site),)


def get_participant(session: Session, participant_id: int | str) -> Participant:
    """A participant by database id or study id (``NET-001``)."""
    # isascii: "²" is a digit to str.isdigit but not to int().
    if isinstance(participant_id, str) and not (participant_id.isascii() and participant_id.isdigit()):
        found = session.scalar(
            select(Participant).options(*_WITH_PATIENT).where(Participant.study_id == participant_id)
        )
    else:
        number = int(participant_id)
        # No row has an id beyond the integer column's range (and the driver would overflow on it).
        found = session.get(Participant, number, options=_WITH_PATIENT) if 0 < number < 2**31 else None
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
