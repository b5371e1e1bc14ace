"""WHO 2019 grade of a GEP neuroendocrine neoplasm from Ki-67, mitotic count and differentiation.

The bands are data (``data/who2019_grade.yaml``). Rules (staging.md, WHO 2019 grade):

- each known index gives a grade by its bands; the higher grade wins when both are known, so G1
  needs both indices in the G1 range;
- a single known index may grade alone, with a note saying which one was used;
- NET G3 versus NEC is decided by differentiation, never by Ki-67 alone: a poorly differentiated
  tumour is NEC (not graded) whatever its Ki-67, and a G3 of unknown differentiation is left open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from nettrial._conditions import parse_condition
from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.staging.findings import is_blank
from nettrial.staging.tables import read_yaml

DIFFERENTIATION = ("well", "poor")


@dataclass(frozen=True, slots=True)
class GradeResult:
    """``grade`` is G1/G2/G3 or None; ``classification`` is e.g. ``NET G2``, ``NEC`` or ``unknown``."""

    grade: str | None
    classification: str
    ki67_percent: float | None
    mitoses_per_2mm2: float | None
    differentiation: str | None
    basis: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def _table() -> dict[str, Any]:
    data = read_yaml("who2019_grade.yaml")
    for name, index in data["indices"].items():
        index["compiled"] = [
            (band["grade"], parse_condition(name, band["when"], f"who2019_grade.yaml:{name}"))
            for band in index["bands"]
        ]
    return data


def _index_value(name: str, value: Any) -> float | None:
    if is_blank(value):
        return None
    spec = _table()["indices"][name]
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InputError(name, f"{value!r} is not a number ({spec['unit']})") from None
    if not spec["min"] <= number <= spec["max"]:
        raise ImplausibleValueError(
            name, f"{value} {spec['unit']} is outside {spec['min']}-{spec['max']}; {spec['hint']}"
        )
    return number


def _band(name: str, value: float) -> str:
    return next(grade for grade, condition in _table()["indices"][name]["compiled"] if condition.test(value))


def grade(ki67: Any = None, mitoses: Any = None, differentiation: Any = None) -> GradeResult:
    """WHO 2019 grade; Ki-67 in percent (0-100), mitoses per 2 mm^2, differentiation well/poor."""
    ki = _index_value("ki67", ki67)
    mit = _index_value("mitoses", mitoses)
    diff = None if is_blank(differentiation) else str(differentiation).strip().lower()
    if diff is not None and diff not in DIFFERENTIATION:
        raise InputError(
            "differentiation",
            f"unknown differentiation {differentiation!r}",
            allowed=DIFFERENTIATION,
        )

    if diff == "poor":
        note = (
            "poorly differentiated: neuroendocrine carcinoma, not graded (WHO 2019 treats NEC as high grade)"
        )
        return GradeResult(None, "NEC", ki, mit, diff, ("differentiation",), (note,))

    order = _table()["grades"]
    per_index = {name: _band(name, v) for name, v in (("ki67", ki), ("mitoses", mit)) if v is not None}
    if not per_index:
        return GradeResult(None, "unknown", ki, mit, diff, (), ("neither Ki-67 nor mitotic count recorded",))
    notes = [f"{_table()['indices'][n]['label']} gives {g}" for n, g in per_index.items()]
    result = max(per_index.values(), key=order.index)
    if len(per_index) == 1:
        used = next(iter(per_index))
        other = "mitotic count" if used == "ki67" else "Ki-67"
        notes.append(f"graded on {_table()['indices'][used]['label']} alone; {other} not recorded")
    elif len(set(per_index.values())) > 1:
        notes.append("indices disagree: the higher grade wins")
    basis = tuple(per_index)
    if result == "G3" and diff is None:
        notes.append("G3 of unknown differentiation: NET G3 or NEC is decided by morphology, not Ki-67")
        return GradeResult(result, "unknown", ki, mit, diff, basis, tuple(notes))
    return GradeResult(result, f"NET {result}", ki, mit, diff, basis, tuple(notes))


def thresholds(index: str) -> set[float]:
    """Every value the bands of ``index`` (ki67, mitoses) compare with: where the grade can change."""
    return {
        c.threshold for _, condition in _table()["indices"][index]["compiled"] for c in condition.comparisons
    }
