"""The SDTM interventions and events domains: EX and SUPPEX, CM; AE, DS and MH.

Source: CDISC SDTM IG 3.x domain models. EX/SUPPEX from the dosing log (one row per period, the
dose level's regimen); AE and DS from their tables (DS also each subject's informed consent, from
DM); MH and CM from the screening record the enrolment relied on (history events; supportive care;
antihypertensive treatment at screening) and from imaging (new anticancer therapy).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import RuleDataError
from nettrial.export.sdtm_sources import Rows, Sources, by_cutoff, iso_date, ordered
from nettrial.store.models import (
    AdverseEvent,
    Disposition,
    DosingPeriod,
    EligibilityEvaluation,
    Participant,
    ScreeningRecordVersion,
    TumourAssessment,
)

# --- EX and SUPPEX ---------------------------------------------------------------------------------


def _periods(src: Sources) -> list[DosingPeriod]:
    query = (
        select(DosingPeriod)
        .join(Participant, Participant.id == DosingPeriod.participant_id)
        .where(DosingPeriod.start_date <= src.cutoff)
        .order_by(Participant.study_number, DosingPeriod.start_date, DosingPeriod.id)
    )
    return [p for p in src.session.scalars(query) if p.participant_id in src.subjects]


def _regimen(src: Sources, level: int) -> tuple[float, str]:
    found = next((lv for lv in src.protocol.dose_levels.levels if lv.level == level), None)
    if found is None:
        raise RuleDataError(src.where, f"EX.EXDOSE: dose level {level} is not in the protocol's ladder")
    shapes = src.terms["regimen"]
    if found.days_off == 0:
        return found.dose_mg, shapes["continuous"]
    return found.dose_mg, shapes["intermittent"].format(days_on=found.days_on, days_off=found.days_off)


def exposure(src: Sources) -> Rows:
    treatment, constants = src.protocol.treatment, src.trial["treatment"]
    rows, previous = [], {}
    for p in _periods(src):
        dose, regimen = _regimen(src, p.dose_level)
        stop = by_cutoff(p.stop_date, src.cutoff)
        before = previous.get(p.participant_id)
        adjusted = None
        if before is not None and before.stop_reason in ("reduction", "interruption"):
            reason = "adverse_event" if before.adverse_event_id is not None else before.stop_reason
            adjusted = src.term("dose_adjustment", reason)
        previous[p.participant_id] = p
        rows.append(
            {
                "USUBJID": src.subjects[p.participant_id].usubjid,
                "EXSPID": str(p.id),
                **constants,
                "EXDOSE": dose,
                "EXDOSFRQ": src.term("frequency", treatment.frequency),
                "EXDOSRGM": regimen,
                "EXROUTE": src.term("route", treatment.route),
                "EXADJ": adjusted,
                "EXSTDTC": p.start_date.isoformat(),
                "EXENDTC": iso_date(stop),
                "EXSTDY": src.day(p.participant_id, p.start_date),
                "EXENDY": src.day(p.participant_id, stop),
            }
        )
    return rows


def exposure_supplement(src: Sources) -> Rows:
    """Doses missed in each period that had stopped by the cut-off (unknown for one still running)."""
    qualifier = src.terms["suppex"]["missed_doses"]
    return [
        {
            "RDOMAIN": "EX",
            "USUBJID": src.subjects[p.participant_id].usubjid,
            "IDVAR": "EXSPID",
            "IDVARVAL": str(p.id),
            **qualifier,
            "QVAL": str(p.missed_doses),
        }
        for p in _periods(src)
        if by_cutoff(p.stop_date, src.cutoff) is not None
    ]


# --- AE ----------------------------------------------------------------------------------------------


def adverse_events(src: Sources) -> Rows:
    rows = []
    flags = src.terms["serious_flags"]
    for e in ordered(src, AdverseEvent, AdverseEvent.onset_date):
        ended = by_cutoff(e.resolved_date, src.cutoff)
        outcome = src.term("aeout", e.outcome)
        if e.resolved_date is not None and ended is None:
            outcome = src.terms["aeout_open_at_cutoff"]
        criteria = set(e.serious_criteria or [])
        unknown = sorted(criteria - set(flags))
        if unknown:
            raise RuleDataError(src.where, f"terms.serious_flags: no SDTM flag for {unknown[0]!r}")
        rows.append(
            {
                "USUBJID": src.subjects[e.participant_id].usubjid,
                "AESPID": str(e.id),
                "AETERM": e.term,
                "AEDECOD": e.term,
                "AEBODSYS": e.soc,
                "AESOC": e.soc,
                "AESER": "Y" if e.serious else "N",
                "AEACN": src.term("aeacn", e.action_taken),
                "AEREL": src.term("aerel", e.relatedness),
                "AEOUT": outcome,
                # The criteria flags are filled for a serious event only (SDTM IG AE assumptions).
                **{flag: ("Y" if c in criteria else "N") if e.serious else None for c, flag in flags.items()},
                "AETOXGR": str(e.grade),
                "AESTDTC": e.onset_date.isoformat(),
                "AEENDTC": iso_date(ended),
                "AESTDY": src.day(e.participant_id, e.onset_date),
                "AEENDY": src.day(e.participant_id, ended),
            }
        )
    return rows


# --- DS ----------------------------------------------------------------------------------------------


def disposition(src: Sources, consent: Mapping[int, str | None]) -> Rows:
    rows, cats = [], src.terms["dscat"]
    milestone = src.terms["ds_consent"]
    for pid, subject in src.subjects.items():
        if consent.get(pid) is not None:
            on = dt.date.fromisoformat(consent[pid])
            rows.append(
                {
                    "USUBJID": subject.usubjid,
                    **milestone,
                    "DSCAT": cats["milestone"],
                    "DSSTDTC": consent[pid],
                    "DSSTDY": src.day(pid, on),
                }
            )
    for d in ordered(src, Disposition, Disposition.status_date):
        decoded = src.term("dsdecod", d.status)
        rows.append(
            {
                "USUBJID": src.subjects[d.participant_id].usubjid,
                "DSSPID": str(d.id),
                "DSTERM": d.reason or decoded,
                "DSDECOD": decoded,
                "DSCAT": cats["disposition"],
                **src.term("ds_phase", d.phase),
                "DSSTDTC": d.status_date.isoformat(),
                "DSSTDY": src.day(d.participant_id, d.status_date),
            }
        )
    return rows


# --- MH and CM (the screening record the enrolment relied on) ----------------------------------------


def enrolment_records(session: Session, participant_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Per participant, the screening record its eligibility evaluation judged; after an override
    without an evaluation, the latest version saved before enrolment (as ``analysis.subjects``)."""
    judged = dict(
        session.execute(
            select(Participant.id, ScreeningRecordVersion.record)
            .join(EligibilityEvaluation, Participant.evaluation_id == EligibilityEvaluation.id)
            .join(ScreeningRecordVersion, EligibilityEvaluation.record_id == ScreeningRecordVersion.id)
        ).all()
    )
    overridden = session.execute(
        select(Participant.id, ScreeningRecordVersion.record)
        .join(ScreeningRecordVersion, ScreeningRecordVersion.patient_id == Participant.patient_id)
        .where(
            Participant.evaluation_id.is_(None), ScreeningRecordVersion.saved_at <= Participant.enrolled_at
        )
        .order_by(Participant.id, ScreeningRecordVersion.version)
    )
    for pid, record in overridden:
        judged[pid] = record  # the latest version wins
    return {pid: record for pid, record in judged.items() if pid in participant_ids}


def _on(text: str | None, cutoff: dt.date) -> dt.date | None:
    day = None if text is None else dt.date.fromisoformat(str(text)[:10])
    return day if day is not None and day <= cutoff else None


def medical_history(src: Sources, records: Mapping[int, dict[str, Any]]) -> Rows:
    rows, mh = [], src.terms["mh"]
    for pid, record in sorted(records.items()):
        for event in (record.get("history") or {}).get("events") or []:
            on = _on(event.get("date"), src.cutoff)
            if event.get("date") is not None and on is None:
                continue  # dated after the cut-off
            term = event["kind"].replace("_", " ").upper()
            if event.get("cancer_type"):
                term += f" ({event['cancer_type']})"
            rows.append(
                {
                    "USUBJID": src.subjects[pid].usubjid,
                    "MHTERM": term,
                    "MHCAT": mh["MHCAT"],
                    "MHSEV": mh["severe"] if event.get("severe") else None,
                    "MHSTDTC": iso_date(on),
                }
            )
    return rows


def medications(src: Sources, records: Mapping[int, dict[str, Any]]) -> Rows:
    rows, cm = [], src.terms["cm"]
    for pid, record in sorted(records.items()):
        who = src.subjects[pid].usubjid
        for item in (record.get("supportive_care") or {}).get("items") or []:
            on = _on(item.get("date"), src.cutoff)
            if on is None:
                continue
            category = src.term("cm", "supportive_care")
            if item["kind"] not in category:
                raise RuleDataError(src.where, f"terms.cm.supportive_care: no category for {item['kind']!r}")
            rows.append(
                {
                    "USUBJID": who,
                    "CMTRT": item.get("detail") or item["kind"].replace("_", " ").upper(),
                    "CMCAT": category[item["kind"]],
                    "CMSTDTC": on.isoformat(),
                    "CMSTDY": src.day(pid, on),
                }
            )
        treated = [
            _on(r["date"], src.cutoff) for r in record.get("blood_pressure") or [] if r.get("on_treatment")
        ]
        treated = [day for day in treated if day is not None]
        if treated:
            rows.append({"USUBJID": who, **cm["antihypertensive"], "CMDTC": min(treated).isoformat()})
    seen = set()
    for a in ordered(src, TumourAssessment, TumourAssessment.assessed_on):
        on = by_cutoff(a.new_anticancer_therapy_on, src.cutoff)
        if on is None or (a.participant_id, on) in seen:
            continue  # the same therapy may be carried on several assessments
        seen.add((a.participant_id, on))
        rows.append(
            {
                "USUBJID": src.subjects[a.participant_id].usubjid,
                **cm["anticancer"],
                "CMSTDTC": on.isoformat(),
                "CMSTDY": src.day(a.participant_id, on),
            }
        )
    return rows
