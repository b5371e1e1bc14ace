"""The adverse-event analysis table (CDISC ADaM ADAE style) and the worst grade per participant.

Source: protocol.md 4 (safety: incidence by CTCAE v5.0 term and worst grade; treatment-emergent =
onset from the first dose to 30 days after the last dose, the protocol file's SAFETY endpoint
``treatment_emergent_until_days_after_last_dose``). One row per adverse event with onset on or
before the data cut-off:

========  ========================================================================================
STUDYID   NCT id; USUBJID ``NCT07279532-NET-001``; SUBJID ``NET-001``
AESEQ     the participant's events numbered 1, 2, ... by onset (then by record id)
AESPID    the event's record id in the study database (traces a row to its source)
AETERM    the term as recorded; AEDECOD: the CTCAE term (the same here: terms are recorded in
          CTCAE); AEBODSYS: its system organ class
AETOXGR   CTCAE grade 1-5; AETOXVER: the CTCAE version stored with the grade
AESER     Y/N; AESCRIT: the seriousness criteria (ICH E2A), ``;``-joined in recorded order
AEREL     relatedness as recorded; RELFL: Y when it is one of ``RELATED`` (see below)
AEACN     action taken with the drug as recorded; AEOUT: outcome as last recorded
ASTDT     onset; AENDT: resolution, blank when the event had not ended by the cut-off
ASTDY     study day of onset (day 1 = first dose, the day before it -1: no day 0)
TRTSDT    first dose and TRTEDT last dose, as ``consort.participant_flow`` derives them from the
          dosing log and dispositions at the cut-off (TRTEDT blank while on treatment)
TRTEMFL   Y when ASTDT >= TRTSDT and, once treatment has ended, ASTDT <= TRTEDT + N days (N from
          the protocol, a setting); while still on treatment every event from the first dose on is
          treatment-emergent; N for events before the first dose or of participants never dosed
========  ========================================================================================

Relatedness: the store records ``not_related``, ``unlikely``, ``possible``, ``probable`` or
``definite`` (WHO-UMC causality categories). ``possible``, ``probable`` and ``definite`` count as
related, ``unlikely`` and ``not_related`` as not related: the usual dichotomy of safety tables
(ICH E2A: a "reasonable possibility" of a causal relationship). It is a setting (``related=``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis.consort import participant_flow
from nettrial.exceptions import InputError, RuleDataError
from nettrial.protocol.model import Protocol
from nettrial.store.adverse_events import RELATEDNESS
from nettrial.store.models import AdverseEvent, Participant

RELATED = ("possible", "probable", "definite")
ADAE_COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "AESEQ",
    "AESPID",
    "AETERM",
    "AEDECOD",
    "AEBODSYS",
    "AETOXGR",
    "AETOXVER",
    "AESER",
    "AESCRIT",
    "AEREL",
    "RELFL",
    "AEACN",
    "AEOUT",
    "ASTDT",
    "AENDT",
    "ASTDY",
    "TRTSDT",
    "TRTEDT",
    "TRTEMFL",
)
GRADES = (1, 2, 3, 4, 5)


def treatment_emergent_days(protocol: Protocol) -> int:
    """The protocol's window after the last dose (SAFETY endpoint), in days."""
    where = f"protocol {protocol.identity.nct_id} endpoints"
    for group in ("primary", "secondary"):
        for endpoint in protocol.endpoints.get(group) or []:
            if isinstance(endpoint, dict) and endpoint.get("id") == "SAFETY":
                days = endpoint.get("treatment_emergent_until_days_after_last_dose")
                if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                    raise RuleDataError(
                        where,
                        f"SAFETY.treatment_emergent_until_days_after_last_dose: {days!r} is not days >= 0",
                    )
                return days
    raise RuleDataError(where, "no SAFETY endpoint with treatment_emergent_until_days_after_last_dose")


def treatment_emergent(
    onset: dt.date, first_dose: dt.date | None, last_dose: dt.date | None, days_after: int
) -> bool:
    """Onset from the first dose and, once treatment has ended, at most ``days_after`` after the last."""
    if first_dose is None or onset < first_dose:
        return False
    return last_dose is None or onset <= last_dose + dt.timedelta(days=days_after)


def study_day(day: dt.date, first_dose: dt.date | None) -> int | None:
    """Day 1 is the first dose; the day before it is day -1 (CDISC: there is no day 0)."""
    if first_dose is None:
        return None
    offset = (day - first_dose).days
    return offset + 1 if offset >= 0 else offset


def adverse_event_table(
    session: Session,
    protocol: Protocol,
    cutoff: dt.date,
    *,
    days_after_last_dose: int | None = None,
    related: Collection[str] = RELATED,
) -> pd.DataFrame:
    """One row per adverse event with onset on or before ``cutoff`` (ADaM ADAE style).

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol: its SAFETY endpoint gives the treatment-emergent window.
    cutoff : datetime.date
        The data cut-off.
    days_after_last_dose : int, optional
        Treatment-emergent window after the last dose; default the protocol's (30 days).
    related : collection of str
        Relatedness values counted as related (RELFL); default ``RELATED``.

    Returns
    -------
    pandas.DataFrame
        Columns ``ADAE_COLUMNS`` (see the module docstring), sorted by USUBJID and AESEQ; the
        window used is in ``attrs["days_after_last_dose"]``.
    """
    days = treatment_emergent_days(protocol) if days_after_last_dose is None else days_after_last_dose
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InputError("days_after_last_dose", f"{days!r} is not a number of days >= 0")
    unknown = sorted(set(related) - set(RELATEDNESS))
    if unknown:
        raise InputError("related", f"{unknown[0]!r} is not a recorded relatedness", allowed=RELATEDNESS)
    courses = {row["SUBJID"]: row for row in participant_flow(session, protocol, cutoff).to_dict("records")}
    query = (
        select(AdverseEvent, Participant.study_id)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .where(AdverseEvent.onset_date <= cutoff)
        .order_by(Participant.study_number, AdverseEvent.onset_date, AdverseEvent.id)
    )
    rows, seq, previous = [], 0, None
    for event, study_id in session.execute(query):
        if study_id not in courses:
            continue  # enrolled after the cut-off: not in the analysis
        seq = seq + 1 if study_id == previous else 1
        previous = study_id
        rows.append(_row(event, courses[study_id], seq, days, set(related), cutoff))
    # ASTDY is blank for a participant never dosed: a nullable integer, never a float.
    types = {"AESEQ": "int64", "AESPID": "int64", "AETOXGR": "int64", "ASTDY": "Int64"}
    table = pd.DataFrame(rows, columns=list(ADAE_COLUMNS)).astype(types)
    table.attrs["days_after_last_dose"] = days
    return table


def _row(
    event: AdverseEvent, course: dict[str, Any], seq: int, days: int, related: set[str], cutoff: dt.date
) -> dict[str, Any]:
    first, last = course["TRTSDT"], course["TRTEDT"]
    ended = event.resolved_date if event.resolved_date and event.resolved_date <= cutoff else None
    return {
        "STUDYID": course["STUDYID"],
        "USUBJID": course["USUBJID"],
        "SUBJID": course["SUBJID"],
        "AESEQ": seq,
        "AESPID": event.id,
        "AETERM": event.term,
        "AEDECOD": event.term,
        "AEBODSYS": event.soc,
        "AETOXGR": event.grade,
        "AETOXVER": event.ctcae_version,
        "AESER": "Y" if event.serious else "N",
        "AESCRIT": ";".join(event.serious_criteria or []),
        "AEREL": event.relatedness,
        "RELFL": "Y" if event.relatedness in related else "N",
        "AEACN": event.action_taken,
        "AEOUT": event.outcome,
        "ASTDT": event.onset_date,
        "AENDT": ended,
        "ASTDY": study_day(event.onset_date, first),
        "TRTSDT": first,
        "TRTEDT": last,
        "TRTEMFL": "Y" if treatment_emergent(event.onset_date, first, last, days) else "N",
    }


def worst_grade(
    adae: pd.DataFrame, *, per: str = "term", treatment_emergent_only: bool = True
) -> pd.DataFrame:
    """The worst grade per participant and term (``per="term"``) or per participant (``"participant"``).

    Parameters
    ----------
    adae : pandas.DataFrame
        Rows of ``adverse_event_table`` (USUBJID, SUBJID, AEBODSYS, AEDECOD, AETOXGR, TRTEMFL).
    per : {"term", "participant"}
        One row per participant and CTCAE term (with its SOC), or one per participant.
    treatment_emergent_only : bool
        Count only rows with TRTEMFL "Y" (the default, as the safety tables do).

    Returns
    -------
    pandas.DataFrame
        USUBJID, SUBJID, [AEBODSYS, AEDECOD,] AETOXGR (the highest grade) and EVENTS (rows
        counted), sorted by USUBJID then SOC and term.
    """
    keys = {"term": ["USUBJID", "SUBJID", "AEBODSYS", "AEDECOD"], "participant": ["USUBJID", "SUBJID"]}
    if per not in keys:
        raise InputError("per", f"{per!r} is not a level", allowed=tuple(keys))
    rows = adae[adae["TRTEMFL"] == "Y"] if treatment_emergent_only else adae
    worst = (
        rows.groupby(keys[per], sort=True)
        .agg(AETOXGR=("AETOXGR", "max"), EVENTS=("AETOXGR", "size"))
        .reset_index()
    )
    return worst.astype({"AETOXGR": "int64", "EVENTS": "int64"})
