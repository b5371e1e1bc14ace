"""What the study found: the outcome measures module of the results section.

Source: the ClinicalTrials.gov API v2 study data structure (``outcomeMeasuresModule``) and the
registry's results data element definitions; protocol.md 4 (endpoints). RFS (primary), DMFS and OS
as Kaplan-Meier rates at the primary landmark, then the safety and exposure outcomes; where each
number comes from is in ``nettrial.export.ctgov``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from nettrial.analysis import safety_tables
from nettrial.analysis.adverse_events import worst_grade
from nettrial.analysis.survival import SurvivalAnalysis
from nettrial.export._ctgov_study import Study, count_text, decimal_text, denominators

CONFIDENCE = 0.95  # the level of every interval (protocol.md 4: 95% CI)
TIME_TO_EVENT = (
    ("RFS", "PRIMARY", "Recurrence-free Survival Rate"),
    ("DMFS", "SECONDARY", "Distant Metastasis-free Survival Rate"),
    ("OS", "SECONDARY", "Overall Survival Rate"),
)

__all__ = ["landmark_measurement", "outcome_measures"]


def outcome_measures(study: Study) -> list[dict[str, Any]]:
    """The rates of ``TIME_TO_EVENT`` in its order, then the safety and exposure outcomes."""
    return [*(_rate(study, *row) for row in TIME_TO_EVENT), *_safety_outcomes(study)]


def _outcome(study: Study, kind: str, title: str, **fields: Any) -> dict[str, Any]:
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
        "denoms": denominators("OG000", denominator),
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
            f"{decimal_text(table['AVAL'].max(), 1)} months, short of {months:g} months"
            if len(table)
            else "Not estimable: no participant in the analysis set"
        )
        return measurement | {"value": "NA", "lowerLimit": "NA", "upperLimit": "NA", "comment": reason}
    measurement["value"] = decimal_text(100 * point["survival"], 1)
    for key, limit in (("lowerLimit", point["lower"]), ("upperLimit", point["upper"])):
        measurement[key] = "NA" if limit is None else decimal_text(100 * limit, 1)
    if point["lower"] is None or point["upper"] is None:
        measurement["comment"] = "No interval where the estimate is 0 (as R survival reports)"
    return measurement


def _rate(study: Study, parameter: str, kind: str, title: str) -> dict[str, Any]:
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


def _safety_outcomes(study: Study) -> list[dict[str, Any]]:
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
            k: decimal_text(100 * rdi[c], 1)
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
                {"title": label, "measurements": [{"groupId": "OG000", "value": count_text(n)}]}
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
                {"measurements": [{"groupId": "OG000", "value": count_text(summary.loc["completed", "n"])}]}
            ],
        ),
    ]
