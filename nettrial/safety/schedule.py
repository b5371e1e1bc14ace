"""The schedule of assessments: which visit is due when, and where each one stands.

Source: protocol.md §3 (an assumption, kept as data in the protocol file's ``schedule:`` section):
screening on days -28 to -1 before the first dose (C1D1); C1D1, C1D15, C2D1, C2D15, then D1 of
cycles 3-6 within ± 3 days; end of treatment 30 days (± 7) after the last dose; imaging every
3 months (± 14 days) from C1D1 for 2 years, then every 6 months to year 5. "A visit is *overdue* when
its window has closed without a record."

``plan_visits`` turns the protocol's schedule and a patient's first dose into dated visits, each
with its window and the rule that put it there; ``visit_statuses`` compares them with what was
recorded on a given day. Nothing here knows a particular drug or visit: the protocol file does.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Literal

from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol

VisitKind = Literal["screening", "treatment", "end_of_treatment", "imaging"]
Anchor = Literal["first_dose", "last_dose", "planned_last_dose"]
Status = Literal["upcoming", "due", "overdue", "done", "missed"]

_NOTHING_DONE: Mapping[str, date] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    """A visit with its target date and window (both ends inclusive), and the rule that dated it."""

    id: str
    kind: VisitKind
    target: date
    earliest: date
    latest: date
    anchor: Anchor
    rule: str


@dataclass(frozen=True, slots=True)
class VisitStatus:
    """Where a planned visit stands on a day.

    ``done_on``, ``in_window`` and ``days_from_target`` (negative: before the target) are set only
    for a visit recorded as done.
    """

    visit: PlannedVisit
    status: Status
    done_on: date | None
    in_window: bool | None
    days_from_target: int | None
    reason: str


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later, or the last day of that month if it is shorter.

    2026-01-31 + 1 month is 2026-02-28; 2027-11-30 + 3 months is 2028-02-29.
    """
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _window(days: int) -> str:
    return f" ± {_days(days)}" if days else ", no window"


def _around(target: date, window_days: int) -> tuple[date, date]:
    return target - timedelta(days=window_days), target + timedelta(days=window_days)


def _checked_interruptions(
    interruptions: Sequence[tuple[date, date]], first_dose: date
) -> list[tuple[date, date]]:
    """The interruptions in date order, after checking each is a period on or after the first dose."""
    for i, (start, end) in enumerate(interruptions):
        if end < start:
            raise InputError(f"interruptions[{i}]", f"ends on {end}, before it starts on {start}")
        if start < first_dose:
            raise InputError(f"interruptions[{i}]", f"starts on {start}, before the first dose {first_dose}")
    order = sorted(range(len(interruptions)), key=lambda i: interruptions[i][0])
    for before, after in pairwise(order):
        (start, end), next_start = interruptions[before], interruptions[after][0]
        # Overlapping periods would count the shared days twice when they move the visits.
        if next_start <= end:
            raise InputError(
                f"interruptions[{after}]",
                f"starts on {next_start}, within interruptions[{before}] ({start} to {end})",
            )
    return [interruptions[i] for i in order]


def _shifted(unshifted: date, interruptions: list[tuple[date, date]]) -> date:
    """The date moved later by every interruption (in date order) that starts before it.

    Each interruption is compared with the date as already moved by the earlier ones, so a visit never
    lands inside an interruption: treatment days are counted, interrupted days are not.
    """
    moved = unshifted
    for start, end in interruptions:
        if start < moved:
            moved += timedelta(days=(end - start).days + 1)
    return moved


def _moved(unshifted: date, shifted: date) -> str:
    if shifted == unshifted:
        return ""
    return f", moved {_days((shifted - unshifted).days)} later by dose interruptions"


def plan_visits(
    protocol: Protocol,
    first_dose: date,
    *,
    last_dose: date | None = None,
    interruptions: Sequence[tuple[date, date]] = (),
) -> list[PlannedVisit]:
    """Every visit of ``protocol``'s schedule for a patient whose first dose (C1D1) is ``first_dose``.

    Treatment visits fall on study day (cycle - 1) x cycle_days + day, study day 1 being the first dose.
    Dose interruptions (inclusive date periods) move later treatment visits, and the planned last
    dose, only when the schedule's ``interruptions_shift_cycles`` is true. The end-of-treatment visit
    counts from ``last_dose`` when it is known, else from the planned last dose (the last day of the
    last cycle). Imaging counts calendar months from the first dose (protocol.md §3). Visits come in
    date order; visits on the same day keep the protocol's order.
    """
    schedule, treatment = protocol.schedule, protocol.treatment
    if last_dose is not None and last_dose < first_dose:
        raise InputError("last_dose", f"{last_dose} is before the first dose on {first_dose}")
    periods = _checked_interruptions(interruptions, first_dose)
    if not schedule.interruptions_shift_cycles:
        periods = []  # the protocol keeps cycles on the calendar: an interruption moves no visit

    screening = schedule.screening
    visits = [
        PlannedVisit(
            id="SCREENING",
            kind="screening",
            target=first_dose + timedelta(days=screening.to_day),
            earliest=first_dose + timedelta(days=screening.from_day),
            latest=first_dose + timedelta(days=screening.to_day),
            anchor="first_dose",
            rule=(
                f"SCREENING: from {_days(-screening.from_day)} to {_days(-screening.to_day)} before the "
                f"first dose on {first_dose} (days {screening.from_day} to {screening.to_day}), "
                "target the last of them"
            ),
        )
    ]

    for visit in schedule.visits:
        study_day = (visit.cycle - 1) * treatment.cycle_days + visit.day
        unshifted = first_dose + timedelta(days=study_day - 1)
        target = _shifted(unshifted, periods)
        earliest, latest = _around(target, visit.window_days)
        where = f"cycle {visit.cycle} day {visit.day}, {treatment.cycle_days}-day cycles"
        visits.append(
            PlannedVisit(
                id=visit.id,
                kind="treatment",
                target=target,
                earliest=earliest,
                latest=latest,
                anchor="first_dose",
                rule=(
                    f"{visit.id}: study day {study_day} ({where}){_window(visit.window_days)}"
                    f"{_moved(unshifted, target)}"
                ),
            )
        )

    eot = schedule.end_of_treatment
    if last_dose is not None:
        anchor: Anchor = "last_dose"
        counted_from = f"the last dose on {last_dose}"
    else:
        anchor = "planned_last_dose"
        unshifted = first_dose + timedelta(days=treatment.cycles * treatment.cycle_days - 1)
        last_dose = _shifted(unshifted, periods)
        counted_from = (
            f"the planned last dose on {last_dose} (end of {treatment.cycles} cycles of "
            f"{treatment.cycle_days} days{_moved(unshifted, last_dose)})"
        )
    target = last_dose + timedelta(days=eot.days_after_last_dose)
    earliest, latest = _around(target, eot.window_days)
    visits.append(
        PlannedVisit(
            id="EOT",
            kind="end_of_treatment",
            target=target,
            earliest=earliest,
            latest=latest,
            anchor=anchor,
            rule=f"EOT: {_days(eot.days_after_last_dose)} after {counted_from}{_window(eot.window_days)}",
        )
    )

    start = 0
    for phase in schedule.imaging:
        for month in range(start + phase.every_months, phase.until_months + 1, phase.every_months):
            target = add_months(first_dose, month)
            earliest, latest = _around(target, phase.window_days)
            visits.append(
                PlannedVisit(
                    id=f"IMG-M{month:02d}",
                    kind="imaging",
                    target=target,
                    earliest=earliest,
                    latest=latest,
                    anchor="first_dose",
                    rule=(
                        f"IMG-M{month:02d}: {month} months after the first dose on {first_dose} (every "
                        f"{phase.every_months} months to month {phase.until_months})"
                        f"{_window(phase.window_days)}"
                    ),
                )
            )
        start = phase.until_months

    return sorted(visits, key=lambda v: v.target)  # sorted() is stable: same-day visits keep their order


def _checked_records(
    visits: Sequence[PlannedVisit], done: Mapping[str, date], missed: set[str], today: date
) -> None:
    ids = [v.id for v in visits]
    for name, recorded in (("done", done), ("missed", missed)):
        for visit_id in sorted(recorded):
            if visit_id not in ids:
                raise InputError(f"{name}.{visit_id}", "is not a visit of this schedule", allowed=ids)
    for visit_id, day in done.items():
        if visit_id in missed:
            raise InputError(
                f"missed.{visit_id}", f"is also recorded as done on {day}: record a visit as one or the other"
            )
        if day > today:
            raise InputError(f"done.{visit_id}", f"{day} is after today ({today})")


def _status(visit: PlannedVisit, today: date, done_on: date | None, missed: bool) -> VisitStatus:
    window = f"window {visit.earliest} to {visit.latest}, target {visit.target}"
    if done_on is not None:
        offset = (done_on - visit.target).days
        if done_on < visit.earliest:
            how = f"{_days((visit.earliest - done_on).days)} early, outside its window ({window})"
        elif done_on > visit.latest:
            how = f"{_days((done_on - visit.latest).days)} late, outside its window ({window})"
        else:
            how = f"within its window ({window})"
        in_window = visit.earliest <= done_on <= visit.latest
        return VisitStatus(visit, "done", done_on, in_window, offset, f"Done on {done_on}, {how}.")
    if missed:
        return VisitStatus(visit, "missed", None, None, None, f"Recorded as not done ({window}).")
    if today < visit.earliest:
        reason = f"Not yet due: its window opens in {_days((visit.earliest - today).days)} ({window})."
        return VisitStatus(visit, "upcoming", None, None, None, reason)
    if today <= visit.latest:
        left = (visit.latest - today).days
        closes = "closes today" if left == 0 else f"closes in {_days(left)}"
        return VisitStatus(visit, "due", None, None, None, f"Due now: its window {closes} ({window}).")
    ago = _days((today - visit.latest).days)
    reason = f"Overdue: its window closed {ago} ago with no record ({window})."
    return VisitStatus(visit, "overdue", None, None, None, reason)


def visit_statuses(
    visits: Sequence[PlannedVisit],
    *,
    today: date,
    done: Mapping[str, date] = _NOTHING_DONE,
    missed: Iterable[str] = (),
) -> list[VisitStatus]:
    """The status of each visit on ``today``, in the order given.

    A visit recorded in ``done`` (id -> date) is done, inside its window or not; one recorded in
    ``missed`` (explicitly not done) is missed. Any other is upcoming before its window opens, due
    while it is open (both ends included) and overdue once it has closed without a record
    (protocol.md §3).
    """
    missed_ids = set(missed)
    _checked_records(visits, done, missed_ids, today)
    return [_status(v, today, done.get(v.id), v.id in missed_ids) for v in visits]
