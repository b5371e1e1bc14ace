"""Explicit units: accepted spellings, exact conversions (ctcae.md), refusals that name the field."""

from __future__ import annotations

import pytest

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.units import normalise_unit, same_unit_limit, to_canonical


@pytest.mark.parametrize("spelling", ["10^9/L", "x10^9/L", "×10⁹/L", "10*9/l", "10e9/L", " 10^9/L "])
def test_cell_count_spellings_are_one_unit(spelling: str) -> None:
    assert normalise_unit(spelling) == "10^9/l"
    assert to_canonical("anc", 1.5, spelling).value == 1.5


@pytest.mark.parametrize(
    ("test", "value", "unit", "canonical"),
    [
        ("anc", 1500, "/mm3", 1.5),  # 1 x 10^9/L = 1000/mm3
        ("platelets", 100, "10^3/uL", 100),
        ("haemoglobin", 80, "g/L", 8.0),  # g/dL x 10 = g/L
        ("haemoglobin", 4.9648, "mmol/L", 8.0),  # g/dL x 0.6206 = mmol/L
        ("bilirubin", 17.1, "umol/L", 1.0),  # mg/dL x 17.1 = umol/L
        ("creatinine", 88.4, "µmol/L", 1.0),  # mg/dL x 88.4 = umol/L, exactly
        ("alt", 40, "IU/L", 40),
    ],
)
def test_conversions_are_exact_at_the_reference_points(test, value, unit, canonical) -> None:
    assert to_canonical(test, value, unit).value == pytest.approx(canonical, abs=1e-4)


def test_a_limit_in_the_value_unit_converts_the_same_way() -> None:
    assert same_unit_limit("creatinine", 88.4, "umol/L", "labs.creatinine.uln") == 1.0


def test_unknown_unit_is_refused_with_the_allowed_units() -> None:
    with pytest.raises(InputError) as caught:
        to_canonical("anc", 1.5, "g/dL", "labs.anc")
    assert caught.value.field == "labs.anc.unit"
    assert "10^9/L" in str(caught.value)


@pytest.mark.parametrize(
    ("test", "value", "unit", "hint"),
    [
        ("haemoglobin", 120, "g/dL", "g/L"),
        ("anc", 1500, "10^9/L", "/mm3"),
        ("creatinine", 88, "mg/dL", "umol/L"),
    ],
)
def test_implausible_values_name_the_likely_unit_mistake(test, value, unit, hint) -> None:
    with pytest.raises(ImplausibleValueError) as caught:
        to_canonical(test, value, unit, f"labs.{test}")
    assert caught.value.field == f"labs.{test}.value"
    assert f"it looks like {hint}" in str(caught.value)


def test_missing_unit_is_refused() -> None:
    with pytest.raises(InputError, match="a unit is required"):
        to_canonical("platelets", 150, "")
