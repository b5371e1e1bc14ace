"""Who took part: the participant flow and baseline characteristics modules of the results section.

Source: the ClinicalTrials.gov API v2 study data structure (``participantFlowModule``,
``baselineCharacteristicsModule``); where each number comes from is in ``nettrial.export.ctgov``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from nettrial.analysis.subjects import staging_edition
from nettrial.export._ctgov_study import Study, count_text, decimal_text, denominators

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


# --- participant flow ------------------------------------------------------------------------------


def participant_flow(study: Study) -> dict[str, Any]:
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
                    {"type": label, "reasons": [{"groupId": "FG000", "numSubjects": count_text(n)}]}
                    for label, n in reasons
                    if n
                ],
            }
        ],
    }


def _milestone(kind: str, n: int, comment: str | None) -> dict[str, Any]:
    achievement = {"groupId": "FG000", "numSubjects": count_text(n)}
    if comment:
        achievement = {"groupId": "FG000", "comment": comment, "numSubjects": count_text(n)}
    return {"type": kind, "achievements": [achievement]}


# --- baseline --------------------------------------------------------------------------------------


def _categories(values: pd.Series, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Participants per value (missing: "Not determined"), in ``order`` or by count then name."""
    counts = values.fillna("Not determined").astype(str).value_counts()
    keys = list(order or [])
    keys += sorted((k for k in counts.index if k not in keys), key=lambda k: (-counts[k], k))
    return [
        {"title": key, "measurements": [{"groupId": "BG000", "value": count_text(counts.get(key, 0))}]}
        for key in keys
    ]


def _counted(title: str, categories: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": title,
        "paramType": "COUNT_OF_PARTICIPANTS",
        "unitOfMeasure": "Participants",
        "classes": [{"categories": categories}],
    }


def baseline(study: Study) -> dict[str, Any]:
    adsl = study.subjects
    measures = []
    if len(adsl):
        age = adsl["AGE"]
        median = float(age.median())
        value = {"groupId": "BG000", "value": decimal_text(median, 0 if median.is_integer() else 1)}
        value |= {"lowerLimit": count_text(age.min()), "upperLimit": count_text(age.max())}
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
        "denoms": denominators("BG000", len(adsl)),
        "measures": measures,
    }
