"""What the participants went through: the adverse events module of the results section.

Source: the ClinicalTrials.gov API v2 study data structure (``adverseEventsModule``) and the
registry's results data element definitions: serious and other (non-serious) events per term over
the safety population, and all-cause deaths; where each number comes from is in
``nettrial.export.ctgov``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from nettrial.analysis import safety_tables
from nettrial.analysis.adverse_events import worst_grade
from nettrial.export._ctgov_study import Study

FREQUENCY_THRESHOLD = 0  # percent: every non-serious term is listed (a 35-participant study)
ASSESSMENT = "SYSTEMATIC_ASSESSMENT"


def _events(
    study: Study, rows: pd.DataFrame, population: tuple[str, ...], vocabulary: str
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


def adverse_events(study: Study) -> dict[str, Any]:
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
