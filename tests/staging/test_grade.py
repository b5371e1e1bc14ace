"""WHO 2019 grade: every boundary from staging.md, discordant indices, NET G3 versus NEC."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.staging.grade import grade

CASES = Path(__file__).parent / "cases" / "who2019_grade.csv"


def _cases() -> list[dict[str, str]]:
    lines = [line for line in CASES.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.mark.parametrize(
    "case", _cases(), ids=lambda c: f"ki67={c['ki67']}|mit={c['mitoses']}|{c['differentiation']}"
)
def test_grade_cases(case: dict[str, str]) -> None:
    result = grade(case["ki67"] or None, case["mitoses"] or None, case["differentiation"] or None)
    assert (result.grade or "", result.classification) == (case["grade"], case["classification"])


def test_single_index_is_named_in_a_note() -> None:
    result = grade(ki67=2.0)
    assert result.basis == ("ki67",)
    assert any("alone" in note and "mitotic count not recorded" in note for note in result.notes)


def test_discordant_indices_say_the_higher_wins() -> None:
    result = grade(ki67=4, mitoses=1, differentiation="well")
    assert result.grade == "G2"
    assert any("higher grade wins" in note for note in result.notes)


def test_nec_is_never_graded_even_with_low_ki67() -> None:
    result = grade(ki67=60, differentiation="poor")
    assert result.grade is None and result.classification == "NEC"


@pytest.mark.parametrize(
    ("kwargs", "field", "error"),
    [
        ({"ki67": 140}, "ki67", ImplausibleValueError),
        ({"ki67": -1}, "ki67", ImplausibleValueError),
        ({"ki67": "abc"}, "ki67", InputError),
        ({"mitoses": -2}, "mitoses", ImplausibleValueError),
        ({"ki67": 10, "differentiation": "moderate"}, "differentiation", InputError),
    ],
)
def test_implausible_values_are_refused_naming_the_field(kwargs, field, error) -> None:
    with pytest.raises(error) as info:
        grade(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
