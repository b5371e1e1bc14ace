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

The file is the same bytes for the same database and cut-off (fixed key order, no time stamps). It
holds only counts and summaries: no name, record number, date of birth or study id, so the
pseudonymised export is the same file.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis import safety_tables
from nettrial.analysis.adverse_events import adverse_event_table, worst_grade
from nettrial.analysis.consort import ConsortFlow, consort_flow
from nettrial.analysis.endpoints import endpoint_settings
from nettrial.analysis.rfs import time_to_event_tables
from nettrial.analysis.subjects import staging_edition, subject_table
from nettrial.analysis.survival import SurvivalAnalysis
from nettrial.export import ExportResult
from nettrial.protocol.model import Protocol
from nettrial.store.models import Site

RESULTS_FILE = "ctgov-results.json"
FREQUENCY_THRESHOLD = 0  # percent: every non-serious term is listed (a 35-participant study)
ASSESSMENT = "SYSTEMATIC_ASSESSMENT"
CONFIDENCE = 0.95  # the level of every interval (protocol.md 4: 95% CI)
# Why treatment did not complete -> the registry's reason wording (its standard reasons where one fits).
DROP_REASONS = {
    "adverse_event": "Adverse Event",
    "withdrawn": "Withdrawal by Subject",
    "lost_to_follow_up": "Lost to Follow-up",
    "death": "Death",
    "investigator_decision": "Physician Decision",
    "recurrence": "Disease recurrence",
    "other": "Other",
    "completed": "Treatment recorded as completed before the last cycle ended",
    "discontinued": "Discontinued, no reason recorded",
    "awaiting_first_dose": "Awaiting the first dose at the data cut-off",
}
TIME_TO_EVENT = (
    ("RFS", "PRIMARY", "Recurrence-free Survival Rate"),
    ("DMFS", "SECONDARY", "Distant Metastasis-free Survival Rate"),
    ("OS", "SECONDARY", "Overall Survival Rate"),
)

__all__ = ["RESULTS_FILE", "export", "landmark_measurement", "results_section"]


def _decimal(value: float, places: int) -> str:
    """``value`` to ``places`` decimals, half away from zero (as the safety tables round)."""
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _count(value: int) -> str:
    return str(int(value))  # the registry writes counts of the flow and denominators as text


class _Study:
    """The analysis tables one export reads, each computed once."""

    def __init__(self, session: Session, protocol: Protocol, cutoff: dt.date):
        self.protocol, self.cutoff = protocol, cutoff
        self.flow: ConsortFlow = consort_flow(session, protocol, cutoff)
        self.subjects = subject_table(session, protocol, cutoff)
        self.time_to_event = time_to_event_tables(session, protocol, cutoff)
        self.adae = adverse_event_table(session, protocol, cutoff)
        self.exposure = safety_tables.exposure(session, protocol, cutoff)
        self.sites = dict(session.execute(select(Site.code, Site.name)).all())
        self.settings = endpoint_settings(protocol)
        arm = protocol.identity.arms[0]
        self.group = {"title": arm.label, "description": arm.description}
        self.notes: list[str] = []

    def group_as(self, prefix: str) -> list[dict[str, str]]:
        return [{"id": f"{prefix}000", **self.group}]


# --- participant flow ------------------------------------------------------------------------------


def _participant_flow(study: _Study) -> dict[str, Any]:
    flow = study.flow
    enrolled, completed = flow.box("enrolled").n, flow.box("completed_treatment").n
    reasons: list[tuple[str, int]] = []
    for count in flow.box("not_treated").breakdown:
        reasons.append((f"Not treated: {DROP_REASONS.get(count.key, count.label)}", count.n))
    reasons += [(DROP_REASONS.get(c.key, c.label), c.n) for c in flow.box("discontinued_treatment").breakdown]
    reasons.append((f"On treatment at the data cut-off {study.cutoff}", flow.box("on_treatment").n))
    cycles = study.protocol.treatment.cycles
    screened = flow.box("screened").n
    not_enrolled = {b.id: b.n for b in flow.boxes if b.parents == ("screened",) and b.side}
    return {
        "recruitmentDetails": f"{screened} patients screened and {enrolled} enrolled by the data cut-off "
        f"{study.cutoff}.",
        "preAssignmentDetails": f"Not enrolled: {not_enrolled.get('not_eligible', 0)} not eligible, "
        f"{not_enrolled.get('screening_incomplete', 0)} with screening incomplete, "
        f"{not_enrolled.get('eligible_not_enrolled', 0)} eligible but not enrolled.",
        "groups": study.group_as("FG"),
        "periods": [
            {
                "title": f"Treatment ({cycles} cycles of {study.protocol.treatment.cycle_days} days)",
                "milestones": [
                    _milestone("STARTED", enrolled, "Every participant enrolled by the data cut-off"),
                    _milestone("COMPLETED", completed, f"Treatment completed after all {cycles} cycles"),
                    _milestone("NOT COMPLETED", enrolled - completed, None),
                ],
                "dropWithdraws": [
                    {"type": label, "reasons": [{"groupId": "FG000", "numSubjects": _count(n)}]}
                    for label, n in reasons
                    if n
                ],
            }
        ],
    }


def _milestone(kind: str, n: int, comment: str | None) -> dict[str, Any]:
    achievement = {"groupId": "FG000", "numSubjects": _count(n)}
    if comment:
        achievement = {"groupId": "FG000", "comment": comment, "numSubjects": _count(n)}
    return {"type": kind, "achievements": [achievement]}


# --- baseline --------------------------------------------------------------------------------------


def _categories(values: pd.Series, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Participants per value (missing: "Not determined"), in ``order`` or by count then name."""
    counts = values.fillna("Not determined").astype(str).value_counts()
    keys = list(order or [])
    keys += sorted((k for k in counts.index if k not in keys), key=lambda k: (-counts[k], k))
    return [
        {"title": key, "measurements": [{"groupId": "BG000", "value": _count(counts.get(key, 0))}]}
        for key in keys
    ]


def _counted(title: str, categories: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": title,
        "paramType": "COUNT_OF_PARTICIPANTS",
        "unitOfMeasure": "Participants",
        "classes": [{"categories": categories}],
    }


def _baseline(study: _Study) -> dict[str, Any]:
    adsl = study.subjects
    measures = []
    if len(adsl):
        age = adsl["AGE"]
        median = float(age.median())
        value = {"groupId": "BG000", "value": _decimal(median, 0 if median.is_integer() else 1)}
        value |= {"lowerLimit": _count(age.min()), "upperLimit": _count(age.max())}
        measures.append(
            {
                "title": "Age, Continuous",
                "description": "Whole years on the enrolment date",
                "paramType": "MEDIAN",
                "dispersionType": "FULL_RANGE",
                "unitOfMeasure": "years",
                "classes": [{"categories": [{"measurements": [value]}]}],
            }
        )
    sex = adsl["SEX"].map({"F": "Female", "M": "Male"})
    sites = adsl["SITEID"].map(lambda code: study.sites.get(code, code))
    measures += [
        _counted("Sex: Female, Male", _categories(sex, ["Female", "Male"])),
        _counted("Site of Enrollment", _categories(sites)),
        _counted("Primary tumour site", _categories(adsl["PRIMARY_SITE"])),
        _counted(
            f"AJCC stage group ({staging_edition(study.protocol)}th edition)",
            _categories(adsl["STAGE"], sorted(adsl["STAGE"].dropna().unique())),
        ),
        _counted("WHO grade (2019)", _categories(adsl["GRADE"], ["G1", "G2", "G3"])),
    ]
    study.notes.append(
        "baseline: the store records no country for a site, so the registry's Region of Enrollment is"
        " reported as Site of Enrollment (site names)"
    )
    return {
        "populationDescription": f"Every participant enrolled by the data cut-off {study.cutoff}",
        "groups": study.group_as("BG"),
        "denoms": [{"units": "Participants", "counts": [{"groupId": "BG000", "value": _count(len(adsl))}]}],
        "measures": measures,
    }


# --- outcome measures ------------------------------------------------------------------------------


def _outcome(study: _Study, kind: str, title: str, **fields: Any) -> dict[str, Any]:
    """An outcome measure: the fields every one has, then ``fields`` in the registry's order."""
    denominator = fields.pop("denominator")
    measurements = fields.pop("measurements")
    return {
        "type": kind,
        "title": title,
        **{k: fields[k] for k in ("description", "populationDescription", "reportingStatus") if k in fields},
        "paramType": fields["paramType"],
        **({"dispersionType": fields["dispersionType"]} if "dispersionType" in fields else {}),
        "unitOfMeasure": fields["unitOfMeasure"],
        "timeFrame": fields["timeFrame"],
        "groups": study.group_as("OG"),
        "denoms": [{"units": "Participants", "counts": [{"groupId": "OG000", "value": _count(denominator)}]}],
        "classes": [{"categories": measurements}],
    }


def landmark_measurement(
    table: pd.DataFrame, months: float, *, ci_method: str, cutoff: dt.date, alpha: float = 0.05
) -> dict[str, Any]:
    """The registry measurement of a Kaplan-Meier rate at ``months``, in percent, with its interval.

    Parameters
    ----------
    table : pandas.DataFrame
        An ADTTE table of ``time_to_event_tables`` (AVAL in months, EVENT).
    months : float
        The landmark.
    ci_method : str
        The interval's transformation (``SurvivalAnalysis``: log-log).
    cutoff : datetime.date
        The data cut-off, named in the comment of a rate not estimable.
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        ``groupId`` OG000, ``value``, ``lowerLimit``, ``upperLimit`` as text to one decimal; beyond
        the longest follow-up (or with nobody analysed) all three are ``"NA"`` and ``comment`` says
        why, as the registry asks of a value not available.
    """
    measurement: dict[str, Any] = {"groupId": "OG000"}
    point = {"survival": None, "lower": None, "upper": None}
    if len(table):
        analysis = SurvivalAnalysis(landmarks=(months,), alpha=alpha, ci_method=ci_method).fit(table)
        point = analysis.landmarks_[0]
    if point["survival"] is None:
        reason = (
            f"Not estimable at the data cut-off {cutoff}: the longest follow-up is "
            f"{_decimal(table['AVAL'].max(), 1)} months, short of {months:g} months"
            if len(table)
            else "Not estimable: no participant in the analysis set"
        )
        return measurement | {"value": "NA", "lowerLimit": "NA", "upperLimit": "NA", "comment": reason}
    measurement["value"] = _decimal(100 * point["survival"], 1)
    for key, limit in (("lowerLimit", point["lower"]), ("upperLimit", point["upper"])):
        measurement[key] = "NA" if limit is None else _decimal(100 * limit, 1)
    if point["lower"] is None or point["upper"] is None:
        measurement["comment"] = "No interval where the estimate is 0 (as R survival reports)"
    return measurement


def _rate(study: _Study, parameter: str, kind: str, title: str) -> dict[str, Any]:
    endpoint = study.settings.endpoint(parameter)
    months = endpoint.primary_landmark_months or study.settings.rfs.primary_landmark_months
    table = study.time_to_event[parameter]
    level = CONFIDENCE
    measurement = landmark_measurement(
        table, months, ci_method=endpoint.ci_method, cutoff=study.cutoff, alpha=1 - level
    )
    if measurement["value"] == "NA":
        reason = measurement["comment"]
        study.notes.append(f"{parameter} at {months:g} months: {reason[0].lower()}{reason[1:]}")
    excluded = len(table.attrs.get("excluded", []))
    return _outcome(
        study,
        kind,
        f"{title} at {months / 12:g} Years",
        description=f"{endpoint.name[:1].upper()}{endpoint.name[1:]}: from the first dose to the first of "
        f"{', '.join(e.replace('_', ' ') for e in endpoint.events)}. Kaplan-Meier estimate at {months:g}"
        f" months with its {level:.0%} confidence interval ({endpoint.ci_method} transformation).",
        populationDescription=f"Participants with a first dose by the data cut-off {study.cutoff}"
        + (f" ({excluded} left out by the censoring rules)" if excluded else ""),
        reportingStatus="POSTED",
        paramType="NUMBER",
        dispersionType=f"{level:.0%} Confidence Interval",
        unitOfMeasure="percentage of participants",
        timeFrame=f"{months:g} months from the first dose",
        denominator=len(table),
        measurements=[{"measurements": [measurement]}],
    )


def _safety_outcomes(study: _Study) -> list[dict[str, Any]]:
    population = safety_tables.safety_population(study.exposure)
    total = len(population)
    overview = safety_tables.overview(study.adae, population).set_index("category")
    worst = worst_grade(study.adae, per="participant")["AETOXGR"].value_counts()
    days = study.settings.safety.treatment_emergent_until_days_after_last_dose
    grades = [("No treatment-emergent adverse event", total - int(overview.loc["any", "n"]))]
    grades += [(f"Grade {g}", int(worst.get(g, 0))) for g in range(1, 6)]
    summary = safety_tables.exposure_summary(study.exposure).set_index("item")
    rdi = summary.loc["rdi"]
    cycles = study.protocol.treatment.cycles
    rdi_value: dict[str, Any] = {"groupId": "OG000", "value": "NA", "lowerLimit": "NA", "upperLimit": "NA"}
    if rdi["n"]:
        rdi_value |= {
            k: _decimal(100 * rdi[c], 1)
            for k, c in (("value", "median"), ("lowerLimit", "min"), ("upperLimit", "max"))
        }
    else:
        rdi_value["comment"] = "No course had ended by the data cut-off"
    window = f"From the first dose to {days} days after the last dose, up to the data cut-off {study.cutoff}"
    return [
        _outcome(
            study,
            "SECONDARY",
            "Participants With Treatment-emergent Adverse Events by Worst CTCAE v5.0 Grade",
            description="Each participant counted once, at the worst grade of their treatment-emergent"
            " events",
            populationDescription="Safety population: participants with at least one dose",
            reportingStatus="POSTED",
            paramType="COUNT_OF_PARTICIPANTS",
            unitOfMeasure="Participants",
            timeFrame=window,
            denominator=total,
            measurements=[
                {"title": label, "measurements": [{"groupId": "OG000", "value": _count(n)}]}
                for label, n in grades
            ],
        ),
        _outcome(
            study,
            "SECONDARY",
            "Relative Dose Intensity",
            description="Actual cumulative dose as a percentage of the planned dose of the whole course",
            populationDescription=f"Participants whose treatment had ended by the data cut-off {study.cutoff}"
            " (an ongoing course's dose intensity is not final)",
            reportingStatus="POSTED",
            paramType="MEDIAN",
            dispersionType="Full Range",
            unitOfMeasure="percentage of planned dose",
            timeFrame=f"From the first dose to the last dose ({cycles} cycles planned)",
            denominator=int(rdi["n"]),
            measurements=[{"measurements": [rdi_value]}],
        ),
        _outcome(
            study,
            "SECONDARY",
            f"Participants Completing {cycles} Cycles of Treatment",
            populationDescription="Safety population: participants with at least one dose",
            reportingStatus="POSTED",
            paramType="COUNT_OF_PARTICIPANTS",
            unitOfMeasure="Participants",
            timeFrame=f"{cycles} cycles of {study.protocol.treatment.cycle_days} days from the first dose",
            denominator=total,
            measurements=[
                {"measurements": [{"groupId": "OG000", "value": _count(summary.loc["completed", "n"])}]}
            ],
        ),
    ]


# --- adverse events --------------------------------------------------------------------------------


def _events(
    study: _Study, rows: pd.DataFrame, population: tuple[str, ...], vocabulary: str
) -> list[dict[str, Any]]:
    """One entry per term of ``by_term`` over ``rows``, with its events counted from ``worst_grade``."""
    table = safety_tables.by_term(rows, population)
    events = worst_grade(rows, per="term").groupby(["AEBODSYS", "AEDECOD"])["EVENTS"].sum()
    terms = table[(table["level"] == "term") & (table["pct_any"] >= FREQUENCY_THRESHOLD)]
    return [
        {
            "term": row.AEDECOD,
            "organSystem": row.AEBODSYS,
            "sourceVocabulary": vocabulary,
            "assessmentType": ASSESSMENT,
            "stats": [
                {
                    "groupId": "EG000",
                    "numEvents": int(events[(row.AEBODSYS, row.AEDECOD)]),
                    "numAffected": int(row.n_any),
                    "numAtRisk": int(row.N),
                }
            ],
        }
        for row in terms.itertuples()
    ]


def _adverse_events(study: _Study) -> dict[str, Any]:
    population = safety_tables.safety_population(study.exposure)
    total = len(population)
    emergent = study.adae[study.adae["TRTEMFL"] == "Y"]
    serious, other = (emergent[emergent["AESER"] == flag] for flag in ("Y", "N"))
    version = str(study.protocol.settings["ctcae_version"].value)
    recorded = sorted(set(emergent["AETOXVER"].dropna().astype(str)) - {version})
    if recorded:
        study.notes.append(
            f"adverse events: grades recorded under CTCAE {', '.join(recorded)} besides {version}"
        )
    vocabulary = f"CTCAE ({version})"
    adsl = study.subjects
    deaths = int(((adsl["DTHFL"] == "Y") & adsl["USUBJID"].isin(population)).sum())
    days = study.settings.safety.treatment_emergent_until_days_after_last_dose
    return {
        "frequencyThreshold": str(FREQUENCY_THRESHOLD),
        "timeFrame": f"Adverse events: from the first dose to {days} days after the last dose "
        f"(treatment-emergent), up to the data cut-off {study.cutoff}. All-cause mortality: from "
        "enrolment to the data cut-off.",
        "description": "Safety population: participants with at least one dose. A participant counts once "
        "per term; serious events are those meeting ICH E2A seriousness criteria, other events the "
        f"non-serious ones, every term listed (threshold {FREQUENCY_THRESHOLD}%). Terms and grades: CTCAE "
        f"v{version}; the registry's organ system is the CTCAE system organ class.",
        "eventGroups": [
            {
                "id": "EG000",
                **study.group,
                "deathsNumAffected": deaths,
                "deathsNumAtRisk": total,
                "seriousNumAffected": int(safety_tables.overview(serious, population).iloc[0]["n"]),
                "seriousNumAtRisk": total,
                "otherNumAffected": int(safety_tables.overview(other, population).iloc[0]["n"]),
                "otherNumAtRisk": total,
            }
        ],
        "seriousEvents": _events(study, serious, population, vocabulary),
        "otherEvents": _events(study, other, population, vocabulary),
    }


# --- the export ------------------------------------------------------------------------------------


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
    study = _Study(session, protocol, cutoff)
    outcomes = [_rate(study, *row) for row in TIME_TO_EVENT]
    section = {
        "participantFlowModule": _participant_flow(study),
        "baselineCharacteristicsModule": _baseline(study),
        "outcomeMeasuresModule": {"outcomeMeasures": [*outcomes, *_safety_outcomes(study)]},
        "adverseEventsModule": _adverse_events(study),
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
