"""The dosing log: periods at one dose level from start to stop, with the doses missed in each.

Source: protocol.md §2 (the dose ladder, a setting in the protocol file's ``dose_levels``) and §4
(relative dose intensity, ``safety.dosing.dose_intensity``). A period is open while dosing goes on
and is stopped with a reason: interruption, reduction, discontinued or completed. Periods never
overlap, and none starts after a discontinuation or completion.

The first period is the first dose (C1D1): it sets the participant's first dose date, replacing the
planned date copied from the screening record at enrolment, since the schedule, the CTCAE baseline
and recurrence-free survival all count from the actual first dose (protocol.md §3-4). A new period
may not start before it; a correction of the earliest start (an update, with a reason) moves it.
Whenever it changes, the participant's results are graded again against the baseline it defines.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError, InputError
from nettrial.protocol.model import Protocol
from nettrial.safety import dosing
from nettrial.store import audit, measurements
from nettrial.store._dates import earliest_local_date, not_before, not_in_future
from nettrial.store._rows import get_row, participant_rows
from nettrial.store.db import lock_writes
from nettrial.store.models import AdverseEvent, DosingPeriod, Participant
from nettrial.store.participants import current_dose_level

STOP_REASONS = ("interruption", "reduction", "discontinued", "completed")
_ENDED = ("discontinued", "completed")
PERIOD_FIELDS = ("dose_level", "start_date", "stop_date", "missed_doses", "stop_reason", "adverse_event_id")


def list_periods(session: Session, participant: Participant) -> list[DosingPeriod]:
    return participant_rows(session, DosingPeriod, participant, DosingPeriod.start_date, DosingPeriod.id)


def periods_by_participant(session: Session, participant_ids: Iterable[int]) -> dict[int, list[DosingPeriod]]:
    """The dosing logs of many participants in one query, each in date order (lists, overviews)."""
    found: dict[int, list[DosingPeriod]] = defaultdict(list)
    query = select(DosingPeriod).where(DosingPeriod.participant_id.in_(list(participant_ids)))
    for period in session.scalars(query.order_by(DosingPeriod.start_date, DosingPeriod.id)):
        found[period.participant_id].append(period)
    return found


def get_period(session: Session, period_id: int) -> DosingPeriod:
    return get_row(session, DosingPeriod, period_id, "dosing period")


def _check(
    session: Session,
    participant: Participant,
    protocol: Protocol,
    values: Mapping[str, Any],
    others: Sequence[DosingPeriod],
) -> None:
    levels = [lv.level for lv in protocol.dose_levels.levels]
    if values["dose_level"] not in levels:
        message = f"{values['dose_level']!r} is not a dose level of the protocol's ladder"
        raise InputError("dose_level", message, allowed=[str(level) for level in levels])
    start, stop, reason = values["start_date"], values["stop_date"], values["stop_reason"]
    if start is None:
        raise InputError("start_date", "is required and cannot be removed")
    not_in_future(start, "start_date")
    not_in_future(stop, "stop_date")
    # The study drug is given to participants: not before enrolment (in any site's calendar).
    not_before(start, earliest_local_date(participant.enrolled_at), "start_date", "enrolment")
    if stop is not None and stop < start:
        raise InputError("stop_date", f"{stop} is before the start {start}")
    if (stop is None) != (reason is None):
        field = "stop_reason" if stop is not None else "stop_date"
        raise InputError(
            field, "a stopped period needs both its stop date and why it stopped", allowed=STOP_REASONS
        )
    if reason is not None and reason not in STOP_REASONS:
        raise InputError("stop_reason", f"{reason!r} is not a reason to stop", allowed=STOP_REASONS)
    missed = values["missed_doses"]
    if missed is None or missed < 0:
        raise InputError("missed_doses", f"{missed!r} must be 0 or more")
    _check_adverse_event(session, participant, values["adverse_event_id"])
    later = [other for other in others if stop is not None and other.start_date > stop]
    if reason in _ENDED and later:
        raise ConflictError(
            "stop_reason", f"treatment cannot be {reason} on {stop}: period {later[0].id} starts after it"
        )
    for other in others:
        if other.stop_reason in _ENDED and other.stop_date is not None and other.stop_date < start:
            raise ConflictError(
                "start_date", f"treatment was {other.stop_reason} on {other.stop_date}: no period can follow"
            )
        other_end = other.stop_date or dt.date.max
        if start <= other_end and other.start_date <= (stop or dt.date.max):
            shown = f"{other.start_date} to {other.stop_date or 'ongoing'}"
            raise ConflictError(
                "start_date", f"overlaps dosing period {other.id} ({shown}): stop or correct that one first"
            )


def _check_adverse_event(session: Session, participant: Participant, adverse_event_id: int | None) -> None:
    if adverse_event_id is None:
        return
    event = session.get(AdverseEvent, adverse_event_id)
    if event is None or event.participant_id != participant.id:
        raise InputError("adverse_event_id", f"no adverse event {adverse_event_id} of {participant.study_id}")


def _as_dosed(periods: Sequence[DosingPeriod], today: dt.date) -> list[dosing.DosingPeriod]:
    """The log as the safety engine reads it: an open period counts up to today."""
    return [
        dosing.DosingPeriod(
            p.start_date, p.stop_date or max(p.start_date, today), p.dose_level, p.missed_doses
        )
        for p in periods
    ]


def _intensity(
    protocol: Protocol, first_dose: dt.date, periods: Sequence[DosingPeriod], today: dt.date
) -> dosing.DoseIntensity:
    try:
        return dosing.dose_intensity(protocol, first_dose, _as_dosed(periods, today))
    except InputError as error:
        # The engine names periods[i].missed_doses and the like; the request has one period's fields.
        raise InputError(error.field.rsplit(".", 1)[-1], error.detail, allowed=error.allowed) from None


def add_period(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    dose_level: int,
    start_date: dt.date,
    stop_date: dt.date | None = None,
    missed_doses: int = 0,
    stop_reason: str | None = None,
    adverse_event_id: int | None = None,
    today: dt.date | None = None,
) -> DosingPeriod:
    """Record a dosing period; the first one records the first dose."""
    lock_writes(session)  # two requests must not both find the same days free
    values = {
        "dose_level": dose_level,
        "start_date": start_date,
        "stop_date": stop_date,
        "missed_doses": missed_doses,
        "stop_reason": stop_reason,
        "adverse_event_id": adverse_event_id,
    }
    others = list_periods(session, participant)
    if others and start_date < others[0].start_date:
        raise InputError("start_date", f"{start_date} is before the first dose on {others[0].start_date}")
    _check(session, participant, protocol, values, others)
    period = DosingPeriod(participant_id=participant.id, **values)
    today = today or dt.datetime.now(dt.UTC).date()
    first_dose = others[0].start_date if others else start_date
    _intensity(protocol, first_dose, [*others, period], today)
    session.add(period)
    session.flush()
    if not others:
        planned = participant.first_dose_date
        reason = "first dose recorded" + (f" (planned for {planned})" if planned else "")
        _set_first_dose(session, participant, protocol, start_date, reason)
    return period


def _set_first_dose(
    session: Session, participant: Participant, protocol: Protocol, first_dose: dt.date, reason: str
) -> None:
    """Record the first dose (with its own audit reason) and grade the results again against it."""
    if participant.first_dose_date == first_dose:
        return
    session.flush()  # the caller's own changes keep the caller's reason
    with audit.because(session, reason):
        participant.first_dose_date = first_dose
    measurements.regrade(session, participant=participant, protocol=protocol, reason=reason)


def update_period(
    session: Session,
    *,
    period: DosingPeriod,
    protocol: Protocol,
    changes: Mapping[str, Any],
    today: dt.date | None = None,
) -> DosingPeriod:
    """Stop a period, or correct it; the session's reason is audited with the change.

    A correction that moves the earliest start moves the first dose with it.
    """
    for key in changes:
        if key not in PERIOD_FIELDS:
            raise InputError(key, "is not a field of a dosing period", allowed=PERIOD_FIELDS)
    lock_writes(session)
    participant = session.get(Participant, period.participant_id)
    values = {key: getattr(period, key) for key in PERIOD_FIELDS} | dict(changes)
    others = [p for p in list_periods(session, participant) if p.id != period.id]
    _check(session, participant, protocol, values, others)
    for key in PERIOD_FIELDS:
        setattr(period, key, values[key])
    everything = sorted([*others, period], key=lambda p: p.start_date)
    _intensity(protocol, everything[0].start_date, everything, today or dt.datetime.now(dt.UTC).date())
    session.flush()
    first = everything[0].start_date
    _set_first_dose(session, participant, protocol, first, f"first dose corrected to {first} (dosing log)")
    return period


@dataclass(frozen=True, slots=True)
class TreatmentSummary:
    """Where a participant stands in treatment on ``today``."""

    periods: list[DosingPeriod]
    state: str  # not_started | dosing | interrupted | discontinued | completed
    current_dose_level: int
    first_dose_date: dt.date | None
    last_dose_date: dt.date | None  # once treatment has ended
    dose_intensity: dosing.DoseIntensity | None


def state(periods: Sequence[DosingPeriod]) -> str:
    """Where treatment stands: read from the latest period alone (the last of ``periods``)."""
    if not periods:
        return "not_started"
    latest = periods[-1]
    if latest.stop_date is None:
        return "dosing"
    return latest.stop_reason if latest.stop_reason in _ENDED else "interrupted"


def last_dose(periods: Sequence[DosingPeriod]) -> dt.date | None:
    """The last dose, once a period was stopped as discontinued or completed."""
    return periods[-1].stop_date if periods and periods[-1].stop_reason in _ENDED else None


def interruptions(periods: Sequence[DosingPeriod], today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The days without dosing between periods (both ends included), and an interruption under way."""
    one = dt.timedelta(days=1)
    gaps = []
    for before, after in pairwise(periods):
        if before.stop_date is not None and after.start_date - before.stop_date > one:
            gaps.append((before.stop_date + one, after.start_date - one))
    if state(periods) == "interrupted" and periods[-1].stop_date < today:
        gaps.append((periods[-1].stop_date + one, today))
    return gaps


def summary(
    session: Session, *, participant: Participant, protocol: Protocol, today: dt.date
) -> TreatmentSummary:
    """The dosing log with the state of treatment and the dose intensity up to ``today``."""
    periods = list_periods(session, participant)
    intensity = None
    if periods:
        intensity = _intensity(protocol, periods[0].start_date, periods, today)
    return TreatmentSummary(
        periods=periods,
        state=state(periods),
        current_dose_level=current_dose_level(session, participant),
        first_dose_date=participant.first_dose_date,
        last_dose_date=last_dose(periods),
        dose_intensity=intensity,
    )
