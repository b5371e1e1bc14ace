"""Conditions of rule tables, evaluated in three-valued (Kleene) logic.

A rule's ``when`` maps a field to either a list of allowed values (``extent: [limited]``) or a
comparison string (``size_mm: "> 20 and <= 40"``). A field with no value makes its condition
UNKNOWN (``None``), never false: the engines then keep every outcome that is still possible
instead of guessing the best case.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nettrial.exceptions import RuleDataError

Truth = bool | None  # True, False, or None for unknown

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_COMPARISON = re.compile(r"^\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One bound such as ``> 20``."""

    symbol: str
    threshold: float

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.symbol](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.symbol} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A test on one field: membership in ``allowed`` or every comparison holding."""

    field: str
    allowed: frozenset[Any] | None = None
    comparisons: tuple[Comparison, ...] = ()

    def test(self, value: Any) -> Truth:
        """True/False for a known value, None when the value is missing."""
        if value is None:
            return None
        if self.allowed is not None:
            return value in self.allowed
        return all(c.holds(value) for c in self.comparisons)

    def describe(self) -> str:
        if self.allowed is not None:
            shown = sorted(str(v).lower() if isinstance(v, bool) else str(v) for v in self.allowed)
            return f"{self.field} in {{{', '.join(shown)}}}"
        return f"{self.field} " + " and ".join(str(c) for c in self.comparisons)


def parse_condition(field: str, spec: Any, where: str) -> Condition:
    """Build a condition from its data-file form; ``where`` locates it for error messages."""
    if isinstance(spec, list):
        return Condition(field, allowed=frozenset(spec))
    if isinstance(spec, bool):
        return Condition(field, allowed=frozenset([spec]))
    if isinstance(spec, str):
        parts = [p for p in spec.split(" and ")]
        comparisons = []
        for part in parts:
            match = _COMPARISON.match(part)
            if not match:
                raise RuleDataError(where, f"condition on {field!r} cannot be read: {spec!r}")
            comparisons.append(Comparison(match.group(1), float(match.group(2))))
        return Condition(field, comparisons=tuple(comparisons))
    raise RuleDataError(where, f"condition on {field!r} must be a list or a comparison: {spec!r}")


def parse_conditions(when: Mapping[str, Any], where: str) -> tuple[Condition, ...]:
    """All conditions of one rule's ``when`` mapping."""
    if not isinstance(when, Mapping):
        raise RuleDataError(where, "'when' must be a mapping of field to condition")
    return tuple(parse_condition(f, s, f"{where}.when.{f}") for f, s in when.items())


def all_of(conditions: tuple[Condition, ...], record: Mapping[str, Any]) -> Truth:
    """Kleene AND: False if any condition is false, None if any is unknown, else True."""
    result: Truth = True
    for condition in conditions:
        truth = condition.test(record.get(condition.field))
        if truth is False:
            return False
        if truth is None:
            result = None
    return result
