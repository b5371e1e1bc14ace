"""The SDTM domains read from the store: DM here, then every other domain by its builder.

Source: CDISC SDTM IG 3.x domain models; the store's codes become CDISC terms through the
``terms`` of ``data/sdtm_variables.yaml`` (a code without a term there is refused, never guessed).
Every builder keeps to the participants enrolled by the cut-off (DM's subjects, as the analysis
subject table has them) and to records dated on or before the cut-off; a date after it (an event's
end, a period's stop) is left blank, as it had not happened yet. Rows come in store order (subject,
date, record id); ``sdtm.dataset`` sorts them by the domain's keys and numbers --SEQ.

DM comes from ``analysis.subjects.subject_table`` (first and last dose, age, death) with date of
birth and consent. The interventions and events (EX, SUPPEX, CM, AE, DS, MH) are built in
``sdtm_events``, the findings (LB, VS, TU, TR, RS) in ``sdtm_findings``, all from the
``sdtm_sources.Sources`` that ``build_rows`` reads once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nettrial.analysis.consort import usubjid
from nettrial.analysis.subjects import subject_table
from nettrial.exceptions import RuleDataError
from nettrial.export.sdtm_events import (
    adverse_events,
    disposition,
    enrolment_records,
    exposure,
    exposure_supplement,
    medical_history,
    medications,
)
from nettrial.export.sdtm_findings import laboratory, tumours, vital_signs
from nettrial.export.sdtm_sources import Rows, Sources, Subject, iso_date
from nettrial.protocol.model import Protocol
from nettrial.store.models import Consent, Disposition, Participant, Patient

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
        treated = iso_date(s["TRTSDT"]) is not None
        birth = born[pid]
        rows.append(
            {
                "USUBJID": s["USUBJID"],
                "SUBJID": s["SUBJID"],
                "RFSTDTC": iso_date(s["TRTSDT"]),
                "RFENDTC": iso_date(s["TRTEDT"]),
                "RFXSTDTC": iso_date(s["TRTSDT"]),
                "RFXENDTC": iso_date(s["TRTEDT"]),
                "RFICDTC": iso_date(consented.get(pid)),
                "RFPENDTC": iso_date(left.get(pid, s["LSTALVDT"])),
                "DTHDTC": iso_date(s["DTHDT"]),
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


# --- all of them ------------------------------------------------------------------------------------


def build_rows(
    session: Session, protocol: Protocol, cutoff: dt.date, standard: Any, *, pseudonymised: bool = False
) -> dict[str, Rows]:
    """Rows of every domain the builders know, for the participants enrolled by the cut-off."""
    table = subject_table(session, protocol, cutoff)
    ids = dict(session.execute(select(Participant.study_id, Participant.id)).all())
    subjects = {
        ids[s["SUBJID"]]: Subject(
            usubjid(protocol, s["SUBJID"]), s["TRTSDT"] if iso_date(s["TRTSDT"]) else None
        )
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
