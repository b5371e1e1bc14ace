"""Plain functions that make screening records for tests (no fixtures, no magic)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

ELIGIBLE = json.loads((Path(__file__).parent / "eligible_record.json").read_text())


def eligible_variant(rng: random.Random, number: int) -> dict[str, Any]:
    """The eligible record with one lab moved to a boundary: eligible or not by one value."""
    record = copy.deepcopy(ELIGIBLE)
    record["identity"]["patient_id"] = f"E{number:05d}"
    lab = rng.choice(record["labs"])
    lab["value"] = {"anc": rng.choice([1.5, 1.4, 3.0]), "platelets": rng.choice([100, 99, 150])}.get(
        lab["test"], lab["value"]
    )
    record["attestations"]["I4"] = {
        "answer": rng.choice(["yes", "no"]),
        "by": "dr",
        "at": "2026-02-25T10:00:00",
    }
    return record


def random_record(rng: random.Random, number: int) -> dict[str, Any]:
    """A varied record: boundary values, gaps, stale labs, odd units, and some invalid values."""
    if rng.random() < 0.25:
        return eligible_variant(rng, number)
    screening = dt.date(2026, 3, 1) + dt.timedelta(days=rng.randint(0, 60))
    first_dose = screening + dt.timedelta(days=rng.randint(3, 20))
    lab_day = first_dose - dt.timedelta(days=rng.choice([0, 5, 14, 15, 30]))
    sex = rng.choice(["female", "male"])

    def lab(test: str, value: Any, unit: str, uln: Any = None) -> dict[str, Any]:
        entry = {"test": test, "value": value, "unit": unit, "date": lab_day.isoformat()}
        if uln is not None:
            entry["uln"] = uln
        return entry

    labs = [
        lab("anc", rng.choice([1.4, 1.5, 2.2, 1500, 1499]), rng.choice(["10^9/L", "10^9/L", "/mm3"])),
        lab("platelets", rng.choice([99, 100, 250]), "10^9/L"),
        lab("haemoglobin", rng.choice([7.9, 8.0, 12, 79, 80, 120]), rng.choice(["g/dL", "g/L"])),
        lab("bilirubin", rng.choice([10, 31.5, 32, 17.1]), "umol/L", rng.choice([21, None])),
        lab("alt", rng.choice([30, 100, 101, 200, 201]), "U/L", 40),
        lab("ast", rng.choice([30, 100, 150]), "U/L", 40),
        lab("creatinine", rng.choice([60, 88.4, 146, 150, 1.0, 1.6]), rng.choice(["umol/L", "mg/dL"]), 97),
    ]
    rng.shuffle(labs)
    record: dict[str, Any] = {
        "identity": {
            "patient_id": f"R{number:05d}",
            "date_of_birth": (
                screening
                - dt.timedelta(
                    days=rng.choice([17 * 365, 18 * 366, 50 * 365, 68 * 365 + 40, 80 * 365, 81 * 366])
                )
            ).isoformat(),
            "sex": sex,
            "weight": rng.choice([{"value": 60, "unit": "kg"}, {"value": 150, "unit": "lb"}, None]),
        },
        "screening_date": screening.isoformat(),
        "planned_first_dose": rng.choice(
            [first_dose.isoformat(), f"{first_dose.isoformat()}T09:00:00", None]
        ),
        "consent": {
            "signed": rng.choice([True, True, False, None]),
            "date": (screening - dt.timedelta(days=rng.choice([0, 2, -1]))).isoformat(),
        },
        "surgery": {
            "date": rng.choice(
                [(first_dose - dt.timedelta(days=d)).isoformat() for d in (27, 28, 40)] + [None]
            ),
            "margin": rng.choice(["R0", "R1", None]),
        },
        "pathology": {
            "site": rng.choice(["pancreas", "pancreas", "stomach", "jejunum_ileum", "C18.7"]),
            "size_mm": rng.choice([None, 5, 10, 19.9, 20, 40, 41, 60]),
            "extent": rng.choice(["limited", "submucosa", "subserosa", "adjacent_organs", None]),
            "nodes_positive": rng.choice([None, 0, 1, 3, 12]),
            "nodes_examined": rng.choice([None, 0, 10, 15]),
            "mesenteric_mass_mm": None,
            "metastasis": rng.choice([[], [], ["liver"], None]),
            "ki67_percent": rng.choice([None, 2.9, 3.0, 20.0, 20.1, 60]),
            "differentiation": rng.choice(["well", "well", "poor", None]),
        },
        "liver_metastases": rng.choice([True, False, None]),
        "labs": labs[: rng.choice([7, 7, 7, 3, 0])],
        "supportive_care": rng.choice(
            [
                {"reviewed": True, "items": []},
                {"reviewed": False, "items": []},
                {
                    "reviewed": True,
                    "items": [
                        {
                            "kind": "blood_transfusion",
                            "date": (first_dose - dt.timedelta(days=rng.choice([10, 14]))).isoformat(),
                        }
                    ],
                },
            ]
        ),
        "blood_pressure": rng.choice(
            [
                [],
                [
                    {
                        "date": screening.isoformat(),
                        "systolic": rng.choice([128, 139, 140, 150]),
                        "diastolic": rng.choice([80, 89, 90]),
                        "on_treatment": rng.choice([True, False, None]),
                    }
                ],
            ]
        ),
        "history": rng.choice(
            [
                {"reviewed": True, "events": []},
                {"reviewed": False, "events": []},
                {
                    "reviewed": True,
                    "events": [
                        {
                            "kind": "myocardial_infarction",
                            "date": (first_dose - dt.timedelta(days=rng.choice([300, 400]))).isoformat(),
                        }
                    ],
                },
            ]
        ),
        "reproductive": {
            "childbearing_potential": rng.choice([True, False]),
            "pregnant": False,
            "lactating": rng.choice([False, True, None]),
            "pregnancy_test": rng.choice(
                [
                    None,
                    {
                        "type": "serum",
                        "result": "negative",
                        "taken_at": f"{first_dose - dt.timedelta(days=rng.choice([1, 3, 4]))}T09:00:00",
                    },
                ]
            ),
        },
        "attestations": rng.choice(
            [
                {},
                {"E9": {"answer": "no", "by": "dr", "at": f"{screening.isoformat()}T10:00:00"}},
                {
                    "I4": {"answer": "yes", "by": "dr", "at": f"{screening.isoformat()}T10:00:00"},
                    "E9": {"answer": "no", "by": "dr", "at": f"{screening.isoformat()}T10:00:00"},
                },
            ]
        ),
    }
    if record["pathology"]["site"] == "jejunum_ileum":
        record["pathology"]["mesenteric_mass_mm"] = rng.choice([None, 0, 20, 21])
        record["pathology"]["extent"] = rng.choice(["submucosa", "subserosa", None])
    if record["pathology"]["site"] == "stomach":
        record["pathology"]["extent"] = rng.choice(["submucosa", "muscularis_propria", None])
    # some records carry a mistake the checks must refuse, naming the field
    mistake = rng.random()
    if mistake < 0.03:
        record["labs"] = [
            *record["labs"][:1],
            {"test": "haemoglobin", "value": 120, "unit": "g/dL", "date": lab_day.isoformat()},
        ]
    elif mistake < 0.05:
        record["pathology"]["ki67_percent"] = 140
    elif mistake < 0.07:
        record["pathology"]["nodes_positive"], record["pathology"]["nodes_examined"] = 5, 3
    elif mistake < 0.08:
        record["pathology"]["extent"] = "mars"
    return record
