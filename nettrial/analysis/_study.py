"""The study as the analysis datasets read it: each participant's plain facts.

One query per table, whatever the number of participants (a registry may hold thousands): the
participants with their patient and site, then every dosing period, tumour assessment and
disposition, and the latest dated record of each kind on or before the cut-off (last known alive).
``subjects.py`` and ``rfs.py`` build their tables from these facts; nothing here decides a rule.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from nettrial.store.models import (
    AdverseEvent,
    Disposition,
    DosingPeriod,
    LabResult,
    Participant,
    Patient,
    Site,
    TumourAssessment,
    Visit,
    VitalSigns,
)


@dataclass(frozen=True, slots=True)
class Source:
    """A date and the record that gave it: store table and row id (ADaM SRCDOM / SRCSEQ)."""

    on: dt.date
    table: str
    row_id: int


@dataclass(frozen=True, slots=True)
class Dosing:
    """A dosing period, named as in the store so that ``store.treatment.last_dose`` reads it."""

    row_id: int
    dose_level: int
    start_date: dt.date
    stop_date: dt.date | None
    missed_doses: int
    stop_reason: str | None


@dataclass(frozen=True, slots=True)
class Assessment:
    row_id: int
    assessed_on: dt.date
    result: str
    recurrence_sites: tuple[str, ...]
    new_anticancer_therapy_on: dt.date | None


@dataclass(frozen=True, slots=True)
class Ending:
    """A disposition: how the treatment or the study ended."""

    row_id: int
    phase: str
    status: str
    status_date: dt.date
    cause_of_death: str | None


@dataclass(frozen=True, slots=True)
class StudyParticipant:
    """One participant's facts; records are in date order, each kind as stored (no cut-off applied)."""

    id: int
    patient_id: int
    study_number: int
    study_id: str
    site_code: str
    sex: str
    date_of_birth: dt.date
    enrolled_at: dt.datetime
    evaluation_id: int | None
    periods: tuple[Dosing, ...]
    assessments: tuple[Assessment, ...]
    endings: tuple[Ending, ...]
    last_alive: Source  # the latest dated record on or before the cut-off, enrolment at the earliest

    @property
    def enrolled_on(self) -> dt.date:
        """The UTC calendar date of enrolment."""
        return self.enrolled_at.astimezone(dt.UTC).date()

    def death(self, cutoff: dt.date) -> Ending | None:
        """The recorded death on or before the cut-off (both phases carry it when it ended treatment)."""
        deaths = [e for e in self.endings if e.status == "death" and e.status_date <= cutoff]
        return min(deaths, key=lambda e: (e.status_date, e.phase != "study", e.row_id), default=None)

    def ending(self, phase: str, cutoff: dt.date) -> Ending | None:
        return next((e for e in self.endings if e.phase == phase and e.status_date <= cutoff), None)

    def first_dose(self, cutoff: dt.date) -> Dosing | None:
        """The first dosing period started on or before the cut-off (its start is the first dose)."""
        return next((p for p in self.periods if p.start_date <= cutoff), None)


# The dated records that show a participant alive on their date, in the order that breaks ties.
# Lost to follow-up is dated when the site gave up, not when it last saw the participant; a death is
# the last day alive (ADaM practice: LSTALVDT = DTHDT for a participant who died).
_ALIVE_ON = (
    (Visit, Visit.visit_date, Visit.status == "done"),
    (DosingPeriod, DosingPeriod.start_date, None),
    (DosingPeriod, DosingPeriod.stop_date, None),
    (TumourAssessment, TumourAssessment.assessed_on, None),
    (TumourAssessment, TumourAssessment.new_anticancer_therapy_on, None),
    (LabResult, LabResult.collected_on, None),
    (VitalSigns, VitalSigns.measured_on, None),
    (AdverseEvent, AdverseEvent.onset_date, None),
    (AdverseEvent, AdverseEvent.resolved_date, None),
    (Disposition, Disposition.status_date, Disposition.status != "lost_to_follow_up"),
)


def _latest(
    session: Session, model: type, column: Any, condition: Any, cutoff: dt.date
) -> Iterable[tuple[int, Source]]:
    """Per participant, the latest ``column`` date on or before the cut-off and its lowest row id."""
    where = [column.is_not(None), column <= cutoff, *([condition] if condition is not None else [])]
    latest = (
        select(model.participant_id.label("pid"), func.max(column).label("on"))
        .where(*where)
        .group_by(model.participant_id)
        .subquery()
    )
    rows = session.execute(
        select(model.participant_id, latest.c.on, func.min(model.id))
        .join(latest, and_(model.participant_id == latest.c.pid, column == latest.c.on))
        .where(*where)
        .group_by(model.participant_id, latest.c.on)
    )
    table = model.__tablename__
    for pid, on, row_id in rows:
        yield pid, Source(on, table, row_id)


def last_alive(session: Session, cutoff: dt.date) -> dict[int, Source]:
    """Each participant's latest dated record on or before the cut-off (one query per kind of record)."""
    found: dict[int, Source] = {}
    for model, column, condition in _ALIVE_ON:
        for pid, source in _latest(session, model, column, condition, cutoff):
            if pid not in found or source.on > found[pid].on:
                found[pid] = source
    return found


def _grouped(rows: Iterable[tuple[int, object]]) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for pid, item in rows:
        grouped[pid].append(item)
    return grouped


def load_participants(session: Session, cutoff: dt.date) -> list[StudyParticipant]:
    """Every participant enrolled on or before the cut-off, in study-number order, with their records."""
    rows = session.execute(
        select(Participant, Patient.sex, Patient.date_of_birth, Site.code)
        .join(Patient, Participant.patient_id == Patient.id)
        .join(Site, Patient.site_id == Site.id)
        .order_by(Participant.study_number)
    ).all()
    periods = _grouped(
        (
            p.participant_id,
            Dosing(p.id, p.dose_level, p.start_date, p.stop_date, p.missed_doses, p.stop_reason),
        )
        for p in session.scalars(select(DosingPeriod).order_by(DosingPeriod.start_date, DosingPeriod.id))
    )
    assessments = _grouped(
        (
            a.participant_id,
            Assessment(
                a.id, a.assessed_on, a.result, tuple(a.recurrence_sites or ()), a.new_anticancer_therapy_on
            ),
        )
        for a in session.scalars(
            select(TumourAssessment).order_by(TumourAssessment.assessed_on, TumourAssessment.id)
        )
    )
    endings = _grouped(
        (d.participant_id, Ending(d.id, d.phase, d.status, d.status_date, d.cause_of_death))
        for d in session.scalars(select(Disposition).order_by(Disposition.status_date, Disposition.id))
    )
    alive = last_alive(session, cutoff)
    found = []
    for participant, sex, born, site in rows:
        # Enrolment is an instant; its UTC date counts (a site's own date may be a day later).
        if participant.enrolled_at.astimezone(dt.UTC).date() > cutoff:
            continue
        pid = participant.id
        enrolled = Source(participant.enrolled_at.astimezone(dt.UTC).date(), "participant", pid)
        latest = alive.get(pid)
        found.append(
            StudyParticipant(
                id=pid,
                patient_id=participant.patient_id,
                study_number=participant.study_number,
                study_id=participant.study_id,
                site_code=site,
                sex=sex,
                date_of_birth=born,
                enrolled_at=participant.enrolled_at,
                evaluation_id=participant.evaluation_id,
                periods=tuple(periods.get(pid, ())),
                assessments=tuple(assessments.get(pid, ())),
                endings=tuple(endings.get(pid, ())),
                last_alive=latest if latest is not None and latest.on >= enrolled.on else enrolled,
            )
        )
    return found
