"""The SDTM domains read from the store: one builder per domain, each returning rows of variables.

Source: CDISC SDTM IG 3.x domain models; the store's codes become CDISC terms through the
``terms`` of ``data/sdtm_variables.yaml`` (a code without a term there is refused, never guessed).
Every builder keeps to the participants enrolled by the cut-off (DM's subjects, as the analysis
subject table has them) and to records dated on or before the cut-off; a date after it (an event's
end, a period's stop) is left blank, as it had not happened yet. Rows come in store order (subject,
date, record id); ``sdtm.dataset`` sorts them by the domain's keys and numbers --SEQ.

Sources: DM from ``analysis.subjects.subject_table`` (first and last dose, age, death) with date of
birth and consent; EX/SUPPEX from the dosing log (one row per period, the dose level's regimen);
AE, LB, VS, DS from their tables; MH and CM from the screening record the enrolment relied on
(history events; supportive care; antihypertensive treatment at screening) and from imaging (new
anticancer therapy); TU/TR/RS from the tumour assessments (each recurrence site a new lesion).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial.analysis.adverse_events import study_day
from nettrial.analysis.consort import usubjid
from nettrial.analysis.subjects import subject_table
from nettrial.exceptions import RuleDataError
from nettrial.protocol.model import Protocol
from nettrial.store.models import (
    AdverseEvent,
    Consent,
    Disposition,
    DosingPeriod,
    EligibilityEvaluation,
    LabResult,
    Participant,
    Patient,
    ScreeningRecordVersion,
    TumourAssessment,
    VitalSigns,
)
from nettrial.units import same_unit_limit, to_canonical

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Subject:
    usubjid: str
    first_dose: dt.date | None


@dataclass(frozen=True)
class Sources:
    """What every builder reads: the store, the protocol, the cut-off and the listing's terms."""

    session: Session
    protocol: Protocol
    cutoff: dt.date
    pseudonymised: bool
    trial: Mapping[str, Any]
    terms: Mapping[str, Any]
    where: str
    subjects: dict[int, Subject]  # participant id -> subject

    def term(self, table: str, code: Any) -> Any:
        """The CDISC term for a store code; a code the listing does not map is refused."""
        found = self.terms.get(table, {})
        if code not in found:
            raise RuleDataError(self.where, f"terms.{table}: no CDISC term for {code!r}")
        return found[code]

    def day(self, pid: int, day: dt.date | None) -> int | None:
        return None if day is None else study_day(day, self.subjects[pid].first_dose)


def _iso(value: Any) -> str | None:
    """A date as ISO 8601 (``2026-01-26``); None for a missing one (None, NaN or pandas NaT)."""
    if value is None or pd.isna(value):
        return None
    return value.isoformat()[:10]


def _text(value: float | None) -> str | None:
    """A recorded number as text, as exact as stored (``158``, ``3.44``)."""
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _by_cutoff(day: dt.date | None, cutoff: dt.date) -> dt.date | None:
    return day if day is not None and day <= cutoff else None


# --- DM --------------------------------------------------------------------------------------------


def demographics(src: Sources, table: Any) -> Rows:
    session, cutoff = src.session, src.cutoff
    pids = {s.usubjid: pid for pid, s in src.subjects.items()}
    born = dict(session.execute(select(Participant.id, Patient.date_of_birth).join(Patient)).all())
    consented = dict(
        session.execute(
            select(Participant.id, func.min(Consent.signed_on))
            .join(Consent, Consent.patient_id == Participant.patient_id)
            .where(Consent.signed_on <= cutoff)
            .group_by(Participant.id)
        ).all()
    )
    left = dict(
        session.execute(
            select(Disposition.participant_id, Disposition.status_date).where(
                Disposition.phase == "study", Disposition.status_date <= cutoff
            )
        ).all()
    )
    trial, rows = src.trial, []
    for s in table.to_dict("records"):
        pid = pids[s["USUBJID"]]
        treated = _iso(s["TRTSDT"]) is not None
        birth = born[pid]
        rows.append(
            {
                "USUBJID": s["USUBJID"],
                "SUBJID": s["SUBJID"],
                "RFSTDTC": _iso(s["TRTSDT"]),
                "RFENDTC": _iso(s["TRTEDT"]),
                "RFXSTDTC": _iso(s["TRTSDT"]),
                "RFXENDTC": _iso(s["TRTEDT"]),
                "RFICDTC": _iso(consented.get(pid)),
                "RFPENDTC": _iso(left.get(pid, s["LSTALVDT"])),
                "DTHDTC": _iso(s["DTHDT"]),
                "DTHFL": "Y" if s["DTHFL"] == "Y" else None,
                "SITEID": s["SITEID"],
                "BRTHDTC": f"{birth.year:04d}" if src.pseudonymised else birth.isoformat(),
                "AGE": int(s["AGE"]),
                "AGEU": trial["age_unit"],
                "SEX": s["SEX"],
                **trial["arm"],
                "ACTARMCD": trial["arm"]["ARMCD"] if treated else None,
                "ACTARM": trial["arm"]["ARM"] if treated else None,
                "ARMNRS": None if treated else trial["not_treated"],
                "COUNTRY": trial["country"],
            }
        )
    return rows


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
        stop = _by_cutoff(p.stop_date, src.cutoff)
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
                "EXENDTC": _iso(stop),
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
        if _by_cutoff(p.stop_date, src.cutoff) is not None
    ]


# --- AE, LB, VS --------------------------------------------------------------------------------------


def _ordered(src: Sources, model: type, day: Any) -> list[Any]:
    query = (
        select(model)
        .join(Participant, Participant.id == model.participant_id)
        .where(day <= src.cutoff)
        .order_by(Participant.study_number, day, model.id)
    )
    return [r for r in src.session.scalars(query) if r.participant_id in src.subjects]


def adverse_events(src: Sources) -> Rows:
    rows = []
    flags = src.terms["serious_flags"]
    for e in _ordered(src, AdverseEvent, AdverseEvent.onset_date):
        ended = _by_cutoff(e.resolved_date, src.cutoff)
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
                "AEENDTC": _iso(ended),
                "AESTDY": src.day(e.participant_id, e.onset_date),
                "AEENDY": src.day(e.participant_id, ended),
            }
        )
    return rows


def _range_indicator(src: Sources, lab: LabResult) -> str | None:
    if lab.lln is not None and lab.value < lab.lln:
        return src.terms["nrind"]["low"]
    if lab.uln is not None and lab.value > lab.uln:
        return src.terms["nrind"]["high"]
    return None if lab.lln is None and lab.uln is None else src.terms["nrind"]["normal"]


def laboratory(src: Sources) -> Rows:
    rows = []
    for lab in _ordered(src, LabResult, LabResult.collected_on):
        standard = to_canonical(lab.test, lab.value, lab.unit)
        limits = {
            name: None if limit is None else same_unit_limit(lab.test, limit, lab.unit, name)
            for name, limit in (("lln", lab.lln), ("uln", lab.uln))
        }
        rows.append(
            {
                "USUBJID": src.subjects[lab.participant_id].usubjid,
                "LBSPID": str(lab.id),
                **src.term("lab", lab.test),
                "LBORRES": _text(lab.value),
                "LBORRESU": lab.unit,
                "LBORNRLO": _text(lab.lln),
                "LBORNRHI": _text(lab.uln),
                "LBSTRESC": _text(standard.value),
                "LBSTRESN": standard.value,
                "LBSTRESU": standard.unit,
                "LBSTNRLO": limits["lln"],
                "LBSTNRHI": limits["uln"],
                "LBNRIND": _range_indicator(src, lab),
                "LBTOX": lab.ctcae_term,
                "LBTOXGR": None if lab.ctcae_grade is None else str(lab.ctcae_grade),
                "VISIT": lab.visit_code,
                "LBDTC": lab.collected_on.isoformat(),
                "LBDY": src.day(lab.participant_id, lab.collected_on),
            }
        )
    return rows


def vital_signs(src: Sources) -> Rows:
    rows = []
    for vs in _ordered(src, VitalSigns, VitalSigns.measured_on):
        for column, test in src.terms["vital"].items():
            value = getattr(vs, column)
            if value is None:
                continue
            rows.append(
                {
                    "USUBJID": src.subjects[vs.participant_id].usubjid,
                    "VSSPID": str(vs.id),
                    "VSTESTCD": test["VSTESTCD"],
                    "VSTEST": test["VSTEST"],
                    "VSORRES": _text(value),
                    "VSORRESU": test["unit"],
                    "VSSTRESC": _text(value),
                    "VSSTRESN": float(value),
                    "VSSTRESU": test["unit"],
                    "VISIT": vs.visit_code,
                    "VSDTC": vs.measured_on.isoformat(),
                    "VSDY": src.day(vs.participant_id, vs.measured_on),
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
    for d in _ordered(src, Disposition, Disposition.status_date):
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
                    "MHSTDTC": _iso(on),
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
    for a in _ordered(src, TumourAssessment, TumourAssessment.assessed_on):
        on = _by_cutoff(a.new_anticancer_therapy_on, src.cutoff)
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


# --- TU, TR, RS --------------------------------------------------------------------------------------


def tumours(src: Sources) -> dict[str, Rows]:
    """RS: every assessment's result; TU: each recurrence site when first seen (a new lesion); TR: the
    lesion present at each assessment that reports its site."""
    found: dict[str, Rows] = {"TU": [], "TR": [], "RS": []}
    ident, state, response = (src.terms[k] for k in ("tumour_identification", "tumour_result", "response"))
    evaluator = src.trial["evaluator"]
    lesions: dict[int, dict[str, str]] = defaultdict(dict)  # participant -> site -> link id
    for a in _ordered(src, TumourAssessment, TumourAssessment.assessed_on):
        who, on = src.subjects[a.participant_id].usubjid, a.assessed_on.isoformat()
        common = {"USUBJID": who, "VISIT": a.visit_code}
        day = src.day(a.participant_id, a.assessed_on)
        result = response["results"].get(a.result)
        if result is None:
            raise RuleDataError(src.where, f"terms.response.results: no term for {a.result!r}")
        found["RS"].append(
            {
                **common,
                "RSSPID": str(a.id),
                **{k: response[k] for k in ("RSTESTCD", "RSTEST", "RSCAT")},
                "RSORRES": result,
                "RSSTRESC": result,
                "RSEVAL": evaluator,
                "RSDTC": on,
                "RSDY": day,
            }
        )
        method = src.term("method", a.method)
        for site in a.recurrence_sites or []:
            known = lesions[a.participant_id]
            if site not in known:
                known[site] = f"{ident['TULNKID_PREFIX']}{len(known) + 1:02d}"
                found["TU"].append(
                    {
                        **common,
                        "TUSPID": str(a.id),
                        "TULNKID": known[site],
                        **{k: ident[k] for k in ("TUTESTCD", "TUTEST", "TUORRES")},
                        "TUSTRESC": ident["TUORRES"],
                        "TULOC": src.term("recurrence_site", site),
                        "TUMETHOD": method,
                        "TUEVAL": evaluator,
                        "TUDTC": on,
                        "TUDY": day,
                    }
                )
            found["TR"].append(
                {
                    **common,
                    "TRSPID": str(a.id),
                    "TRLNKID": known[site],
                    **{k: state[k] for k in ("TRTESTCD", "TRTEST", "TRORRES")},
                    "TRSTRESC": state["TRORRES"],
                    "TRMETHOD": method,
                    "TREVAL": evaluator,
                    "TRDTC": on,
                    "TRDY": day,
                }
            )
    return found


# --- all of them ------------------------------------------------------------------------------------


def build_rows(
    session: Session, protocol: Protocol, cutoff: dt.date, standard: Any, *, pseudonymised: bool = False
) -> dict[str, Rows]:
    """Rows of every domain the builders know, for the participants enrolled by the cut-off."""
    table = subject_table(session, protocol, cutoff)
    ids = dict(session.execute(select(Participant.study_id, Participant.id)).all())
    subjects = {
        ids[s["SUBJID"]]: Subject(usubjid(protocol, s["SUBJID"]), s["TRTSDT"] if _iso(s["TRTSDT"]) else None)
        for s in table.to_dict("records")
    }
    src = Sources(
        session, protocol, cutoff, pseudonymised, standard.trial, standard.terms, standard.source, subjects
    )
    records = enrolment_records(session, set(subjects))
    rows: dict[str, Rows] = {"DM": demographics(src, table)}
    pids = {s.usubjid: pid for pid, s in subjects.items()}
    consent = {pids[row["USUBJID"]]: row["RFICDTC"] for row in rows["DM"]}
    builders: dict[str, Callable[[], Rows]] = {
        "EX": lambda: exposure(src),
        "SUPPEX": lambda: exposure_supplement(src),
        "AE": lambda: adverse_events(src),
        "LB": lambda: laboratory(src),
        "VS": lambda: vital_signs(src),
        "DS": lambda: disposition(src, consent),
        "MH": lambda: medical_history(src, records),
        "CM": lambda: medications(src, records),
    }
    for name, build in builders.items():
        rows[name] = build()
    rows.update(tumours(src))
    unknown = sorted(set(standard.domains) - set(rows))
    if unknown:
        raise RuleDataError(standard.source, f"{unknown[0]}: no builder reads this dataset from the store")
    return rows
