"""Explicit units for laboratory values: convert to the canonical unit, refuse what cannot be right.

Every lab value arrives with its unit. The unit must be one the test accepts (``data/labs.yaml``);
the converted value must be plausible, otherwise it is refused with a message that names the field
and, when another accepted unit would make the value plausible, the likely mistake
("haemoglobin: 120 g/dL is not plausible ...; it looks like g/L").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from nettrial._yaml import load_yaml
from nettrial.exceptions import ImplausibleValueError, InputError

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


@cache
def lab_tests() -> dict[str, dict[str, Any]]:
    path = resources.files("nettrial") / "data" / "labs.yaml"
    return load_yaml(path.read_text(encoding="utf-8"))


@cache
def normalise_unit(unit: str) -> str:
    """A comparable spelling: ``×10⁹/L``, ``x10e9/l`` and ``10*9/L`` all become ``10^9/l``."""
    text = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", r"10^\1", str(unit).strip())
    text = text.translate(_SUPERSCRIPTS).replace("µ", "u").replace("μ", "u")
    text = text.replace(" ", "").lower()
    text = re.sub(r"^[x×*]", "", text)
    text = re.sub(r"10(?:\^|\*\*|\*|e)(\d)", r"10^\1", text)
    return {"g/l_cells": "10^9/l", "giga/l": "10^9/l", "mm3": "/mm3", "/mm^3": "/mm3"}.get(text, text)


def factor(value: float | str) -> float:
    """A conversion factor: a number, or ``"1/88.4"`` for an exact division."""
    if isinstance(value, str) and value.startswith("1/"):
        return 1 / float(value[2:])
    return float(value)


@cache
def _unit_index(test: str) -> dict[str, tuple[str, float]]:
    return {normalise_unit(u): (u, factor(f)) for u, f in lab_tests()[test]["units"].items()}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A value converted to the test's canonical unit, remembering what was reported."""

    test: str
    value: float
    unit: str
    reported_value: float
    reported_unit: str


def test_spec(test: str, field: str) -> dict[str, Any]:
    try:
        return lab_tests()[test]
    except KeyError:
        raise InputError(field, f"unknown laboratory test {test!r}", allowed=lab_tests()) from None


def to_canonical(test: str, value: Any, unit: Any, field: str | None = None) -> Quantity:
    """Convert ``value`` in ``unit`` to the canonical unit of ``test``, checking plausibility."""
    field = field or test
    spec = test_spec(test, field)
    if unit is None or str(unit).strip() == "":
        raise InputError(f"{field}.unit", "a unit is required", allowed=spec["units"])
    found = _unit_index(test).get(normalise_unit(unit))
    if found is None:
        raise InputError(f"{field}.unit", f"unknown unit {unit!r} for {spec['name']}", allowed=spec["units"])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{field}.value", f"{value!r} is not a number") from None
    # Rounded so that 80 g/L is exactly 8 g/dL at a threshold (no 7.999999 from binary floats).
    canonical = round(number * found[1], 9)
    low, high = spec["plausible"]
    if not low <= canonical <= high:
        raise ImplausibleValueError(f"{field}.value", _implausible(test, number, found[0], spec))
    return Quantity(test, canonical, spec["canonical"], number, found[0])


def _implausible(test: str, number: float, unit: str, spec: dict[str, Any]) -> str:
    low, high = spec["plausible"]
    message = (
        f"{number:g} {unit} is not a plausible {spec['name']} "
        f"(plausible {low:g}-{high:g} {spec['canonical']})"
    )
    likely = [
        other for other, f in spec["units"].items() if other != unit and low <= number * factor(f) <= high
    ]
    if likely:
        message += f"; it looks like {' or '.join(likely)}"
    return message


def same_unit_limit(test: str, limit: Any, unit: str, field: str) -> float:
    """A reference limit (LLN/ULN) reported in the value's unit, in the canonical unit."""
    try:
        number = float(limit)
    except (TypeError, ValueError):
        raise InputError(field, f"{limit!r} is not a number") from None
    if number <= 0:
        raise InputError(field, f"{limit!r} must be greater than 0")
    return round(number * _unit_index(test)[normalise_unit(unit)][1], 9)


def unit_factor(test: str, unit: Any, field: str) -> float:
    """How many canonical units one ``unit`` is (``umol/L`` of creatinine: 1/88.4 mg/dL)."""
    spec = test_spec(test, field)
    found = _unit_index(test).get(normalise_unit(unit)) if unit is not None else None
    if found is None:
        raise InputError(field, f"unknown unit {unit!r} for {spec['name']}", allowed=spec["units"])
    return found[1]
