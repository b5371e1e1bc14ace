"""A participant's schedule: the protocol's visits dated from the first dose, each with where it stands.

The plan and the statuses are ``safety.schedule``'s (protocol.md §3); this module feeds them the
participant's record: the first dose date, the last dose once the dosing log says treatment ended
(the end-of-treatment visit counts from it), the gaps in the dosing log as interruptions, and the
visits recorded as done or missed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError
from nettrial.protocol.model import Protocol
from nettrial.safety.schedule import VisitStatus, plan_visits, visit_statuses
from nettrial.store import treatment
from nettrial.store.models import Participant, Visit
from nettrial.store.visits import list_visits


@dataclass(frozen=True, slots=True)
class ParticipantSchedule:
    first_dose_date: dt.date
    last_dose_date: dt.date | None
    interruptions: list[tuple[dt.date, dt.date]]
    today: dt.date
    statuses: list[VisitStatus]
    recorded: dict[str, Visit]


def participant_schedule(
    session: Session, *, participant: Participant, protocol: Protocol, today: dt.date
) -> ParticipantSchedule:
    """Every planned visit with its window and status on ``today``."""
    if participant.first_dose_date is None:
        raise ConflictError(
            "first_dose_date",
            f"{participant.study_id} has no first dose date yet: record the first dosing period",
        )
    periods = treatment.list_periods(session, participant)
    recorded = {v.visit_code: v for v in list_visits(session, participant)}
    # A site's date may be a day ahead of the server's UTC date (store/_dates.py): never call a visit
    # recorded on the site's today "in the future".
    today = max([today, *(v.visit_date for v in recorded.values() if v.visit_date is not None)])
    gaps = treatment.interruptions(periods, today)
    visits = plan_visits(
        protocol, participant.first_dose_date, last_dose=treatment.last_dose(periods), interruptions=gaps
    )
    statuses = visit_statuses(
        visits,
        today=today,
        done={code: v.visit_date for code, v in recorded.items() if v.status == "done"},
        missed=[code for code, v in recorded.items() if v.status == "missed"],
    )
    return ParticipantSchedule(
        first_dose_date=participant.first_dose_date,
        last_dose_date=treatment.last_dose(periods),
        interruptions=gaps,
        today=today,
        statuses=statuses,
        recorded=recorded,
    )
