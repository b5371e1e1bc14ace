"""Where every patient and participant stands at a data cut-off, and the CONSORT flow counted from it.

Source: CONSORT 2010 flow diagram (enrolment, allocation, follow-up, analysis), adapted to a
single-arm study; protocol.md 4 (the analysis set of recurrence-free survival counts from the
first dose) and 6 (screening and enrolment).

``participant_flow`` is one row per participant enrolled by the cut-off, derived from the dosing
log and the dispositions recorded on or before it (later records do not exist yet for the analysis):

=========  =====================================================================================
ENRLDT     enrolment date (UTC date of the enrolment stamp)
TRTSDT     first dose: start of the earliest dosing period (None: no dose by the cut-off)
TRTEDT     last dose, once treatment has ended: the stop of the last period when the log ended
           it (completed or discontinued, ``store.treatment.last_dose``) or when a disposition
           ended treatment after the last period had stopped; when a disposition ended treatment
           with the log still open, the disposition's date (not before the period's start)
TRTSTATE   not_started | dosing | interrupted | ended, at the cut-off
CYCLES     cycles completed on treatment: whole ``cycle_days`` from TRTSDT to TRTEDT (to the cut-off
           while on treatment), at most ``cycles``; interruptions do not shift cycles
           (schedule setting ``interruptions_shift_cycles``)
COMPLFL    Y when treatment ended as completed after all ``cycles`` cycles (protocol.md 4)
EOTSTT     how treatment ended: the treatment disposition's status (also one recorded before any
           dose); without one, ``completed`` or ``discontinued`` from the dosing log's last stop;
           without either, the study disposition's status (the study ended, so did treatment);
           None while on treatment
EOTDT      date of that end; DCTREAS: its reason
EOSSTT     study disposition status (None: still on study); EOSDT, DCSREAS: its date and reason
TRTOUT     not_started | ongoing | completed (COMPLFL Y) | discontinued (ended, COMPLFL N)
FUSTAT     once treatment started and ended: in_follow_up | off_study (a study disposition);
           None otherwise
=========  =====================================================================================

``consort_flow`` counts boxes from that table and from the screening log. A screened patient is
one whose screening started (patient created) on or before the cut-off; the evaluation that counts
is the latest one stored on or before the cut-off (by time of evaluation, then id).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.protocol.model import Protocol
from nettrial.store import treatment
from nettrial.store.models import Disposition, DosingPeriod, EligibilityEvaluation, Participant, Patient

FLOW_COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "ENRLDT",
    "TRTSDT",
    "TRTEDT",
    "TRTSTATE",
    "CYCLES",
    "COMPLFL",
    "EOTSTT",
    "EOTDT",
    "DCTREAS",
    "EOSSTT",
    "EOSDT",
    "DCSREAS",
    "TRTOUT",
    "FUSTAT",
)


@dataclass(frozen=True, slots=True)
class LoggedPeriod:
    """A dosing period as the log stood at the cut-off: a stop after the cut-off had not happened."""

    dose_level: int
    start_date: dt.date
    stop_date: dt.date | None
    missed_doses: int
    stop_reason: str | None
    truncated: bool = False  # open at the cut-off only because its stop came later


def usubjid(protocol: Protocol, study_id: str) -> str:
    """The unique subject id: ``NCT07279532-NET-001``."""
    return f"{protocol.identity.nct_id}-{study_id}"


def dosing_log(session: Session, cutoff: dt.date) -> dict[int, list[LoggedPeriod]]:
    """Every participant's dosing periods started on or before ``cutoff`` (one query), by participant id."""
    query = (
        select(DosingPeriod)
        .where(DosingPeriod.start_date <= cutoff)
        .order_by(DosingPeriod.participant_id, DosingPeriod.start_date, DosingPeriod.id)
    )
    log: dict[int, list[LoggedPeriod]] = defaultdict(list)
    for p in session.scalars(query):
        later = p.stop_date is not None and p.stop_date > cutoff
        log[p.participant_id].append(
            LoggedPeriod(
                p.dose_level,
                p.start_date,
                None if later else p.stop_date,
                p.missed_doses,
                None if later else p.stop_reason,
                truncated=later,
            )
        )
    return log


def participant_flow(session: Session, protocol: Protocol, cutoff: dt.date) -> pd.DataFrame:
    """One row per participant enrolled by ``cutoff``: treatment and study status at the cut-off.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol (identity, ``treatment.cycles`` and ``treatment.cycle_days``).
    cutoff : datetime.date
        The data cut-off: dosing, dispositions and enrolments after it are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``FLOW_COLUMNS`` (described in the module docstring), sorted by SUBJID.
    """
    participants = [
        p
        for p in session.scalars(select(Participant).order_by(Participant.study_number))
        if p.enrolled_at.date() <= cutoff
    ]
    log = dosing_log(session, cutoff)
    ends: dict[tuple[int, str], Disposition] = {
        (d.participant_id, d.phase): d
        for d in session.scalars(select(Disposition).where(Disposition.status_date <= cutoff))
    }
    rows = [
        _participant_row(
            protocol,
            p,
            log.get(p.id, []),
            ends.get((p.id, "treatment")),
            ends.get((p.id, "study")),
            cutoff,
        )
        for p in participants
    ]
    return pd.DataFrame(rows, columns=list(FLOW_COLUMNS))


def _participant_row(
    protocol: Protocol,
    participant: Participant,
    periods: Sequence[LoggedPeriod],
    treatment_end: Disposition | None,
    study_end: Disposition | None,
    cutoff: dt.date,
) -> dict[str, Any]:
    first = periods[0].start_date if periods else None
    state = treatment.state(periods)
    eot: tuple[str, dt.date, str | None] | None = None
    if treatment_end is not None:  # before any dose too: treatment will not start
        eot = (treatment_end.status, treatment_end.status_date, treatment_end.reason)
    elif first is not None and state in ("completed", "discontinued"):
        eot = (state, periods[-1].stop_date, f"dosing log stopped as {state}; no treatment disposition")
    elif first is not None and study_end is not None:
        eot = (
            study_end.status,
            study_end.status_date,
            f"study ended: {study_end.reason or study_end.status}",
        )
    last = _last_dose(periods, eot[1] if eot else None)
    cycles = _cycles_completed(protocol, first, last or cutoff)
    complete = eot is not None and eot[0] == "completed" and cycles == protocol.treatment.cycles
    outcome = "not_started" if first is None else "ongoing"
    if first is not None and eot is not None:
        outcome = "completed" if complete else "discontinued"
    return {
        "STUDYID": protocol.identity.nct_id,
        "USUBJID": usubjid(protocol, participant.study_id),
        "SUBJID": participant.study_id,
        "ENRLDT": participant.enrolled_at.date(),
        "TRTSDT": first,
        "TRTEDT": last,
        "TRTSTATE": "ended" if first and eot else state,
        "CYCLES": cycles,
        "COMPLFL": "Y" if complete else "N",
        "EOTSTT": eot and eot[0],
        "EOTDT": eot and eot[1],
        "DCTREAS": eot and eot[2],
        "EOSSTT": study_end and study_end.status,
        "EOSDT": study_end and study_end.status_date,
        "DCSREAS": study_end and study_end.reason,
        "TRTOUT": outcome,
        "FUSTAT": None
        if outcome in ("not_started", "ongoing")
        else ("off_study" if study_end else "in_follow_up"),
    }


def _last_dose(periods: Sequence[LoggedPeriod], ended_on: dt.date | None) -> dt.date | None:
    if ended_on is None or not periods:
        return None
    latest = periods[-1]
    if latest.stop_date is not None:
        return latest.stop_date  # the last day dosed (a period's stop day is a dosing day)
    return max(latest.start_date, ended_on)


def _cycles_completed(protocol: Protocol, first: dt.date | None, until: dt.date) -> int:
    if first is None:
        return 0
    days = (until - first).days + 1
    return max(0, min(protocol.treatment.cycles, days // protocol.treatment.cycle_days))


# --- the flow ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    """One line of a box's breakdown."""

    key: str
    label: str
    n: int


@dataclass(frozen=True, slots=True)
class ConsortBox:
    """A box of the diagram: who is in it, and from which boxes they came.

    ``parents`` are the boxes this one splits from; the boxes sharing the same parents partition
    them (their ``n`` add up to the parents' total). ``side`` boxes leave the main column.
    """

    id: str
    label: str
    n: int
    parents: tuple[str, ...]
    members: tuple[str, ...]
    breakdown: tuple[Count, ...] = ()
    side: bool = False
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ConsortFlow:
    """The CONSORT flow at a cut-off, with the counting rules it used."""

    cutoff: dt.date
    protocol_version: str
    boxes: tuple[ConsortBox, ...]
    rules: tuple[str, ...] = field(default=())

    def box(self, box_id: str) -> ConsortBox:
        return next(b for b in self.boxes if b.id == box_id)

    def splits(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(parents, children) for every split, in diagram order."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for b in self.boxes:
            if b.parents:
                groups.setdefault(b.parents, []).append(b.id)
        return [(parents, tuple(children)) for parents, children in groups.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "protocol_version": self.protocol_version,
            "boxes": [
                asdict(b)
                | {
                    "parents": list(b.parents),
                    "members": list(b.members),
                    "breakdown": [asdict(c) for c in b.breakdown],
                }
                for b in self.boxes
            ],
            "rules": list(self.rules),
        }

    def explain(self) -> str:
        lines = [f"CONSORT flow at the data cut-off {self.cutoff} (protocol version {self.protocol_version})"]
        for b in self.boxes:
            where = f" [from {' + '.join(b.parents)}]" if b.parents else ""
            lines.append(f"{'  - ' if b.side else ''}{b.label}: {b.n}{where}")
            lines += [f"      {c.label} ({c.key}): {c.n}" for c in b.breakdown]
            if b.note:
                lines.append(f"      note: {b.note}")
        return "\n".join(lines + ["counting rules:"] + [f"  {rule}" for rule in self.rules])


_NOT_ELIGIBLE_NOTE = (
    "a patient counts once in the total and once under each criterion that ruled them out (an"
    " inclusion criterion only when no alternative of its group was met)"
)
_INCOMPLETE_NOTE = "a patient counts once under each criterion with missing data"
RULES = (
    "screened: patients whose screening started on or before the cut-off",
    "the screening outcome is the latest eligibility evaluation stored on or before the cut-off",
    f"not eligible: {_NOT_ELIGIBLE_NOTE}",
    "screening incomplete: the latest evaluation is INCOMPLETE (under each criterion with missing"
    " data) or there is none",
    "enrolled: enrolled on or before the cut-off, whatever the evaluation (overrides are counted)",
    "started treatment: a dosing period starting on or before the cut-off",
    "completed: treatment ended as completed after all cycles of the protocol; any other end is a"
    " discontinuation, by the treatment disposition's status",
    "off study: a study disposition on or before the cut-off; in follow-up otherwise",
    "analysed: the recurrence-free survival analysis set, participants with a first dose",
)


def consort_flow(session: Session, protocol: Protocol, cutoff: dt.date) -> ConsortFlow:
    """The CONSORT flow at ``cutoff``: screened, enrolled, treated, followed up, analysed.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol: criterion texts, the inclusion logic and the treatment's cycles.
    cutoff : datetime.date
        The data cut-off: records after it are ignored.

    Returns
    -------
    ConsortFlow
        Boxes with label, n, members (screening numbers before enrolment, study ids after) and
        breakdown; ``rules`` states how each was counted.
    """
    patients = [
        p for p in session.scalars(select(Patient).order_by(Patient.id)) if p.created_at.date() <= cutoff
    ]
    latest: dict[int, EligibilityEvaluation] = {}
    query = select(EligibilityEvaluation).order_by(
        EligibilityEvaluation.evaluated_at, EligibilityEvaluation.id
    )
    for evaluation in session.scalars(query):
        if evaluation.evaluated_at.date() <= cutoff:
            latest[evaluation.patient_id] = evaluation
    enrolled = {
        p.patient_id: p for p in session.scalars(select(Participant)) if p.enrolled_at.date() <= cutoff
    }
    flow = participant_flow(session, protocol, cutoff)
    return ConsortFlow(
        cutoff,
        protocol.protocol_version,
        (
            *_screening_boxes(protocol, patients, latest, enrolled),
            *_participant_boxes(flow, protocol.treatment.cycles),
        ),
        RULES,
    )


def _screening_boxes(
    protocol: Protocol,
    patients: Sequence[Patient],
    latest: Mapping[int, EligibilityEvaluation],
    enrolled: Mapping[int, Participant],
) -> list[ConsortBox]:
    texts = {c.id: " ".join(c.text.split()) for c in protocol.eligibility.criteria}
    order = {c.id: i for i, c in enumerate(protocol.eligibility.criteria)}
    groups: dict[str, list[Patient]] = {k: [] for k in ("ineligible", "incomplete", "eligible", "enrolled")}
    ruled_out: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for patient in patients:
        evaluation = latest.get(patient.id)
        if patient.id in enrolled:
            groups["enrolled"].append(patient)
        elif evaluation is not None and evaluation.decision == "INELIGIBLE":
            groups["ineligible"].append(patient)
            ruled_out.update(_ruled_out_by(protocol, evaluation.result))
        elif evaluation is not None and evaluation.decision == "ELIGIBLE":
            groups["eligible"].append(patient)
        else:
            groups["incomplete"].append(patient)
            unknown.update(_missing_for(evaluation.result) if evaluation else ["not_evaluated"])
    texts |= {"not_evaluated": "no eligibility evaluation", "none_listed": "nothing listed as missing"}

    def by_criterion(counts: Counter[str]) -> tuple[Count, ...]:
        keys = sorted(counts, key=lambda k: (order.get(k, len(order)), k))
        return tuple(Count(k, texts.get(k, k), counts[k]) for k in keys)

    def side(box_id: str, label: str, group: str, breakdown: Counter[str], note: str | None) -> ConsortBox:
        found = groups[group]
        members = tuple(p.screening_number for p in found)
        return ConsortBox(
            box_id, label, len(found), ("screened",), members, by_criterion(breakdown), True, note
        )

    participants = [enrolled[p.id] for p in groups["enrolled"]]
    overrides = sum(p.override_reason is not None for p in participants)
    everyone = tuple(p.screening_number for p in patients)
    return [
        ConsortBox("screened", "Screened", len(patients), (), everyone),
        side("not_eligible", "Not eligible", "ineligible", ruled_out, _NOT_ELIGIBLE_NOTE),
        side("screening_incomplete", "Screening incomplete", "incomplete", unknown, _INCOMPLETE_NOTE),
        side("eligible_not_enrolled", "Eligible, not enrolled", "eligible", Counter(), None),
        ConsortBox(
            "enrolled",
            "Enrolled",
            len(participants),
            ("screened",),
            tuple(sorted(p.study_id for p in participants)),
            (
                Count("eligible", "eligible at the evaluation enrolment used", len(participants) - overrides),
                Count("override", "enrolled on an investigator's override", overrides),
            ),
        ),
    ]


def _ruled_out_by(protocol: Protocol, result: Mapping[str, Any]) -> list[str]:
    """The criteria that made the decision INELIGIBLE.

    The stored ``failed`` lists every criterion that rules out on its own terms; a member of an
    inclusion group (I3 or I4) did not rule the patient out when another member was met.
    """
    truth = {v["criterion"]: v["truth"] for v in result.get("verdicts", [])}
    passed_groups = set()
    for entry in protocol.eligibility.inclusion_logic:
        members = [entry] if isinstance(entry, str) else list(entry.any)
        if len(members) > 1 and any(truth.get(m) == "MET" for m in members):
            passed_groups.update(members)
    return [c for c in dict.fromkeys(result.get("failed", [])) if c not in passed_groups]


def _missing_for(result: Mapping[str, Any]) -> list[str]:
    """The criteria with missing data (``missing`` holds ``"I1: consent.signed"``), once each."""
    found = [entry.split(":", 1)[0].strip() for entry in result.get("missing", [])]
    return list(dict.fromkeys(found)) or ["none_listed"]


# The boxes after enrolment: (id, label, parents, who is in it, what breaks it down). Boxes with
# the same parents partition them; "{cycles}" is the protocol's number of cycles.
_STARTED, _ENDED = ("started_treatment",), ("completed_treatment", "discontinued_treatment")
_AFTER_ENROLMENT = (
    ("not_treated", "Enrolled, not treated", ("enrolled",), "TRTOUT == 'not_started'", "NOT_TREATED"),
    ("started_treatment", "Started treatment", ("enrolled",), "TRTOUT != 'not_started'", None),
    ("completed_treatment", "Completed {cycles} cycles", _STARTED, "TRTOUT == 'completed'", None),
    ("discontinued_treatment", "Discontinued treatment", _STARTED, "TRTOUT == 'discontinued'", "EOTSTT"),
    ("on_treatment", "Still on treatment", _STARTED, "TRTOUT == 'ongoing'", None),
    ("in_follow_up", "In follow-up", _ENDED, "FUSTAT == 'in_follow_up'", None),
    ("off_study", "Off study", _ENDED, "FUSTAT == 'off_study'", "EOSSTT"),
    (
        "analysed",
        "Analysed (recurrence-free survival)",
        ("on_treatment", "in_follow_up", "off_study"),
        "TRTOUT != 'not_started'",
        None,
    ),
)  # fmt: skip
# Ends of treatment that are not a disposition's own status (the others read as they are).
_EOT_LABELS = {
    "completed": "recorded as completed before the end of the last cycle",
    "discontinued": "dosing log stopped as discontinued, no treatment disposition",
    "awaiting_first_dose": "awaiting the first dose",
}


def _participant_boxes(flow: pd.DataFrame, cycles: int) -> list[ConsortBox]:
    # Why an enrolled participant has no dose: the study or treatment disposition, or none yet.
    flow = flow.assign(
        NOT_TREATED=flow["EOSSTT"].fillna(flow["EOTSTT"]).fillna("awaiting_first_dose"),
        TRTOUT=flow["TRTOUT"].astype(str),
        FUSTAT=flow["FUSTAT"].fillna(""),
    )
    boxes = []
    for box_id, label, parents, who, breakdown in _AFTER_ENROLMENT:
        members = flow[flow.eval(who)] if len(flow) else flow
        counts = Counter(members[breakdown]) if breakdown else Counter()
        keys = sorted(counts, key=lambda k: (-counts[k], k))
        boxes.append(
            ConsortBox(
                box_id,
                label.format(cycles=cycles),
                len(members),
                parents,
                tuple(members["SUBJID"]),
                tuple(Count(k, _EOT_LABELS.get(k, k.replace("_", " ")), counts[k]) for k in keys),
                side=box_id == "not_treated",
                note="the analysis set: every participant with a first dose"
                if box_id == "analysed"
                else None,
            )
        )
    return boxes
