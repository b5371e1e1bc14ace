"""Every CTCAE v5.0 cut point at and just beyond its boundary, in every unit CTCAE gives.

The expected grades in ``cases/ctcae_boundaries.csv`` were transcribed from the NCI text
(shared/spec/ctcae_v5_selected.csv) and the reading rules (shared/spec/ctcae.md) independently of
the grading tables, so this checks the tables against the text, not against themselves.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nettrial.safety.ctcae import grade

CASES = Path(__file__).parent / "cases" / "ctcae_boundaries.csv"


def _cases():
    with CASES.open(encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=2):
            yield pytest.param(row, id=f"line{n}-{row['term'][:24]}-{row['value']}{row['unit']}")


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


@pytest.mark.parametrize("row", list(_cases()))
def test_boundary(row):
    result = grade(
        row["term"],
        row["value"],
        row["unit"],
        lln=_number(row["lln"]),
        uln=_number(row["uln"]),
        baseline=_number(row["baseline"]),
        answers=json.loads(row["answers"]) if row["answers"].strip() else None,
    )
    assert (result.grade, result.needs_review) == (int(row["grade"]), row["review"] == "true"), (
        f"{row['why']}\n{result.explain()}"
    )
