"""The ClinicalTrials.gov results section, in the registry's API v2 JSON: ``ctgov-results.json``.

Source: the ClinicalTrials.gov API v2 study data structure (``resultsSection``: participant flow,
baseline characteristics, outcome measures, adverse events) and the registry's results data element
definitions; protocol.md 4 (endpoints). Every number comes from the analysis issue's tables, never
recomputed another way:

=========================  =======================================================================
participant flow           ``consort_flow``: STARTED = the Enrolled box (every participant enrolled
                           by the cut-off, treated or not); COMPLETED = the "Completed 6 cycles"
                           box; NOT COMPLETED = the rest, split by reason: not treated (by its
                           reason), discontinued (by the treatment disposition) and still on
                           treatment at the cut-off. One period: the treatment.
baseline                   ``subject_table`` (every enrolled participant): age (median, full
                           range), sex, site of enrolment, primary site, AJCC stage group (the
                           protocol's edition), WHO grade.
outcome measures           RFS (primary), DMFS and OS: ``time_to_event_tables`` fitted by
                           ``SurvivalAnalysis`` (Kaplan-Meier, log-log 95% interval) at the
                           protocol's primary landmark (24 months); a rate not estimable at the
                           cut-off is ``"NA"`` with a comment, as the registry asks. Incidence of
                           treatment-emergent adverse events by worst grade (``worst_grade``,
                           ``overview``); relative dose intensity and completion of all cycles
                           (``exposure_summary``).
adverse events             ``adverse_event_table`` (treatment-emergent rows) with ``overview`` and
                           ``by_term``, over the safety population: serious events are the rows
                           with AESER Y, other events those with AESER N (a participant with both
                           counts in both lists, as the registry defines them), each term's
                           numAffected is ``by_term``'s any-grade count and numEvents its rows;
                           deaths are the participants of the safety population with a recorded
                           death (all causes).
=========================  =======================================================================

The registry modules are built in ``ctgov_participants`` (participant flow, baseline),
``ctgov_outcomes`` and ``ctgov_adverse_events``, from the tables of ``_ctgov_study`` read once.

The file is the same bytes for the same database and cut-off (fixed key order, no time stamps). It
holds only counts and summaries: no name, record number, date of birth or study id, so the
pseudonymised export is the same file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from nettrial.export import ExportResult
from nettrial.export._ctgov_study import Study
from nettrial.export.ctgov_adverse_events import adverse_events
from nettrial.export.ctgov_outcomes import outcome_measures
from nettrial.export.ctgov_participants import baseline, participant_flow
from nettrial.protocol.model import Protocol

RESULTS_FILE = "ctgov-results.json"

__all__ = ["RESULTS_FILE", "export", "results_section"]


def results_section(
    session: Session, protocol: Protocol, cutoff: dt.date
) -> tuple[dict[str, Any], list[str]]:
    """The ``resultsSection`` of the study at ``cutoff``, and notes on what it could not report.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol (arm, endpoints, cycles, CTCAE version).
    cutoff : datetime.date
        The data cut-off: records after it are ignored.

    Returns
    -------
    tuple of (dict, list of str)
        The four modules in the registry's API v2 field names (see the module docstring for the
        source of every number), and notes.
    """
    study = Study(session, protocol, cutoff)
    outcomes = outcome_measures(study)  # first, so that the rates' notes lead the list
    section = {
        "participantFlowModule": participant_flow(study),
        "baselineCharacteristicsModule": baseline(study),
        "outcomeMeasuresModule": {"outcomeMeasures": outcomes},
        "adverseEventsModule": adverse_events(study),
    }
    return section, study.notes


def export(
    session: Session, protocol: Protocol, out: Path, *, cutoff: dt.date, pseudonymised: bool = False
) -> ExportResult:
    """Write ``<out>/ctgov-results.json``: ``{"resultsSection": {...}}`` in the registry's v2 JSON.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol.
    out : pathlib.Path
        Directory to write to (created if needed).
    cutoff : datetime.date
        The data cut-off.
    pseudonymised : bool
        Recorded in the result; the file holds only aggregates either way.

    Returns
    -------
    ExportResult
        The file written; counts of participants started and completed, measures and event terms.
    """
    section, notes = results_section(session, protocol, cutoff)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    text = json.dumps({"resultsSection": section}, indent=2, ensure_ascii=False) + "\n"
    path.write_bytes(text.encode("utf-8"))
    period = section["participantFlowModule"]["periods"][0]
    milestones = {m["type"]: int(m["achievements"][0]["numSubjects"]) for m in period["milestones"]}
    adverse = section["adverseEventsModule"]
    counts = {
        "participants_started": milestones["STARTED"],
        "participants_completed": milestones["COMPLETED"],
        "baseline_measures": len(section["baselineCharacteristicsModule"]["measures"]),
        "outcome_measures": len(section["outcomeMeasuresModule"]["outcomeMeasures"]),
        "serious_event_terms": len(adverse["seriousEvents"]),
        "other_event_terms": len(adverse["otherEvents"]),
    }
    notes = [*notes, "aggregates only: the same file whether pseudonymised or not"]
    return ExportResult("ctgov-results", (path,), counts, cutoff, pseudonymised, tuple(notes))
