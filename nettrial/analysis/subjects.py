"""The subject-level analysis dataset (CDISC ADaM ADSL style): one row per participant.

Source: protocol.md 2-4 (treatment, cycles, dispositions) and the screening record the enrolment
relied on. Statisticians are pseudonymised: no name, record number or date of birth is in the table
(AGE is computed here from the date of birth, which does not leave this module). Everything dated
after the data cut-off is left out: participants enrolled after it, dosing, dispositions and deaths.

Columns, in order:

STUDYID
    The NCT id.
USUBJID / SUBJID
    ``<NCT id>-<study id>`` / the study id (NET-001). Rows are in study-number order.
SITEID
    The site's code.
AGE
    Whole years from the date of birth to ENRLDT.
SEX
    ``F`` or ``M`` (CDISC codes).
PRIMARY_SITE, STAGE, GRADE, KI67, NODES, NODEPOS
    The tumour as the screening record the enrolment relied on gives it (the record the participant's
    eligibility evaluation judged; the latest version saved by the enrolment when it was an override
    without one), staged and graded by the functions the eligibility engine used
    (``eligibility.tumour``): the primary site as recorded (``pancreas``, ``rectum``); the AJCC stage
    group in the edition of the protocol's tumour criterion (V9); the WHO 2019 grade (G1/G2/G3); an
    explicitly entered stage group or grade wins, as it does for eligibility; Ki-67 (%); the pN
    category (``N0``, ``N1``, ``NX``) and the number of positive nodes. A value the record leaves
    undetermined is missing (None/NaN), never guessed.
RANDDT
    Not applicable (single arm, no randomisation): not in the table.
ENRLDT
    The enrolment date (UTC calendar date of the enrolment instant).
TRTSDT / TRTEDT
    First dose (start of the first dosing period) / last dose: the stop date of the last period once
    treatment was discontinued or completed (``store.treatment.last_dose``), else None. As at the
    cut-off: a period running past it is cut there and counts as ongoing.
TRTDURD
    Days from TRTSDT to the end of treatment, both included; while treatment goes on at the cut-off,
    to the end of the last period (the cut-off for an open period). Missing if never dosed.
CUMDOSE / RDI
    Cumulative dose (mg) and relative dose intensity (actual / planned 6-cycle dose) by
    ``safety.dosing.dose_intensity`` up to the cut-off. Doses missed in a period cut at the cut-off
    count in proportion to the days kept.
CYCLES / COMPLFL
    Cycles of the protocol's ``cycle_days`` completed from TRTSDT to the end of treatment (as for
    TRTDURD), at most the protocol's ``cycles``; COMPLFL ``Y`` when all of them were and treatment
    ended as completed (``N`` otherwise: still on treatment, or stopped for another reason).
EOTSTT / DCTREAS
    Treatment disposition on or before the cut-off: ``COMPLETED`` or ``DISCONTINUED`` with its reason
    code (``adverse_event``, ``recurrence``, ...); ``ONGOING`` without one; ``NOT TREATED`` without
    one and without a dose.
EOSSTT / DCSREAS
    Study disposition: ``COMPLETED``, ``DISCONTINUED`` with its reason code (``withdrawn``,
    ``lost_to_follow_up``, ``death``, ``other``), or ``ONGOING``.
DTHFL / DTHDT / DTHCAUS
    ``Y`` with the date and recorded cause when a death is recorded on or before the cut-off.
LSTALVDT
    Last date known alive: the latest dated record on or before the cut-off (visit done, dosing,
    imaging, new therapy, laboratory, vital signs, adverse-event onset or resolution, disposition other
    than lost to follow-up, enrolment); for a participant who died, the date of death.
SAFFL / ITTFL
    ``Y`` when at least one dose was taken by the cut-off / ``Y`` for every enrolled participant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial.analysis._study import Dosing, StudyParticipant, load_participants
from nettrial.config import get_settings
from nettrial.eligibility.context import Context
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.tumour import grade_of, staging_of
from nettrial.protocol import model
from nettrial.protocol.model import Protocol
from nettrial.safety import dosing
from nettrial.store.models import EligibilityEvaluation, Participant, ScreeningRecordVersion
from nettrial.store.treatment import last_dose

COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "SITEID",
    "AGE",
    "SEX",
    "PRIMARY_SITE",
    "STAGE",
    "GRADE",
    "KI67",
    "NODES",
    "NODEPOS",
    "ENRLDT",
    "TRTSDT",
    "TRTEDT",
    "TRTDURD",
    "CUMDOSE",
    "RDI",
    "CYCLES",
    "COMPLFL",
    "EOTSTT",
    "DCTREAS",
    "EOSSTT",
    "DCSREAS",
    "DTHFL",
    "DTHDT",
    "DTHCAUS",
    "LSTALVDT",
    "SAFFL",
    "ITTFL",
)
_DTYPES = {
    "AGE": "int64",
    "KI67": "float64",
    "NODEPOS": "Int64",
    "TRTDURD": "Int64",
    "CUMDOSE": "float64",
    "RDI": "float64",
    "CYCLES": "int64",
}
_SEX = {"female": "F", "male": "M"}

__all__ = ["COLUMNS", "subject_table"]


# --- the tumour, as eligibility saw it ---------------------------------------------------------------


def _tumour_check(node: Any) -> model.Tumour | None:
    """The first tumour check in a rule tree."""
    if isinstance(node, model.Tumour):
        return node
    children = {
        model.AllOf: lambda n: n.all,
        model.AnyOf: lambda n: n.any,
        model.AtLeast: lambda n: n.of,
        model.IfThen: lambda n: (n.if_, n.then),
    }
    for kind, members in children.items():
        if isinstance(node, kind):
            return next((found for m in members(node) if (found := _tumour_check(m)) is not None), None)
    return None


def staging_edition(protocol: Protocol) -> str:
    """The AJCC edition the protocol's tumour criterion stages with (the settings' default without one)."""
    for criterion in protocol.eligibility.criteria:
        check = _tumour_check(criterion.rule)
        if check is not None:
            return check.edition
    return get_settings().default_edition


def _records(session: Session) -> dict[int, dict[str, Any]]:
    """Per participant, the screening record the enrolment relied on (two queries for the study).

    The record its eligibility evaluation judged; after an override without an evaluation, the
    latest version saved by the enrolment.
    """
    judged = session.execute(
        select(Participant.id, ScreeningRecordVersion.record)
        .join(EligibilityEvaluation, Participant.evaluation_id == EligibilityEvaluation.id)
        .join(ScreeningRecordVersion, EligibilityEvaluation.record_id == ScreeningRecordVersion.id)
    )
    found = dict(judged.all())
    latest = (
        select(Participant.id.label("pid"), func.max(ScreeningRecordVersion.version).label("version"))
        .join(ScreeningRecordVersion, ScreeningRecordVersion.patient_id == Participant.patient_id)
        .where(
            Participant.evaluation_id.is_(None), ScreeningRecordVersion.saved_at <= Participant.enrolled_at
        )
        .group_by(Participant.id)
        .subquery()
    )
    overridden = session.execute(
        select(Participant.id, ScreeningRecordVersion.record)
        .join(latest, Participant.id == latest.c.pid)
        .join(
            ScreeningRecordVersion,
            (ScreeningRecordVersion.patient_id == Participant.patient_id)
            & (ScreeningRecordVersion.version == latest.c.version),
        )
    )
    found.update(overridden.all())
    return found


def _tumour(record: dict[str, Any] | None, edition: str) -> dict[str, Any]:
    blank = dict.fromkeys(("PRIMARY_SITE", "STAGE", "GRADE", "KI67", "NODES", "NODEPOS"))
    if record is None:
        return blank
    ctx = Context.for_record(ScreeningRecord.model_validate(record))
    p = ctx.record.pathology
    staged = staging_of(ctx, edition)
    stage = p.stage_group if p.stage_group is not None else staged.stage_group if staged else None
    grade = p.grade if p.grade is not None else grade_of(ctx).grade
    return {
        "PRIMARY_SITE": p.site,
        "STAGE": stage,
        "GRADE": grade,
        "KI67": p.ki67_percent,
        "NODES": p.n if p.n is not None else staged.n if staged is not None else None,
        "NODEPOS": p.nodes_positive,
    }


# --- treatment ---------------------------------------------------------------------------------------


def _on_days(protocol: Protocol, first: dt.date, period: Dosing, end: dt.date) -> int:
    """Dosing days of a period's level from its start to ``end`` (the safety engine counts them)."""
    single = dosing.DosingPeriod(period.start_date, end, period.dose_level, 0)
    return dosing.dose_intensity(protocol, first, [single]).dosing_days


def as_at(protocol: Protocol, periods: Sequence[Dosing], cutoff: dt.date) -> list[Dosing]:
    """The dosing log as known at the cut-off: later periods dropped, one running past it open there.

    Doses missed in a period cut at the cut-off count in proportion to the days kept, never more than
    the dosing days kept.
    """
    kept: list[Dosing] = []
    first = next((p.start_date for p in periods if p.start_date <= cutoff), None)
    for period in periods:
        if period.start_date > cutoff:
            continue
        if period.stop_date is not None and period.stop_date <= cutoff:
            kept.append(period)
            continue
        missed = period.missed_doses
        if period.stop_date is not None:
            days = (cutoff - period.start_date).days + 1
            missed = missed * days // ((period.stop_date - period.start_date).days + 1)
        missed = min(missed, _on_days(protocol, first, period, cutoff))
        kept.append(replace(period, stop_date=None, stop_reason=None, missed_doses=missed))
    return kept


def _treatment(protocol: Protocol, participant: StudyParticipant, cutoff: dt.date) -> dict[str, Any]:
    periods = as_at(protocol, participant.periods, cutoff)
    ended = participant.ending("treatment", cutoff)
    if not periods:
        status = "NOT TREATED" if ended is None else _status(ended)
        return {
            "TRTSDT": None,
            "TRTEDT": None,
            "TRTDURD": None,
            "CUMDOSE": None,
            "RDI": None,
            "CYCLES": 0,
            "COMPLFL": "N",
            "EOTSTT": status,
            "DCTREAS": _reason(ended),
            "SAFFL": "N",
        }
    first = periods[0].start_date
    last = last_dose(periods)
    if last is None and ended is not None and periods[-1].stop_date is not None:
        last = periods[-1].stop_date  # ended during an interruption: the last dose is where dosing stopped
    end = last or periods[-1].stop_date or cutoff
    intensity = dosing.dose_intensity(
        protocol,
        first,
        [
            dosing.DosingPeriod(p.start_date, p.stop_date or cutoff, p.dose_level, p.missed_doses)
            for p in periods
        ],
    )
    treatment = protocol.treatment
    cycles = min(treatment.cycles, ((end - first).days + 1) // treatment.cycle_days)
    return {
        "TRTSDT": first,
        "TRTEDT": last,
        "TRTDURD": (end - first).days + 1,
        "CUMDOSE": intensity.cumulative_mg,
        "RDI": intensity.relative_dose_intensity,
        "CYCLES": cycles,
        "COMPLFL": "Y" if cycles >= treatment.cycles and _ended_as(ended, periods) == "completed" else "N",
        "EOTSTT": "ONGOING" if ended is None else _status(ended),
        "DCTREAS": _reason(ended),
        "SAFFL": "Y",
    }


def _ended_as(ending: Any, periods: Sequence[Dosing]) -> str | None:
    """How treatment ended: the treatment disposition, else the dosing log's last stop (as the CONSORT
    flow and the exposure table read it, analysis/consort.py)."""
    if ending is not None:
        return ending.status
    return periods[-1].stop_reason if periods and periods[-1].stop_date is not None else None


def _status(ending: Any) -> str:
    return "COMPLETED" if ending.status == "completed" else "DISCONTINUED"


def _reason(ending: Any) -> str | None:
    return None if ending is None or ending.status == "completed" else ending.status


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _row(
    participant: StudyParticipant,
    record: dict[str, Any] | None,
    protocol: Protocol,
    cutoff: dt.date,
    edition: str,
) -> dict[str, Any]:
    study_id = protocol.identity.nct_id
    ended = participant.ending("study", cutoff)
    death = participant.death(cutoff)
    enrolled = participant.enrolled_on
    return {
        "STUDYID": study_id,
        "USUBJID": f"{study_id}-{participant.study_id}",
        "SUBJID": participant.study_id,
        "SITEID": participant.site_code,
        "AGE": _age(participant.date_of_birth, enrolled),
        "SEX": _SEX.get(participant.sex, participant.sex),
        **_tumour(record, edition),
        "ENRLDT": enrolled,
        **_treatment(protocol, participant, cutoff),
        "EOSSTT": "ONGOING" if ended is None else _status(ended),
        "DCSREAS": _reason(ended),
        "DTHFL": "Y" if death is not None else None,
        "DTHDT": death.status_date if death is not None else None,
        "DTHCAUS": death.cause_of_death if death is not None else None,
        "LSTALVDT": participant.last_alive.on,
        "ITTFL": "Y",
    }


def subject_frame(
    participants: Iterable[StudyParticipant],
    records: dict[int, dict[str, Any]],
    protocol: Protocol,
    cutoff: dt.date,
) -> pd.DataFrame:
    """The subject-level table from participants already loaded (``subject_table`` without a database).

    Parameters
    ----------
    participants
        The participants, in the order the rows should take.
    records
        Each participant's screening record (JSON, by participant id); a missing one leaves the
        tumour columns empty.
    protocol
        The protocol.
    cutoff
        The data cut-off date.

    Returns
    -------
    pandas.DataFrame
        Columns ``COLUMNS``, one row per participant.
    """
    edition = staging_edition(protocol)
    rows = [_row(p, records.get(p.id), protocol, cutoff, edition) for p in participants]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame = frame.astype(_DTYPES)
    frame.attrs["cutoff"] = cutoff.isoformat()
    return frame


def subject_table(session: Session, protocol: Protocol, cutoff: dt.date) -> pd.DataFrame:
    """The subject-level table (ADSL style): one row per participant enrolled by the cut-off.

    Parameters
    ----------
    session
        A session on the study database.
    protocol
        The protocol (NCT id, treatment and cycles, dose ladder, the tumour criterion's AJCC edition).
    cutoff
        The data cut-off date: nothing dated after it is used.

    Returns
    -------
    pandas.DataFrame
        Columns ``COLUMNS`` as the module docstring defines them, one row per participant in
        study-number order; ``attrs["cutoff"]`` holds the cut-off.
    """
    participants = load_participants(session, cutoff)
    return subject_frame(participants, _records(session), protocol, cutoff)
