"""Time-to-event analysis datasets (CDISC ADaM ADTTE style): RFS, DMFS and OS, derived by the protocol.

Source: protocol.md 4 (every rule an *assumption* and a setting, ``endpoints.py``). The rules are a
pure function of one participant's plain facts (``derive`` over a ``Course``: first dose, imaging,
new anticancer therapy, death, scheduled scans, last date known alive); the store layer
(``time_to_event``) loads those facts with one query per table and adds nothing.

Columns: STUDYID; USUBJID (``<NCT id>-<study id>``); SUBJID (NET-001); PARAMCD (RFS, DMFS, OS); PARAM;
STARTDT (origin: the first dose); ADT (event or censoring date); AVAL (months, below); AVALU
("MONTHS"); ADY (days, ADT - STARTDT + 1: the origin is day 1); CNSR (ADaM: 0 event, 1 censored);
EVENT (1 event, 0 censored: lifelines' ``event_observed``); EVNTDESC (``Recurrence: liver``,
``Death``); CNSDTDSC (why censored on ADT); SRCDOM and SRCSEQ (the store table and row id that gave
ADT: ``tumour_assessment``, ``disposition``, ``dosing_period`` for day 1, or the record that gave
the last date known alive).

**AVAL** = ADY / ``DAYS_PER_MONTH`` = (ADT - STARTDT + 1 days) / 30.4375 (the mean Julian month,
365.25 / 12). Counting the origin as day 1 keeps AVAL > 0 for a censoring on day 1, which survival
software needs.

Rules and the decisions they needed:

- **Origin**: the first dose, the start of the first dosing period on or before the cut-off. A
  participant without one is not in the analysis: the row is not dropped silently but reported in
  ``frame.attrs["excluded"]`` with its reason (as is a censoring the ``exclude`` setting removes).
- **Adequate imaging**: a tumour assessment with a result (any method) dated after the origin and on
  or before the cut-off. A scan on or before the first dose is the baseline, not follow-up.
- **Events**: the first recurrence at a site the endpoint counts (RFS: local, nodal, liver, other
  distant; DMFS: liver, other distant) or death, whichever first. A recurrence and a death on the same
  day are described as the recurrence. OS counts death only.
- **No event**: censored at the last adequate imaging (DMFS: imaging showing no *distant* recurrence,
  so a local recurrence's scan counts), or at the last date known alive (OS, or ``no_event:
  last_known_alive``).
- **New anticancer therapy** (the earliest ``new_anticancer_therapy_on`` of any assessment): when it
  starts before the event, or there is no event, censored at the last adequate imaging on or before
  the day it starts. A recurrence on the day the therapy starts is an event: the therapy must start
  strictly before the event to censor it (therapy started for a recurrence found that day is not
  therapy *before* recurrence), and a scan on the day therapy starts is read as taken before it.
  A death after such therapy is censored the same way.
- **Missed scans**: a scheduled scan (``plan_visits``' imaging visits, window both ends included) is
  missed when its window closes with no adequate imaging in it: a scan on the window's last day
  keeps it, one the day after does not. The gap before an event is the run of scheduled scans whose
  windows open after the last adequate imaging before the event (the origin if none) and close
  before the event day. With at least ``missed_scheduled_scans_at_least`` of them (2) the event is
  censored at that last adequate imaging ("before the gap"). Any adequate imaging, in a window or
  not, ends a gap: the question is how long the event went unobserved. A death on the day of a
  scan has no gap before it and is an event.
- **No post-baseline imaging**: a censoring that needs a last adequate imaging where there is none is
  on day 1 (ADT = STARTDT), or excluded under the ``exclude`` setting. A death with no imaging at all
  is therefore an event unless the missed-scan rule applies (two scheduled windows closed before the
  death without a scan), when it is censored on day 1: protocol.md 4 puts both rules on any event.
- **Cut-off**: every fact dated after the cut-off is ignored, each by its own date (imaging by its
  date, therapy by its start, death by its date); the last date known alive is on or before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from nettrial.analysis._study import Source, StudyParticipant, load_participants
from nettrial.analysis.endpoints import (
    PARAMETERS,
    SITE_EVENTS,
    EndpointSettings,
    TimeToEvent,
    endpoint_settings,
)
from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol
from nettrial.safety.schedule import plan_visits

DAYS_PER_MONTH = 30.4375  # 365.25 / 12: AVAL = ADY / DAYS_PER_MONTH
AVALU = "MONTHS"
COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "PARAMCD",
    "PARAM",
    "STARTDT",
    "ADT",
    "AVAL",
    "AVALU",
    "ADY",
    "CNSR",
    "EVENT",
    "EVNTDESC",
    "CNSDTDSC",
    "SRCDOM",
    "SRCSEQ",
)
ASSESSMENT_TABLE = "tumour_assessment"

__all__ = [
    "COLUMNS",
    "DAYS_PER_MONTH",
    "Course",
    "Exclusion",
    "Outcome",
    "Scan",
    "ScheduledScan",
    "Source",
    "derive",
    "scheduled_scans",
    "time_to_event",
    "time_to_event_frame",
    "time_to_event_tables",
]


# --- a participant's plain facts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scan:
    """Adequate imaging: a tumour assessment with a result. ``sites`` empty: no evidence of disease.

    ``therapy_on`` is the new anticancer therapy recorded with it; ``seq`` its row id.
    """

    on: dt.date
    sites: tuple[str, ...] = ()
    therapy_on: dt.date | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduledScan:
    """A scheduled imaging visit and its window (both ends included)."""

    id: str
    earliest: dt.date
    latest: dt.date


@dataclass(frozen=True, slots=True)
class Course:
    """What the rules need to know about one participant (no cut-off applied yet)."""

    first_dose: Source | None
    scans: tuple[Scan, ...] = ()
    scheduled: tuple[ScheduledScan, ...] = ()
    death: Source | None = None
    last_alive: Source | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """An event or a censoring, with the rule that decided it and the record that gave its date."""

    start: dt.date
    end: dt.date
    event: bool
    description: str
    rule: str  # "event" or the censoring rule's name in the settings
    source: Source
    missed: tuple[str, ...] = field(default=())  # scheduled scans missed before the event

    @property
    def days(self) -> int:
        """ADY: the origin is day 1."""
        return (self.end - self.start).days + 1

    @property
    def months(self) -> float:
        """AVAL: ``days`` / ``DAYS_PER_MONTH``."""
        return self.days / DAYS_PER_MONTH

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "event": self.event,
            "description": self.description,
            "rule": self.rule,
            "source": {"table": self.source.table, "row_id": self.source.row_id},
            "missed": list(self.missed),
            "days": self.days,
            "months": self.months,
        }

    def explain(self) -> str:
        what = "event" if self.event else "censored"
        missed = f"; missed scans: {', '.join(self.missed)}" if self.missed else ""
        return (
            f"{what} on day {self.days} ({self.end}, {self.months:.2f} months from {self.start}): "
            f"{self.description} [rule {self.rule}; {self.source.table} {self.source.row_id}]{missed}"
        )


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a participant is not in the analysis of an endpoint."""

    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason}

    def explain(self) -> str:
        return f"not analysed: {self.reason}"


def scheduled_scans(protocol: Protocol, first_dose: dt.date) -> tuple[ScheduledScan, ...]:
    """The imaging visits of the protocol's schedule for this first dose, in date order."""
    return tuple(
        ScheduledScan(v.id, v.earliest, v.latest)
        for v in plan_visits(protocol, first_dose)
        if v.kind == "imaging"
    )


# --- the rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    on: dt.date
    description: str
    source: Source
    scan: Scan | None  # the scan that found it (a recurrence)


def _event_sites(scan: Scan, endpoint: TimeToEvent) -> list[str]:
    return [s for s in scan.sites if endpoint.counts(SITE_EVENTS.get(s, ""))]


def _first_event(scans: Sequence[Scan], death: Source | None, endpoint: TimeToEvent) -> _Event | None:
    recurrence = next((s for s in scans if _event_sites(s, endpoint)), None)
    found = None
    if recurrence is not None:
        sites = ", ".join(_event_sites(recurrence, endpoint))
        source = Source(recurrence.on, ASSESSMENT_TABLE, recurrence.seq)
        found = _Event(recurrence.on, f"Recurrence: {sites}", source, recurrence)
    if death is not None and endpoint.counts("death") and (found is None or death.on < found.on):
        found = _Event(death.on, "Death", death, None)
    return found


def _therapy(course: Course, start: dt.date, cutoff: dt.date) -> Scan | None:
    """The assessment recording the earliest new anticancer therapy between the origin and the cut-off."""
    started = [s for s in course.scans if s.therapy_on is not None and start <= s.therapy_on <= cutoff]
    return min(started, key=lambda s: (s.therapy_on, s.seq or 0), default=None)


def _at_imaging(
    course: Course, start: dt.date, last: Scan | None, description: str, rule: str, endpoint: TimeToEvent
) -> Outcome | Exclusion:
    """Censored at ``last`` adequate imaging, or by the no-post-baseline-imaging rule without one."""
    if last is not None:
        return Outcome(start, last.on, False, description, rule, Source(last.on, ASSESSMENT_TABLE, last.seq))
    if endpoint.censoring.no_post_baseline_imaging == "exclude":
        return Exclusion(f"no post-baseline imaging ({rule}; no_post_baseline_imaging: exclude)")
    before = "" if rule == "no_event" else f" before {_WHAT[rule]}"
    return Outcome(start, start, False, f"No post-baseline imaging{before}: day 1", rule, course.first_dose)


_WHAT = {"new_anticancer_therapy": "new anticancer therapy", "event_after_missed_scans": "the missed scans"}


def _gap(
    course: Course, scans: Sequence[Scan], event: _Event, start: dt.date
) -> tuple[Scan | None, list[str]]:
    """The last adequate imaging before the event, and the scheduled scans missed since then."""
    before = [s for s in scans if s.on < event.on or (s.on == event.on and s is not event.scan)]
    last = before[-1] if before else None
    since = last.on if last is not None else start
    missed = [v.id for v in course.scheduled if v.earliest > since and v.latest < event.on]
    return last, missed


def derive(course: Course, endpoint: TimeToEvent, cutoff: dt.date) -> Outcome | Exclusion:
    """The event or censoring of one participant for one endpoint, by the rules in the module docstring.

    Parameters
    ----------
    course
        The participant's facts; ``course.last_alive`` must be on or before ``cutoff``.
    endpoint
        The endpoint's settings (``endpoint_settings(protocol).rfs`` and the like).
    cutoff
        The data cut-off: facts dated after it are ignored.

    Returns
    -------
    Outcome or Exclusion
        An ``Outcome`` (``explain()`` says which rule decided it), or an ``Exclusion`` with its reason.
    """
    if course.first_dose is None or course.first_dose.on > cutoff:
        return Exclusion("no first dose on or before the cut-off: the origin (first dose) is unknown")
    start = course.first_dose.on
    scans = sorted((s for s in course.scans if start < s.on <= cutoff), key=lambda s: (s.on, s.seq or 0))
    death = course.death if course.death is not None and start <= course.death.on <= cutoff else None
    event = _first_event(scans, death, endpoint)
    rules = endpoint.censoring

    therapy = _therapy(course, start, cutoff) if rules.new_anticancer_therapy else None
    if therapy is not None and (event is None or therapy.therapy_on < event.on):
        before = [s for s in scans if s.on <= therapy.therapy_on]
        description = "Last adequate imaging before new anticancer therapy"
        return _at_imaging(
            course, start, before[-1] if before else None, description, "new_anticancer_therapy", endpoint
        )

    if event is not None:
        if rules.event_after_missed_scans is not None:
            last, missed = _gap(course, scans, event, start)
            if len(missed) >= rules.event_after_missed_scans.missed_scheduled_scans_at_least:
                description = f"Last adequate imaging before {len(missed)} missed scans"
                outcome = _at_imaging(course, start, last, description, "event_after_missed_scans", endpoint)
                return replace(outcome, missed=tuple(missed)) if isinstance(outcome, Outcome) else outcome
        return Outcome(start, event.on, True, event.description, "event", event.source)

    if rules.no_event == "last_known_alive":
        alive = course.last_alive
        if alive is not None and alive.on > cutoff:
            raise InputError("last_alive", f"{alive.on} is after the cut-off {cutoff}")
        if alive is None or alive.on < start:
            alive = course.first_dose
        return Outcome(start, alive.on, False, "Last known alive", "no_event", alive)
    description = "Last adequate imaging without recurrence"
    return _at_imaging(course, start, scans[-1] if scans else None, description, "no_event", endpoint)


# --- tables ------------------------------------------------------------------------------------------


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_DTYPES.get(c, "object")) for c in COLUMNS})


_DTYPES = {"AVAL": "float64", "ADY": "int64", "CNSR": "int64", "EVENT": "int64", "SRCSEQ": "Int64"}


def time_to_event_frame(
    courses: Iterable[tuple[str, Course]], endpoint: TimeToEvent, cutoff: dt.date, *, study_id: str
) -> pd.DataFrame:
    """The ADTTE rows of one endpoint for participants given as plain facts (no database).

    Parameters
    ----------
    courses
        (study id, course) pairs, in the order the rows should take.
    endpoint
        The endpoint's settings.
    cutoff
        The data cut-off.
    study_id
        STUDYID (the NCT id); USUBJID is ``<study_id>-<study id>``.

    Returns
    -------
    pandas.DataFrame
        One row per analysed participant, columns ``COLUMNS``; ``attrs["excluded"]`` lists the
        participants left out (USUBJID, SUBJID, PARAMCD, REASON), ``attrs["cutoff"]`` the cut-off
        and ``attrs["settings"]`` the endpoint's settings with their sources.
    """
    rows, excluded = [], []
    param = f"{endpoint.name[:1].upper()}{endpoint.name[1:]} (months)"
    for subject, course in courses:
        usubjid = f"{study_id}-{subject}"
        outcome = derive(course, endpoint, cutoff)
        if isinstance(outcome, Exclusion):
            excluded.append(
                {"USUBJID": usubjid, "SUBJID": subject, "PARAMCD": endpoint.id, "REASON": outcome.reason}
            )
            continue
        rows.append(
            {
                "STUDYID": study_id,
                "USUBJID": usubjid,
                "SUBJID": subject,
                "PARAMCD": endpoint.id,
                "PARAM": param,
                "STARTDT": outcome.start,
                "ADT": outcome.end,
                "AVAL": outcome.months,
                "AVALU": AVALU,
                "ADY": outcome.days,
                "CNSR": 0 if outcome.event else 1,
                "EVENT": 1 if outcome.event else 0,
                "EVNTDESC": outcome.description if outcome.event else None,
                "CNSDTDSC": None if outcome.event else outcome.description,
                "SRCDOM": outcome.source.table,
                "SRCSEQ": outcome.source.row_id,
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else _empty()
    frame = frame.astype(_DTYPES)
    frame.attrs["excluded"] = excluded
    frame.attrs["cutoff"] = cutoff.isoformat()
    frame.attrs["settings"] = endpoint.to_dict()
    return frame


def course_of(participant: StudyParticipant, protocol: Protocol, cutoff: dt.date) -> Course:
    """A stored participant's facts as the rules read them."""
    first = participant.first_dose(cutoff)
    death = participant.death(cutoff)
    first_dose = Source(first.start_date, "dosing_period", first.row_id) if first is not None else None
    return Course(
        first_dose=first_dose,
        scans=tuple(
            Scan(a.assessed_on, tuple(a.recurrence_sites), a.new_anticancer_therapy_on, a.row_id)
            for a in participant.assessments
        ),
        scheduled=scheduled_scans(protocol, first_dose.on) if first_dose is not None else (),
        death=Source(death.status_date, "disposition", death.row_id) if death is not None else None,
        last_alive=participant.last_alive,
    )


def time_to_event_tables(
    session: Session,
    protocol: Protocol,
    cutoff: dt.date,
    *,
    settings: EndpointSettings | None = None,
    parameters: Sequence[str] = PARAMETERS,
) -> dict[str, pd.DataFrame]:
    """The ADTTE tables of the study, by PARAMCD (RFS, DMFS, OS), from one load of the database.

    Parameters
    ----------
    session
        A session on the study database.
    protocol
        The protocol (its NCT id, schedule and endpoints).
    cutoff
        The data cut-off date.
    settings
        Endpoint settings (default: the protocol file's, ``endpoint_settings(protocol)``).
    parameters
        Which endpoints to derive.

    Returns
    -------
    dict of str to pandas.DataFrame
        One table per endpoint, as ``time_to_event_frame`` describes, in study-number order.
    """
    settings = settings or endpoint_settings(protocol)
    endpoints = [settings.endpoint(p) for p in parameters]
    participants = load_participants(session, cutoff)
    courses = [(p.study_id, course_of(p, protocol, cutoff)) for p in participants]
    study_id = protocol.identity.nct_id
    return {e.id: time_to_event_frame(courses, e, cutoff, study_id=study_id) for e in endpoints}


def time_to_event(
    session: Session,
    protocol: Protocol,
    cutoff: dt.date,
    *,
    parameter: str = "RFS",
    settings: EndpointSettings | None = None,
) -> pd.DataFrame:
    """The ADTTE table of one endpoint (RFS by default); see ``time_to_event_tables``.

    Parameters
    ----------
    session, protocol, cutoff, settings
        As for ``time_to_event_tables``.
    parameter
        RFS, DMFS or OS.

    Returns
    -------
    pandas.DataFrame
        Columns ``COLUMNS``; the participants left out and why in ``attrs["excluded"]``.
    """
    return time_to_event_tables(session, protocol, cutoff, settings=settings, parameters=(parameter,))[
        parameter
    ]
