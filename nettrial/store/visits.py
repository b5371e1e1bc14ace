"""Protocol visits as they happened: done on a date, or recorded as missed.

The visit codes are the schedule's (protocol.md §3, the protocol file's ``schedule:`` section, planned
by ``safety.schedule.plan_visits``): SCREENING, C1D1 ... C6D1, EOT and the imaging visits IMG-Mnn.
A visit is recorded once per participant; a correction is an update with a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError, InputError, NotFoundError
from nettrial.protocol.model import Protocol
from nettrial.safety.schedule import plan_visits
from nettrial.store._dates import not_in_future
from nettrial.store._rows import participant_rows
from nettrial.store.models import Participant, Visit

VISIT_STATUSES = ("done", "missed")
# Any date: a visit's code depends on the protocol's schedule, never on the day it is planned from.
_ANY_FIRST_DOSE = dt.date(2000, 1, 3)


def visit_codes(protocol: Protocol) -> tuple[str, ...]:
    """Every visit code of the protocol's schedule, in schedule order."""
    return tuple(v.id for v in plan_visits(protocol, _ANY_FIRST_DOSE))


def check_visit_code(protocol: Protocol, code: str | None, field: str = "visit_code") -> None:
    """Refuse a code that is not a visit of the schedule, listing the codes that are."""
    if code is not None and code not in visit_codes(protocol):
        raise InputError(field, f"{code!r} is not a visit of the schedule", allowed=visit_codes(protocol))


def list_visits(session: Session, participant: Participant) -> list[Visit]:
    return participant_rows(session, Visit, participant, Visit.id)


def get_visit(session: Session, *, participant: Participant, visit_code: str) -> Visit:
    found = session.scalar(
        select(Visit).where(Visit.participant_id == participant.id, Visit.visit_code == visit_code)
    )
    if found is None:
        raise NotFoundError(f"visit of {participant.study_id}", visit_code)
    return found


def _check(values: Mapping[str, Any]) -> None:
    if values["status"] not in VISIT_STATUSES:
        raise InputError("status", f"{values['status']!r} is not a visit status", allowed=VISIT_STATUSES)
    if values["status"] == "done" and values["visit_date"] is None:
        raise InputError("visit_date", "a visit recorded as done needs the date it was done")
    not_in_future(values["visit_date"], "visit_date")


def record_visit(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    visit_code: str,
    status: str,
    visit_date: dt.date | None = None,
    note: str | None = None,
) -> Visit:
    """Record a scheduled visit as done (with its date) or missed."""
    check_visit_code(protocol, visit_code)
    _check({"status": status, "visit_date": visit_date})
    existing = session.scalar(
        select(Visit.id).where(Visit.participant_id == participant.id, Visit.visit_code == visit_code)
    )
    if existing is not None:
        raise ConflictError("visit_code", f"{visit_code} is already recorded: correct it with a reason")
    visit = Visit(
        participant_id=participant.id, visit_code=visit_code, status=status, visit_date=visit_date, note=note
    )
    session.add(visit)
    session.flush()
    return visit


def update_visit(session: Session, *, visit: Visit, changes: Mapping[str, Any]) -> Visit:
    """Correct a recorded visit (status, date or note); the session's reason is audited with it."""
    values = {"status": visit.status, "visit_date": visit.visit_date, "note": visit.note, **changes}
    _check(values)
    for key in ("status", "visit_date", "note"):
        setattr(visit, key, values[key])
    session.flush()
    return visit
