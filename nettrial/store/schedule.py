"""A participant's schedule: the protocol's visits dated from the first dose, each with where it stands.

The plan and the statuses are ``safety.schedule``'s (protocol.md §3); this module feeds them the
participant's record: the first dose date, the last dose once the dosing log says treatment ended
(the end-of-treatment visit counts from it), the gaps in the dosing log as interruptions, and the
visits recorded as done or missed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError
from nettrial.protocol.model import Protocol
from nettrial.safety.schedule import VisitStatus, plan_visits, visit_statuses
from nettrial.store import treatment
from nettrial.store.models import DosingPeriod, Participant, Visit
from nettrial.store.participant_record import ParticipantRecord
from nettrial.store.visits import list_visits


@dataclass(frozen=True, slots=True)
class ParticipantSchedule:
    first_dose_date: dt.date
    last_dose_date: dt.date | None
    interruptions: list[tuple[dt.date, dt.date]]
    today: dt.date
    statuses: list[VisitStatus]
    recorded: dict[str, Visit | Row[Any]]


def participant_schedule(
    session: Session, *, participant: Participant, protocol: Protocol, today: dt.date
) -> ParticipantSchedule:
    """Every planned visit with its window and status on ``today``."""
    periods, visits = treatment.list_periods(session, participant), list_visits(session, participant)
    return schedule_of(participant, periods, visits, protocol=protocol, today=today)


def schedule_of(
    participant: Participant | ParticipantRecord,
    periods: Sequence[DosingPeriod | Row[Any]],
    visits: Sequence[Visit | Row[Any]],
    *,
    protocol: Protocol,
    today: dt.date,
) -> ParticipantSchedule:
    """The schedule from the participant's dosing periods and visits, as models or as plain rows."""
    if participant.first_dose_date is None:
        raise ConflictError(
            "first_dose_date",
            f"{participant.study_id} has no first dose date yet: record the first dosing period",
        )
    recorded = {v.visit_code: v for v in visits}
    # A site's date may be a day ahead of the server's UTC date (store/_dates.py): never call a visit
    # recorded on the site's today "in the future".
    today = max([today, *(v.visit_date for v in recorded.values() if v.visit_date is not None)])
    gaps = treatment.interruptions(periods, today)
    planned = plan_visits(
        protocol, participant.first_dose_date, last_dose=treatment.last_dose(periods), interruptions=gaps
    )
    statuses = visit_statuses(
        planned,
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


def study_schedules(
    session: Session, participants: Sequence[Participant], *, protocol: Protocol, today: dt.date
) -> dict[int, ParticipantSchedule]:
    """The schedules of every participant with a first dose, by participant id, in two queries."""
    dosed = {p.id: p for p in participants if p.first_dose_date is not None}
    periods = treatment.periods_by_participant(session, dosed)
    visits: dict[int, list[Visit]] = defaultdict(list)
    for visit in session.scalars(select(Visit).where(Visit.participant_id.in_(dosed)).order_by(Visit.id)):
        visits[visit.participant_id].append(visit)
    return {
        pid: schedule_of(p, periods.get(pid, []), visits[pid], protocol=protocol, today=today)
        for pid, p in dosed.items()
    }
